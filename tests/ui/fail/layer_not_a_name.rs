use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu), 4, dense(4 -> 1, sigmoid) >
}

fn main() {}
