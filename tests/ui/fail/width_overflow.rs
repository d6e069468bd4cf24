use nn::prelude::*;

network! {
    Huge < dense(4294967296 -> 4294967296, relu), dense(4294967296 -> 2) >
}

fn main() {}
