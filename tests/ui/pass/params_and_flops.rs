//! PARAMS, FLOPS, INPUTS, OUTPUTS and the layer table, computed by hand for the MNIST net.
#![deny(warnings)]

use nn::prelude::*;

network! {
    #[derive(Clone, Debug)]
    pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
}

network! { NoBias < dense(10 -> 20, bias = false), tanh, dense(20 -> 5, bias = false) > }

fn main() {
    assert_eq!(Mnist::INPUTS, 784);
    assert_eq!(Mnist::OUTPUTS, 10);
    assert_eq!(Mnist::PARAMS, 101_770); // 784*128 + 128 + 128*10 + 10
    assert_eq!(Mnist::FLOPS, 101_632); // 784*128 + 128*10
    let per_layer: Vec<_> = Mnist::LAYERS.iter().map(|l| (l.params, l.flops)).collect();
    assert_eq!(per_layer, [(100_480, 100_352), (0, 0), (1_290, 1_280)]);
    assert_eq!(NoBias::PARAMS, 200 + 100);
    assert_eq!(NoBias::FLOPS, 300);
    let net = Mnist::new(&mut StdRng::seed_from_u64(8));
    let probs: SVector<f32, 10> = net.predict(&SVector::<f32, 784>::repeat(0.5));
    assert!((probs.sum() - 1.0).abs() < 1e-5);
    let summary = net.summary().to_string();
    assert!(
        summary.contains("101770") || summary.contains("101,770"),
        "{summary}"
    );
}
