//! Plain SGD fused into the backward pass (`Network::backward_sgd`, taken by the trainer for
//! `Sgd` without momentum or weight decay, penalty or clipping) against the checked path
//! (`backward`, then `Sgd::step`): the same bits wherever the batch fits in one block of the
//! GEMM's inner dimension (the weight update is then `W + round(−lr·g)` either way), close
//! above it; and nothing changed when a gradient could be non-finite.
//!
//! (Its own test binary: it changes the process-wide thread count.)

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::kernel;
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{Optimizer, Sgd};
use nn::runtime::train::{Clip, Progress, Trainer};
use nn::runtime::{Float, FusedStep, GradientOf, Tape};

network! { W1 < dense(784 -> 128, relu), dropout(0.2), dense(128 -> 10, softmax) > }
network! { Standalone: f64 < dense(5 -> 6), relu, dense(6 -> 6, bias = false), tanh, dropout(0.5), dense(6 -> 3), softmax > }
network! { Wide: f64 < dense(40 -> 300, elu(0.7)), dense(300 -> 2, sigmoid) > }
network! { Tiny < dense(1 -> 1) > }
network! { TinyLeaky < dense(1 -> 1), leaky_relu(0.1) > }

fn bits<T: Copy + Into<f64>>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.into().to_bits()).collect()
}

/// A network with non-zero biases, and an input batch of `n` columns with some zeros.
fn setup<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    n: usize,
    seed: u64,
) -> (N, Batch<N::Scalar, IN>) {
    let mut net = N::init(&mut StdRng::seed_from_u64(seed));
    net.for_each_tensor_mut(&mut |t, v| {
        if t.is_bias {
            for (i, b) in v.iter_mut().enumerate() {
                *b = N::Scalar::of(0.05 * (i % 7) as f64 - 0.1);
            }
        }
    });
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let x = Batch::<N::Scalar, IN>::from_fn(n, |_, _| {
        let v: f64 = rng.random_range(-0.5..1.0);
        N::Scalar::of(v.max(0.0))
    });
    (net, x)
}

/// Records `x` (dropout masks from `seed`) and puts a fixed output gradient in the tape.
fn record<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<N::Scalar, IN>,
    tape: &mut N::Tape,
    seed: u64,
) {
    net.forward_train(x.as_view(), tape, &mut StdRng::seed_from_u64(seed));
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for g in tape.output_parts().grad.iter_mut() {
        *g = N::Scalar::of(rng.random_range(-1.0..1.0));
    }
}

/// The parameters after one step taken both ways: `(checked, fused)`.
fn both_ways<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    n: usize,
    seed: u64,
    sgd: Sgd<N::Scalar>,
) -> (Vec<N::Scalar>, Vec<N::Scalar>) {
    let (mut net, x) = setup::<N, IN, OUT>(n, seed);
    let before = net.to_flat();
    let mut tape = net.new_tape();

    record(&mut net, &x, &mut tape, seed);
    let mut grads = net.zero_gradients();
    net.backward(x.as_view(), &mut tape, GradientOf::Output, &mut grads);
    let mut checked = sgd.clone();
    checked.step(&mut net, &grads);
    let stepped = net.to_flat();

    net.copy_from_flat(&before);
    record(&mut net, &x, &mut tape, seed);
    let scale = sgd.linear_step().expect("plain SGD is a linear step");
    let outcome = net.backward_sgd(
        x.as_view(),
        &mut tape,
        GradientOf::Output,
        N::Scalar::of(scale),
        &mut grads,
    );
    assert_eq!(outcome, FusedStep::Stepped);
    (stepped, net.to_flat())
}

#[test]
fn fused_step_has_the_bits_of_backward_then_sgd() {
    for threads in [1, 2] {
        kernel::set_threads(threads);
        // Up to the GEMM's inner block (256 samples) the two are the same operations.
        for n in [1, 3, 32, 128, 256] {
            let at = format!("{n} samples, {threads} threads");
            let (a, b) = both_ways::<W1, 784, 10>(n, 1, Sgd::new(0.1));
            assert_eq!(bits(&a), bits(&b), "W1, {at}");
            let (a, b) = both_ways::<W1, 784, 10>(n, 2, Sgd::new(0.03).maximize(true));
            assert_eq!(bits(&a), bits(&b), "W1 maximizing, {at}");
            let (a, b) = both_ways::<Standalone, 5, 3>(n, 3, Sgd::new(0.5));
            assert_eq!(bits(&a), bits(&b), "Standalone, {at}");
            let (a, b) = both_ways::<Wide, 40, 2>(n, 4, Sgd::new(0.2));
            assert_eq!(bits(&a), bits(&b), "Wide, {at}");
        }
    }
    kernel::set_threads(1);
}

