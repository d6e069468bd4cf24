use nn::prelude::*;

network! {
    Net < dense(2 -> 4, leaky_relu(slope)), dense(4 -> 1, sigmoid) >
}

fn main() {}
