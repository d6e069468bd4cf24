use nn::prelude::*;

const INPUTS: usize = 4;
const HIDDEN: usize = 8;
const HIDDEN2: usize = 6;

network! {
    Net < dense(INPUTS -> HIDDEN, relu), dropout(0.5), dense(HIDDEN2 -> 2, softmax) >
}

fn main() {}