/// `max |a_i − b_i|`, each difference computed in the values' own type, then widened.
fn largest_difference<T: Float>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a - b).abs().to_f64())
        .fold(0.0, f64::max)
}

#[test]
fn fused_step_above_one_gemm_block_is_close() {
    // Past 256 samples the fused update adds each block's share of the gradient on its own.
    for threads in [1, 2] {
        kernel::set_threads(threads);
        let (a, b) = both_ways::<W1, 784, 10>(600, 5, Sgd::new(0.1));
        let worst = largest_difference(&a, &b);
        assert!(worst <= 1e-6, "W1, 600 samples: {worst}");
        let (a, b) = both_ways::<Wide, 40, 2>(257, 6, Sgd::new(0.2));
        let worst = largest_difference(&a, &b);
        assert!(worst <= 1e-14, "Wide, 257 samples: {worst}");
    }
    kernel::set_threads(1);
}

/// `backward_sgd` on a recorded tape: whether it stepped, the parameters after it, and the
/// gradients it wrote; then, on the same recording, what `backward` writes.
fn refused<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    x: &Batch<N::Scalar, IN>,
    set: impl Fn(&mut N::Tape),
) -> (bool, Vec<N::Scalar>, Vec<N::Scalar>) {
    let mut tape = net.new_tape();
    net.forward_train(x.as_view(), &mut tape, &mut StdRng::seed_from_u64(9));
    set(&mut tape);
    let mut grads = net.zero_gradients();
    let before = net.to_flat();
    let stepped = net.backward_sgd(
        x.as_view(),
        &mut tape,
        GradientOf::Output,
        N::Scalar::of(-0.1),
        &mut grads,
    ) == FusedStep::Stepped;
    let after = net.to_flat();
    if !stepped {
        let nan_equal = |a: &[N::Scalar], b: &[N::Scalar]| {
            a.iter()
                .zip(b)
                .all(|(a, b)| a == b || (a.to_f64().is_nan() && b.to_f64().is_nan()))
        };
        assert!(
            nan_equal(&after, &before),
            "a refused step changed the parameters"
        );
        // The fallback gradients are `backward`'s on the same recording (the output
        // gradient's in-place steps applied once).
        let mut fresh = net.new_tape();
        net.forward_train(x.as_view(), &mut fresh, &mut StdRng::seed_from_u64(9));
        set(&mut fresh);
        let mut want = net.zero_gradients();
        net.backward(x.as_view(), &mut fresh, GradientOf::Output, &mut want);
        assert!(
            nan_equal(&grads.to_flat(), &want.to_flat()),
            "fallback gradients"
        );
    }
    (stepped, before, grads.to_flat())
}

#[test]
fn a_gradient_that_could_be_non_finite_changes_nothing_and_is_handed_back() {
    for (what, bad) in [("NaN", f32::NAN), ("infinity", f32::INFINITY)] {
        let (mut net, mut x) = setup::<W1, 784, 10>(32, 7);
        x[(400, 5)] = bad;
        let (stepped, _, grads) = refused(&mut net, &x, |_| {});
        assert!(!stepped, "{what} in the input");
        assert!(grads.iter().any(|g| !g.is_finite()), "{what} in the input");
    }
    // Finite factors whose product overflows: w = 1e-30, x = 1e38, z = 1e8, dL/dz = 10, so
    // dL/dw = 1e39, beyond f32. With dL/dz = 1e-3 the gradient is 1e35 and the step is taken.
    for (dz, steps) in [(10.0f32, false), (1e-3, true)] {
        let mut net = Tiny::new(&mut StdRng::seed_from_u64(9));
        net.dense0.weight.as_mut_slice()[0] = 1e-30;
        let x = Batch::<f32, 1>::from_element(1, 1e38);
        let (stepped, before, grads) = refused(&mut net, &x, |t| t.output_parts().grad[0] = dz);
        assert_eq!(stepped, steps, "dL/dz = {dz}");
        if steps {
            assert_eq!(net.to_flat()[0], before[0] - 0.1 * 1e35f32, "dL/dz = {dz}");
        } else {
            assert_eq!(grads[0], f32::INFINITY, "dL/dz = {dz}");
        }
    }
    // Refused with finite gradients: w = -1e-30, x = 1e38, z = -1e8, leaky ReLU's slope 0.1
    // turns dL/da = 10 into dL/dz = 1 in place on the output gradient, and dL/dw = 1e38 (finite
    // in f32) is above what the bound can vouch for. The gradient handed back must have the
    // slope applied once (1e38, not 1e37): the trainer then checks it and steps.
    let mut net = TinyLeaky::new(&mut StdRng::seed_from_u64(9));
    net.dense0.weight.as_mut_slice()[0] = -1e-30;
    let x = Batch::<f32, 1>::from_element(1, 1e38);
    let (stepped, _, grads) = refused(&mut net, &x, |t| t.output_parts().grad[0] = 10.0);
    assert!(!stepped);
    assert_eq!(grads[0], 1e38);
    // A bad output gradient reaches every layer's factors.
    let (mut net, x) = setup::<Standalone, 5, 3>(4, 8);
    let (stepped, _, _) = refused(&mut net, &x, |t| t.output_parts().grad[2] = f64::NAN);
    assert!(!stepped);
}

