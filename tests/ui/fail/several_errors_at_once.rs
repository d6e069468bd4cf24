use nn::prelude::*;

network! {
    Net < dense(784 -> 128, rleu), dropout(1.5), dense(64 -> 10, softmax, bias = yes), dense(10 -> 10, softmax) >
}

fn main() {}
