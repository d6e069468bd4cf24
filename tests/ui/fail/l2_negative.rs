use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu, l2 = -0.01), dense(4 -> 1, sigmoid) >
}

fn main() {}
