use nn::prelude::*;

const INPUTS: usize = 4;
const HIDDEN: usize = 8;
const HUGE: usize = usize::MAX / 2;

// Layer 2 overflows the parameter count first (8 x HUGE); layer 3 would too, but only the
// first is reported.
network! {
    Net < dense(INPUTS -> HIDDEN, relu), dense(HIDDEN -> HUGE, relu), dense(HUGE -> 2, softmax) >
}

fn main() {}
