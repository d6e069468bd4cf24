use nn::prelude::*;

network! {
    Net < dense(2 -> 0, relu), dense(0 -> 1, sigmoid) >
}

fn main() {}
