use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu, bias = false, bias = true), dense(4 -> 1, sigmoid) >
}

fn main() {}