/// Three noisy classes in 784 dimensions, mostly zeros like MNIST.
fn digits(n: usize) -> Dataset<f32, 784> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut x = Vec::with_capacity(784 * n);
    for i in 0..n {
        for f in 0..784 {
            let on = f % 3 == i % 3 && rng.random_range(0.0..1.0) < 0.4;
            x.push(if on { rng.random_range(0.2..1.0) } else { 0.0 });
        }
    }
    let labels = (0..n).map(|i| i % 3).collect();
    Dataset::from_slices(
        &x,
        Labels::Classes {
            labels,
            classes: 10,
        },
    )
    .expect("finite data")
}

/// Plain SGD that counts its per-tensor updates (none when the trainer fuses the step).
#[derive(Clone)]
struct Counted {
    sgd: Sgd<f32>,
    updates: usize,
}

impl Optimizer<f32> for Counted {
    fn name(&self) -> &'static str {
        self.sgd.name()
    }
    fn learning_rate(&self) -> f64 {
        self.sgd.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.sgd.set_learning_rate(lr)
    }
    fn begin_step(&mut self) {
        self.sgd.begin_step()
    }
    fn update(&mut self, tensor: &nn::runtime::TensorInfo, param: &mut [f32], grad: &[f32]) {
        self.updates += 1;
        self.sgd.update(tensor, param, grad)
    }
    fn linear_step(&self) -> Option<f64> {
        self.sgd.linear_step()
    }
    fn state(&self) -> nn::runtime::optim::OptimizerState<f32> {
        self.sgd.state()
    }
    fn load_state(
        &mut self,
        state: &nn::runtime::optim::OptimizerState<f32>,
    ) -> Result<(), nn::runtime::optim::OptimError> {
        self.sgd.load_state(state)
    }
}

#[test]
fn the_trainer_fused_and_checked_train_the_same_bits() {
    let data = digits(300);
    kernel::set_threads(2);
    let train = |clip: Option<Clip>| {
        let mut net = W1::new(&mut StdRng::seed_from_u64(12));
        let sgd = Counted {
            sgd: Sgd::new(0.1),
            updates: 0,
        };
        let mut trainer = Trainer::new(CrossEntropy, sgd)
            .epochs(2)
            .batch_size(64)
            .progress(Progress::Off);
        if let Some(c) = clip {
            trainer = trainer.clip(c);
        }
        let history = trainer.fit(&mut net, &data, None).expect("training");
        let losses: Vec<u64> = history
            .epochs
            .iter()
            .map(|e| e.train_loss.to_bits())
            .collect();
        let state = trainer.optimizer().state();
        (
            bits(&net.to_flat()),
            losses,
            trainer.optimizer().updates,
            state.step,
        )
    };
    // Clipping at a norm no gradient reaches changes no gradient, but takes the checked path.
    let (fused, fused_losses, none, fused_steps) = train(None);
    let (checked, checked_losses, updates, checked_steps) = train(Some(Clip::Norm(1e30)));
    // 2 epochs of 5 batches, 4 tensors each.
    assert_eq!((none, updates), (0, 2 * 5 * 4));
    assert_eq!((fused_steps, checked_steps), (10, 10));
    assert_eq!(fused_losses, checked_losses);
    assert_eq!(fused, checked);
    let first = W1::new(&mut StdRng::seed_from_u64(12));
    assert_ne!(fused, bits(&first.to_flat()), "training moved the weights");
    kernel::set_threads(1);
}
