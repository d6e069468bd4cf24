use nn::prelude::*;

network! {
    Mnist < dense(784 -> 128, relu), dense(256 -> 10, softmax) >
}

fn main() {}
