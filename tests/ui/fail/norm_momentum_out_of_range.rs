use nn::prelude::*;

network! {
    Net < dense(2 -> 4), batch_norm(momentum = 1.5), relu, dense(4 -> 1, sigmoid) >
}

fn main() {}
