//! dense, dropout and a standalone activation layer, with widths inferred through the last two.
#![deny(warnings)]

use nn::prelude::*;

network! { Layers < dense(3 -> 5), relu, dropout(0.5), dense(5 -> 2, softmax) > }

fn main() {
    let net = Layers::new(&mut StdRng::seed_from_u64(1));
    assert_eq!(net.dense0.weight.as_slice().len(), 15);
    let kinds: Vec<_> = Layers::LAYERS
        .iter()
        .map(|l| (l.name, l.kind, l.inputs, l.outputs))
        .collect();
    assert_eq!(
        kinds,
        [
            ("dense0", nn::runtime::LayerKind::Dense, 3, 5),
            ("relu0", nn::runtime::LayerKind::Activation, 5, 5),
            ("dropout0", nn::runtime::LayerKind::Dropout, 5, 5),
            ("dense1", nn::runtime::LayerKind::Dense, 5, 2),
        ]
    );
    assert_eq!(
        Layers::DSL,
        "dense(3 -> 5), relu, dropout(0.5), dense(5 -> 2, softmax)"
    );
    // Inference ignores dropout: predict is deterministic and agrees with forward.
    let x = SVector::<f32, 3>::new(0.3, -1.2, 0.8);
    let a = net.predict(&x);
    assert_eq!(a, net.predict(&x));
    let batch = Batch::<f32, 3>::from_column_slice(x.as_slice());
    let b = net.forward(&batch);
    assert!((a - b.column(0)).norm() < 1e-6);
    assert!((a.sum() - 1.0).abs() < 1e-6);
}
