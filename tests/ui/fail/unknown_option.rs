use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu, weight_decay = 0.01), dense(4 -> 1, sigmoid) >
}

fn main() {}
