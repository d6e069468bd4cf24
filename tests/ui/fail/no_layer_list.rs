use nn::prelude::*;

network! {
    pub Net dense(2 -> 4, relu)
}

fn main() {}
