use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu, init = normal), dense(4 -> 1, sigmoid) >
}

fn main() {}
