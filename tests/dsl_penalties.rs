//! Per-layer penalties from the DSL (`l1 = x`, `l2 = x`) reach training: they are recorded on
//! the layer's tensors (the bias penalized only when asked), counted in the reported loss, and step the weights
//! exactly as the same coefficients set globally on the trainer would.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::Mse;
use nn::runtime::optim::Sgd;
use nn::runtime::regularization::Penalty;
use nn::runtime::train::{Progress, Trainer};

// One layer, so a per-layer penalty and a global one cover the same tensor.
network! { Local: f64 < dense(3 -> 2, tanh, l1 = 0.05, l2 = 0.1) > }
network! { Plain: f64 < dense(3 -> 2, tanh) > }
// Two layers, only the second penalized.
network! { Second: f64 < dense(3 -> 4, tanh), dense(4 -> 2, l2 = 0.3) > }

fn data() -> Dataset<f64, 3> {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 20;
    let x: Vec<f64> = (0..3 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Dataset::from_slices(&x, Labels::Values { values: y, rows: 2 }).expect("finite data")
}

fn trainer(epochs: usize) -> Trainer<'static, Mse, Sgd<f64>> {
    Trainer::new(Mse, Sgd::new(0.2))
        .epochs(epochs)
        .batch_size(5)
        .seed(3)
        .progress(Progress::Off)
}

/// `λ₁ Σ|w| + ½ λ₂ Σ w²` by hand.
fn by_hand(w: &[f64], l1: f64, l2: f64) -> f64 {
    l1 * w.iter().map(|x| x.abs()).sum::<f64>() + 0.5 * l2 * w.iter().map(|x| x * x).sum::<f64>()
}

#[test]
fn coefficients_sit_on_the_weights_of_their_layer() {
    let net = Second::new(&mut StdRng::seed_from_u64(1));
    let mut seen = Vec::new();
    net.for_each_tensor(&mut |t, _| seen.push((t.name, t.is_bias, t.l1, t.l2)));
    assert_eq!(
        seen,
        vec![
            ("dense0.weight", false, 0.0, 0.0),
            ("dense0.bias", true, 0.0, 0.0),
            ("dense1.weight", false, 0.0, 0.3),
            ("dense1.bias", true, 0.0, 0.3),
        ]
    );
    // The penalty of the network is the second layer's weights' alone.
    let mut w1 = Vec::new();
    net.for_each_tensor(&mut |t, w| {
        if t.name == "dense1.weight" {
            w1.extend_from_slice(w);
        }
    });
    let expected = by_hand(&w1, 0.0, 0.3);
    assert!(expected > 0.0);
    let got = Penalty::new(0.0, 0.0).value(&net);
    assert!(
        (got - expected).abs() <= 1e-15 * expected,
        "{got} vs {expected}"
    );
    // Global coefficients add to the layer's own.
    let mut w0 = Vec::new();
    net.for_each_tensor(&mut |t, w| {
        if t.name == "dense0.weight" {
            w0.extend_from_slice(w);
        }
    });
    let both = Penalty::new(0.01, 0.02).value(&net);
    let expected = by_hand(&w0, 0.01, 0.02) + by_hand(&w1, 0.01, 0.32);
    assert!(
        (both - expected).abs() <= 1e-14 * expected,
        "{both} vs {expected}"
    );
    // The bias carries its layer's coefficients too, used only when biases are penalized.
    let mut b1 = Vec::new();
    net.for_each_tensor(&mut |t, w| {
        if t.name == "dense1.bias" {
            b1.extend_from_slice(w);
        }
    });
    let with_bias = Penalty {
        include_bias: true,
        ..Penalty::new(0.0, 0.0)
    }
    .value(&net);
    let expected = by_hand(&w1, 0.0, 0.3) + by_hand(&b1, 0.0, 0.3);
    assert!((with_bias - expected).abs() <= 1e-14 * expected);
}

#[test]
fn dsl_penalty_trains_like_the_same_global_penalty() {
    let data = data();
    let mut local = Local::new(&mut StdRng::seed_from_u64(5));
    let mut plain = Plain::new(&mut StdRng::seed_from_u64(5));
    let mut unpenalized = Plain::new(&mut StdRng::seed_from_u64(5));
    assert_eq!(local.to_flat(), plain.to_flat(), "same initialization");

    let h_local = trainer(4).fit(&mut local, &data, None).expect("training");
    let h_plain = trainer(4)
        .l1(0.05)
        .l2(0.1)
        .fit(&mut plain, &data, None)
        .expect("training");
    let h_none = trainer(4)
        .fit(&mut unpenalized, &data, None)
        .expect("training");

    // Same coefficients on the same tensor: the same steps, so the same weights and losses.
    let (a, b) = (local.to_flat(), plain.to_flat());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-15, "{a:?} vs {b:?}");
    }
    for (x, y) in h_local.epochs.iter().zip(&h_plain.epochs) {
        assert!((x.train_loss - y.train_loss).abs() <= 1e-14 * y.train_loss);
    }
    // And the penalty did something: it shrinks the weights and raises the reported loss.
    let norm = |w: &[f64]| w.iter().map(|x| x * x).sum::<f64>();
    let mut wl = Vec::new();
    let mut wn = Vec::new();
    local.for_each_tensor(&mut |t, w| {
        if !t.is_bias {
            wl.extend_from_slice(w)
        }
    });
    unpenalized.for_each_tensor(&mut |t, w| {
        if !t.is_bias {
            wn.extend_from_slice(w)
        }
    });
    assert!(norm(&wl) < norm(&wn), "{} !< {}", norm(&wl), norm(&wn));
    assert!(h_local.epochs[0].train_loss > h_none.epochs[0].train_loss);
}

#[test]
fn reported_loss_includes_the_dsl_penalty() {
    // One full-batch step with lr 0: the weights stay, so the first epoch's loss is the data
    // loss of the initial weights plus their penalty.
    let data = data();
    let mut net = Local::new(&mut StdRng::seed_from_u64(8));
    let mut w = Vec::new();
    net.for_each_tensor(&mut |t, x| {
        if !t.is_bias {
            w.extend_from_slice(x)
        }
    });
    let penalty = by_hand(&w, 0.05, 0.1);
    let out = net.forward(data.inputs());
    let Labels::Values { values, .. } = data.labels() else {
        panic!("regression data")
    };
    let mse = out
        .iter()
        .zip(values)
        .map(|(o, y)| (o - y) * (o - y))
        .sum::<f64>()
        / values.len() as f64;
    let history = Trainer::new(Mse, Sgd::new(0.0))
        .epochs(1)
        .batch_size(data.len())
        .progress(Progress::Off)
        .fit(&mut net, &data, None)
        .expect("training");
    let got = history.epochs[0].train_loss;
    let expected = mse + penalty;
    assert!(
        (got - expected).abs() <= 1e-12 * expected,
        "{got} vs {expected}"
    );
}
