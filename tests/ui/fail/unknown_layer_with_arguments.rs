use nn::prelude::*;

network! {
    Net < dense(784 -> 256, relu), conv(256 -> 64, relu), dense(64 -> 10, softmax) >
}

fn main() {}
