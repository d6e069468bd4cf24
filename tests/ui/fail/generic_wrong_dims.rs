use nn::prelude::*;

network! { Net < dense(3 -> 8, relu), dense(8 -> 2, softmax) > }

fn parameters<N: Network<4, 2>>(_: &N) -> usize {
    N::PARAMS
}

fn main() {
    let net = Net::new(&mut StdRng::seed_from_u64(0));
    let _ = parameters(&net);
}
