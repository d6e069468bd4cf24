// In the anonymous form, a width mismatch is the only error: the stand-in block keeps
// `net.predict` from adding follow-on errors.
use nn::prelude::*;

fn main() {
    let net = network!(< dense(2 -> 4, tanh), dense(5 -> 1, sigmoid) >);
    let _ = net.predict(&SVector::<f32, 2>::zeros());
}
