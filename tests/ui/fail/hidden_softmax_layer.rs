use nn::prelude::*;

network! {
    Net < dense(2 -> 4), softmax, dense(4 -> 1, sigmoid) >
}

fn main() {}
