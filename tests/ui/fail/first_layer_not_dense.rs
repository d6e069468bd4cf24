use nn::prelude::*;

network! {
    Net < relu, dense(2 -> 4, relu), dense(4 -> 1, sigmoid) >
}

fn main() {}
