use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu), dropout, dense(4 -> 1, sigmoid) >
}

fn main() {}
