use nn::prelude::*;

network! {
    Net < >
}

fn main() {}
