use nn::prelude::*;

network! {
    Net < dense(2 -> 4), batch_norm(momentun = 0.2), relu, dense(4 -> 1, sigmoid) >
}

fn main() {}
