use nn::prelude::*;

network! {
    Net: f46 < dense(2 -> 4, relu), dense(4 -> 1, sigmoid) >
}

fn main() {}
