//! A generated network used only through the runtime traits.
#![deny(warnings)]

use nn::prelude::*;

network! { Net < dense(4 -> 5, relu), dense(5 -> 2, softmax) > }

fn describe<N: Network<4, 2, Scalar = f32>>(rng: &mut StdRng) -> (usize, usize, SVector<f32, 2>) {
    let net = N::init(rng);
    let mut count = 0;
    net.for_each_tensor(&mut |_, v| count += v.len());
    (
        N::PARAMS,
        count,
        net.predict(&SVector::<f32, 4>::repeat(0.5)),
    )
}

fn main() {
    let (params, counted, out) = describe::<Net>(&mut StdRng::seed_from_u64(7));
    assert_eq!(params, 4 * 5 + 5 + 5 * 2 + 2);
    assert_eq!(counted, params);
    assert!((out.sum() - 1.0).abs() < 1e-6);
    assert_eq!(<Net as Network<4, 2>>::NAME, "Net");
    assert_eq!(<Net as Network<4, 2>>::DSL, Net::DSL);
    let batch = Batch::<f32, 4>::repeat(6, 0.5);
    let out: Batch<f32, 2> =
        <Net as Network<4, 2>>::forward(&Net::init(&mut StdRng::seed_from_u64(7)), &batch);
    assert_eq!(out.shape(), (2, 6));
}
