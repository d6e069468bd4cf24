// KNOWN ISSUE (reported to the lead): in expression position the errors and the stand-in
// are not wrapped in a block, so rustc adds three parse errors around the real one.
use nn::prelude::*;

fn main() {
    let net = network!(< dense(2 -> 4, tanh), dense(5 -> 1, sigmoid) >);
    let _ = net.predict(&SVector::<f32, 2>::zeros());
}
