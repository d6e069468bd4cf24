use nn::prelude::*;

network! {
    Net < dense(784 128, relu), dense(128 -> 10, softmax) >
}

fn main() {}
