use nn::prelude::*;

network! {
    Net < dense(2 -> 4, relu), dense(4 -> 1, sigmoid), dropout(0.2) >
}

fn main() {}
