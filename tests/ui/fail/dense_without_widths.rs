use nn::prelude::*;

network! {
    Net < dense, dense(4 -> 1, sigmoid) >
}

fn main() {}
