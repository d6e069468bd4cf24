use nn::prelude::*;

network! {
    Net < dense(2 -> 4, tanh), layer_norm(4), dense(4 -> 1, sigmoid) >
}

fn main() {}
