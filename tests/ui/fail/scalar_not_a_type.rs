// A scalar that is not a type name: only this error is reported.
use nn::prelude::*;

network! {
    Net: 32 < dense(2 -> 4, relu) >
}

fn main() {}
