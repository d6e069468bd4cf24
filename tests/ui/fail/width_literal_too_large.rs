use nn::prelude::*;

network! {
    Net < dense(2 -> 1000000000000000000000000000000000000000000, relu), dense(4 -> 1, sigmoid) >
}

fn main() {}
