use nn::prelude::*;

network! {
    Net < dense(2 -> 4, tanh), layer_norm(momentum = 0.1), dense(4 -> 1, sigmoid) >
}

fn main() {}
