//! Criterion benchmarks of the kernels behind one training step and one prediction, on the
//! shapes of the standard workloads (W1 = 784-128-10, W2 = 784-512-512-10, f32):
//!
//! - `forward/<net>/b<N>`: `forward_train` on a batch of `N` (products, bias, activations);
//! - `backward/<net>/b<N>`: `backward` from the fused softmax/cross-entropy gradient;
//! - `backward_sgd/<net>/b<N>`: `backward_sgd`, the backward pass with a plain SGD step fused
//!   into its weight-gradient products (no gradient stored, no separate step);
//! - `loss/<net>/b<N>`: the fused loss and its gradient;
//! - `step_sgd/<net>`, `step_adam/<net>`: one optimizer step over every parameter;
//! - `predict/w1`: single-sample inference (the matrix-vector kernel).
//!
//! ```text
//! cargo bench --bench kernels                 # everything
//! cargo bench --bench kernels -- step_adam    # a filter
//! NN_NUM_THREADS=2 cargo bench --bench kernels -- forward/w2
//! ```
//!
//! Inputs are synthetic (deterministic pseudo-random pixels and labels): the kernels' speed does
//! not depend on the values, and the benches need no data files.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nn::prelude::*;
use nn::runtime::loss::{loss_on_output, CrossEntropy, Targets};
use nn::runtime::optim::{Adam, Optimizer, Sgd};
use std::hint::black_box;

network! {
    /// W1 of the standard workloads.
    W1 < dense(784 -> 128, relu), dense(128 -> 10, softmax) >
}

network! {
    /// W2 of the standard workloads.
    W2 < dense(784 -> 512, relu), dense(512 -> 512, relu), dense(512 -> 10, softmax) >
}

const BATCHES: [usize; 2] = [32, 128];

/// A batch of `n` pseudo-random inputs in [0, 1) and class labels.
fn batch(n: usize) -> (Batch<f32, 784>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let x = Batch::<f32, 784>::from_fn(n, |_, _| rng.random::<f32>());
    let labels = (0..n).map(|_| rng.random_range(0..10)).collect();
    (x, labels)
}

/// Forward, loss, backward and both optimizer steps of network `N` under `name`.
fn train_kernels<N: Network<784, 10, Scalar = f32>>(c: &mut Criterion, name: &str) {
    let mut net = N::init(&mut StdRng::seed_from_u64(0));
    let mut tape = net.new_tape();
    let mut grads = net.zero_gradients();
    let mut rng = StdRng::seed_from_u64(1);
    for n in BATCHES {
        let (x, labels) = batch(n);
        // Benches may be filtered out: every input a bench reads is set up outside it.
        net.forward_train(x.columns(0, n), &mut tape, &mut rng);
        let id = BenchmarkId::new(name, format!("b{n}"));
        let mut g = c.benchmark_group("forward");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(id.clone(), |b| {
            b.iter(|| net.forward_train(black_box(x.columns(0, n)), &mut tape, &mut rng))
        });
        g.finish();

        let mut g = c.benchmark_group("loss");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(id.clone(), |b| {
            b.iter(|| {
                loss_on_output(
                    &CrossEntropy,
                    N::OUTPUT_ACTIVATION,
                    tape.output_parts(),
                    Targets::Classes(black_box(&labels)),
                )
            })
        });
        g.finish();

        // The tape holds this batch's activations and now the loss gradient.
        let (_, wrt) = loss_on_output(
            &CrossEntropy,
            N::OUTPUT_ACTIVATION,
            tape.output_parts(),
            Targets::Classes(&labels),
        )
        .expect("labels below 10 and whole samples");
        let mut g = c.benchmark_group("backward");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(id, |b| {
            b.iter(|| net.backward(black_box(x.columns(0, n)), &mut tape, wrt, &mut grads))
        });
        g.finish();

        // Backward with a plain SGD step fused into its products (what the trainer runs for
        // `Sgd` without momentum): compare with `backward` plus `step_sgd`. A tiny rate keeps
        // the weights where they are.
        let mut g = c.benchmark_group("backward_sgd");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new(name, format!("b{n}")), |b| {
            b.iter(|| {
                net.backward_sgd(
                    black_box(x.columns(0, n)),
                    &mut tape,
                    wrt,
                    -1e-9,
                    &mut grads,
                )
            })
        });
        g.finish();
        net.backward(x.columns(0, n), &mut tape, wrt, &mut grads);
    }

    let mut g = c.benchmark_group("step_sgd");
    g.throughput(Throughput::Elements(N::PARAMS as u64));
    let mut sgd = Sgd::new(0.1);
    g.bench_function(name, |b| b.iter(|| sgd.step(&mut net, black_box(&grads))));
    g.finish();

    let mut g = c.benchmark_group("step_adam");
    g.throughput(Throughput::Elements(N::PARAMS as u64));
    let mut adam = Adam::new(1e-3);
    g.bench_function(name, |b| b.iter(|| adam.step(&mut net, black_box(&grads))));
    g.finish();
}

fn kernels(c: &mut Criterion) {
    train_kernels::<W1>(c, "w1");
    train_kernels::<W2>(c, "w2");

    let net = W1::init(&mut StdRng::seed_from_u64(0));
    let (x, _) = batch(1);
    let x = SVector::<f32, 784>::from_column_slice(x.as_slice());
    c.bench_function("predict/w1", |b| b.iter(|| net.predict(black_box(&x))));
}

criterion_group!(benches, kernels);
criterion_main!(benches);
