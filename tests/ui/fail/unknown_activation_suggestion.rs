use nn::prelude::*;

network! {
    Net < dense(2 -> 4, rleu), dense(4 -> 1, sigmoid) >
}

fn main() {}
