use nn::prelude::*;

network! {
    Mnist < dense(784 -> 128, relu), dropout(0.5), relu, dense(64 -> 10, softmax) >
}

fn main() {}
