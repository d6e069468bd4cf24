//! Every activation, in a dense layer and as a layer of its own, with and without parameters.
#![deny(warnings)]

use nn::prelude::*;

network! {
    InDense: f64 <
        dense(2 -> 3, identity), dense(3 -> 3, linear), dense(3 -> 3, sigmoid), dense(3 -> 3, tanh),
        dense(3 -> 3, relu), dense(3 -> 3, leaky_relu), dense(3 -> 3, leaky_relu(0.2)),
        dense(3 -> 3, elu), dense(3 -> 3, elu(0.5)), dense(3 -> 3, gelu), dense(3 -> 3, gelu_tanh),
        dense(3 -> 3, softplus), dense(3 -> 3, softplus(2.0)), dense(3 -> 3, softplus(2, 10.0)),
        dense(3 -> 3, silu), dense(3 -> 3, softmax)
    >
}

network! {
    Standalone: f64 <
        dense(2 -> 3), identity, linear, sigmoid, tanh, relu, leaky_relu, leaky_relu(0.2), elu,
        elu(0.5), gelu, gelu_tanh, softplus, softplus(2.0), softplus(2.0, 10.0), silu, softmax
    >
}

// Parameterized activations applied to fixed values, checked against their formulas.
network! { Probe: f64 < dense(1 -> 1, bias = false), leaky_relu(0.2) > }
network! { ProbeElu: f64 < dense(1 -> 1, bias = false), elu(0.5) > }
network! { ProbeSoftplus: f64 < dense(1 -> 1, bias = false), softplus(2.0) > }

fn with_unit_weight<N: Parameters<f64>>(mut net: N) -> N {
    net.for_each_tensor_mut(&mut |_, v| v.fill(1.0));
    net
}

fn main() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = SVector::<f64, 2>::new(0.4, -0.9);
    let a = InDense::new(&mut rng).predict(&x);
    let b = Standalone::new(&mut rng).predict(&x);
    assert!((a.sum() - 1.0).abs() < 1e-12 && a.iter().all(|p| *p > 0.0));
    assert!((b.sum() - 1.0).abs() < 1e-12 && b.iter().all(|p| *p > 0.0));
    assert_eq!(InDense::LAYERS.len(), 16);
    assert_eq!(Standalone::LAYERS.len(), 17);
    assert_eq!(
        <InDense as Network<2, 3>>::OUTPUT_ACTIVATION,
        OutputActivation::Softmax
    );

    let x = SVector::<f64, 1>::new(-2.0);
    let leaky = with_unit_weight(Probe::new(&mut rng)).predict(&x)[0];
    assert!((leaky - -0.4).abs() < 1e-12, "{leaky}");
    let elu = with_unit_weight(ProbeElu::new(&mut rng)).predict(&x)[0];
    assert!((elu - 0.5 * ((-2.0f64).exp() - 1.0)).abs() < 1e-12, "{elu}");
    let softplus = with_unit_weight(ProbeSoftplus::new(&mut rng)).predict(&x)[0];
    assert!(
        (softplus - (1.0 + (-4.0f64).exp()).ln() / 2.0).abs() < 1e-12,
        "{softplus}"
    );
}
