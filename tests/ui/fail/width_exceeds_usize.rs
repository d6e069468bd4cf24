use nn::prelude::*;

network! {
    Huge < dense(2 -> 18446744073709551616, relu) >
}

fn main() {}
