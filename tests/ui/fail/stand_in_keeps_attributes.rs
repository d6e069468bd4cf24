// After a DSL error the stand-in type keeps the user's attributes: `clone()` and `{:?}` on the
// network are not follow-on errors, only the DSL mistake is reported. (A trailing comma in
// `dropout(0.5,)` is accepted, as in `dense(2 -> 4, relu,)`.)
use nn::prelude::*;

network! {
    #[derive(Clone, Debug)]
    pub Mnist < dense(784 -> 128, relu), dropout(0.5,), dense(128 -> 10, softmax, bias = 3) >
}

fn main() {
    let net = Mnist::new(&mut StdRng::seed_from_u64(0));
    let copy = net.clone();
    println!("{copy:?}");
}
