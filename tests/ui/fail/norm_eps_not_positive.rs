use nn::prelude::*;

network! {
    Net < dense(2 -> 4, tanh), layer_norm(eps = 0), dense(4 -> 1, sigmoid) >
}

fn main() {}
