//! `nn-runtime` and `nn-macros` without `nn`.

use nn_macros::network;
use nn_runtime::nalgebra::SVector;
use nn_runtime::prelude::*;

network! {
    /// Generated code refers to `::nn_runtime`.
    pub RuntimeOnly: f64 < dense(3 -> 5, tanh), leaky_relu(0.1), dense(5 -> 1, sigmoid) >
}

fn total<N: Network<3, 1>>() -> usize {
    N::PARAMS
}

fn main() {
    let net = RuntimeOnly::new(&mut StdRng::seed_from_u64(0));
    let y = net.predict(&SVector::<f64, 3>::repeat(0.5));
    let anonymous = network!(: f64 < dense(3 -> 1, sigmoid) >);
    let z = anonymous.predict(&SVector::<f64, 3>::zeros());
    println!("{} {} {}", y[0], z[0], total::<RuntimeOnly>());
}
