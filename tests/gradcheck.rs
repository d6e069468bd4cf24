//! Backward of generated networks against finite differences, for every activation and layer
//! kind, in f64.

use nn::prelude::*;
use nn::runtime::gradcheck::gradcheck;

network! { Saturating: f64 < dense(3 -> 5, tanh), dropout(0.3), dense(5 -> 4, sigmoid), dense(4 -> 3, softmax) > }

network! {
    Smooth: f64 < dense(3 -> 4, leaky_relu(0.1)), dense(4 -> 4, elu(0.7)), dense(4 -> 4, gelu),
        dense(4 -> 4, gelu_tanh), dense(4 -> 4, softplus(2.0)), dense(4 -> 4, silu),
        dense(4 -> 2, relu, bias = false) >
}

network! { Standalone: f64 < dense(3 -> 4), relu, dense(4 -> 4), tanh, dropout(0.5), dense(4 -> 3), softmax > }

network! { Linear: f64 < dense(3 -> 3, identity), dense(3 -> 2, linear, init = normal(0.5)) > }

network! { StandaloneSmooth: f64 < dense(3 -> 4), gelu, dense(4 -> 4), elu, dense(4 -> 2), sigmoid > }

// A bias right before batch norm has a gradient of exactly 0 (the batch mean removes it),
// which finite differences can only approximate by rounding noise: the dense layers that
// feed a batch norm go without, as is usual.
network! {
    Normalized: f64 < dense(3 -> 5, bias = false), batch_norm, tanh, dense(5 -> 4, tanh),
        layer_norm, dense(4 -> 4, tanh, bias = false),
        batch_norm(momentum = 0.3, eps = 1e-3, affine = false),
        dense(4 -> 4, sigmoid), layer_norm(affine = false), dense(4 -> 2) >
}

fn batch<const IN: usize>(n: usize, seed: u64) -> Batch<f64, IN> {
    let mut rng = StdRng::seed_from_u64(seed);
    Batch::<f64, IN>::from_fn(n, |_, _| rng.random_range(-1.5..1.5))
}

fn check<N: Network<IN, OUT, Scalar = f64>, const IN: usize, const OUT: usize>(seed: u64) {
    let mut net = N::init(&mut StdRng::seed_from_u64(seed));
    // Non-zero biases, so their gradients are exercised away from the initial point.
    net.for_each_tensor_mut(&mut |t, v| {
        if t.is_bias {
            for (i, b) in v.iter_mut().enumerate() {
                *b = 0.1 * (i as f64 - 1.0);
            }
        }
    });
    let report = gradcheck(&mut net, &batch::<IN>(5, seed + 1), seed + 2);
    println!("{}: {report:?}", N::NAME);
    assert_eq!(report.compared, N::PARAMS);
    assert!(report.max_error < 1e-6, "{}: {report:?}", N::NAME);
}

#[test]
fn sigmoid_tanh_softmax_and_dropout() {
    check::<Saturating, 3, 3>(1);
}

#[test]
fn relu_family_and_smooth_activations() {
    check::<Smooth, 3, 2>(2);
}

/// Batch norm in training mode (the batch's statistics, so every sample's output depends on
/// every other's) and layer norm, affine or not; `PARAMS` counts `γ` and `β` but not the
/// running statistics, which have no gradient.
#[test]
fn batch_norm_and_layer_norm() {
    check::<Normalized, 3, 2>(6);
}

#[test]
fn standalone_activation_layers() {
    check::<Standalone, 3, 3>(3);
    check::<StandaloneSmooth, 3, 2>(4);
}

#[test]
fn identity_layers() {
    check::<Linear, 3, 2>(5);
}

#[test]
fn a_wrong_gradient_is_caught() {
    use nn::runtime::gradcheck::{analytic_gradient, compare_with_finite_differences};
    let mut net = Smooth::init(&mut StdRng::seed_from_u64(9));
    let x = batch::<3>(4, 10);
    let mut flat = analytic_gradient(&mut net, &x, 11);
    assert!(compare_with_finite_differences(&mut net, &x, 11, &flat).max_error < 1e-6);
    // One element off by 1 % is caught, at that element.
    let k = Smooth::TENSORS[0].len() + 1; // dense0.bias[1]
    flat[k] += 0.01 * flat[k].abs().max(1e-3);
    let wrong = compare_with_finite_differences(&mut net, &x, 11, &flat);
    assert!(wrong.max_error > 1e-3, "{wrong:?}");
    assert_eq!((wrong.tensor, wrong.element), ("dense0.bias", 1));
}
