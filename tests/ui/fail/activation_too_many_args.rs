use nn::prelude::*;

network! {
    Net < dense(2 -> 4, leaky_relu(0.1, 0.2)), dense(4 -> 1, sigmoid) >
}

fn main() {}
