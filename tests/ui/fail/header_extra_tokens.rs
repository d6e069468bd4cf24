// Extra tokens before the layer list: only this error is reported.
use nn::prelude::*;

network! {
    pub Net Classifier < dense(2 -> 4, relu) >
}

fn main() {}
