use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu), dropuot(0.5), dense(4 -> 1, sigmoid) >
}

fn main() {}
