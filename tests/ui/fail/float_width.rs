use nn::prelude::*;

network! {
    Net < dense(2 -> 4.0, relu), dense(4 -> 1, sigmoid) >
}

fn main() {}
