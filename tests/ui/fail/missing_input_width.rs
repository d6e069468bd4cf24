use nn::prelude::*;

network! {
    Net < dense(-> 4, relu), dense(4 -> 1, sigmoid) >
}

fn main() {}
