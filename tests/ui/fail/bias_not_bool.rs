use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu, bias = 0), dense(4 -> 1, sigmoid) >
}

fn main() {}
