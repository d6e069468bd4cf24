//! Every dense-layer option: init schemes, bias, l1 and l2.
#![deny(warnings)]

use nn::prelude::*;

network! {
    Options <
        dense(4 -> 6, relu, init = he, l2 = 1e-4),
        dense(6 -> 6, tanh, init = xavier, l1 = 0.001),
        dense(6 -> 6, sigmoid, init = lecun, bias = false),
        dense(6 -> 6, relu, init = zeros, bias = true, l1 = 0, l2 = 0.5),
        dense(6 -> 2, init = normal(0.01)),
    >
}

fn main() {
    let net = Options::new(&mut StdRng::seed_from_u64(2));
    // bias = false drops dense2's bias: 4 layers with bias, one without.
    assert_eq!(
        Options::PARAMS,
        4 * 6 + 6 + 6 * 6 + 6 + 6 * 6 + 6 * 6 + 6 + 6 * 2 + 2
    );
    assert!(net.dense2.bias.is_none());
    let names: Vec<_> = Options::TENSORS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "dense0.weight",
            "dense0.bias",
            "dense1.weight",
            "dense1.bias",
            "dense2.weight",
            "dense3.weight",
            "dense3.bias",
            "dense4.weight",
            "dense4.bias"
        ]
    );
    let penalties: Vec<_> = Options::TENSORS.iter().map(|t| (t.l1, t.l2)).collect();
    assert_eq!(penalties[0], (0.0, 1e-4));
    assert_eq!(penalties[2], (0.001, 0.0));
    assert_eq!(penalties[5], (0.0, 0.5));
    // init = zeros gives zero weights; normal(0.01) gives small ones; biases start at zero.
    net.for_each_tensor(&mut |t, v| match t.name {
        "dense3.weight" => assert!(v.iter().all(|w| *w == 0.0)),
        "dense4.weight" => assert!(v.iter().all(|w| w.abs() < 0.1) && v.iter().any(|w| *w != 0.0)),
        _ if t.is_bias => assert!(v.iter().all(|b| *b == 0.0)),
        _ => assert!(v.iter().any(|w| *w != 0.0)),
    });
}
