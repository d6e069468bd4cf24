use nn::prelude::*;

network! {
    Net < dense(2 -> 4, elu(1e999)), dense(4 -> 1, sigmoid) >
}

fn main() {}
