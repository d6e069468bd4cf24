//! Results do not depend on the thread count.
//!
//! - `forward` on a large batch is split into one part of columns per thread
//!   (`kernel::split_batch`): every column's output has the same bits as on one thread, for
//!   batches below, at and above the split threshold, in `f32` and `f64`.
//! - Training on two threads, where the trainer's `ThreadGovernor` runs some steps with the
//!   helper thread and some without, ends with the weights of training on one thread, bit for
//!   bit, with SGD (fused into the backward pass) and with Adam.
//!
//! (Its own test binary: it changes the process-wide thread count.)

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::kernel;
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{Adam, Optimizer, Sgd};
use nn::runtime::train::{Progress, Trainer};
use std::sync::Mutex;

/// The tests of this binary change the process-wide thread count: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

network! { W1 < dense(784 -> 128, relu), dropout(0.2), dense(128 -> 10, softmax) > }
network! { Deep: f64 < dense(64 -> 256, tanh), dense(256 -> 256, relu), dense(256 -> 3) > }

fn bits<T: Copy + Into<f64>>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.into().to_bits()).collect()
}

#[test]
fn split_batches_give_the_single_thread_bits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let w1 = W1::new(&mut StdRng::seed_from_u64(1));
    let deep = Deep::new(&mut StdRng::seed_from_u64(2));
    // W1 splits from 21 columns (2^21 / 101,632 multiply-adds each), Deep from 26 (82,688).
    for n in [1, 5, 20, 21, 22, 33, 128, 1000, 1001] {
        let x1 = Batch::<f32, 784>::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0);
        let x2 = Batch::<f64, 64>::from_fn(n, |i, j| ((i * 13 + j * 7) % 29) as f64 / 29.0 - 0.5);
        kernel::set_threads(1);
        let (one1, one2) = (w1.forward(&x1), deep.forward(&x2));
        assert_eq!((one1.ncols(), one2.ncols()), (n, n));
        for threads in [2, 3] {
            kernel::set_threads(threads);
            let (y1, y2) = (w1.forward(&x1), deep.forward(&x2));
            assert_eq!(
                bits(y1.as_slice()),
                bits(one1.as_slice()),
                "W1, {n} columns, {threads} threads"
            );
            assert_eq!(
                bits(y2.as_slice()),
                bits(one2.as_slice()),
                "Deep, {n} columns, {threads} threads"
            );
        }
        // Each column is the network applied to that sample (softmax columns sum to one).
        for c in one1.column_iter() {
            assert!((c.sum() - 1.0).abs() < 1e-5);
        }
    }
    kernel::set_threads(1);
}

network! { Mlp < dense(784 -> 128, relu), dense(128 -> 10, softmax) > }

/// The weights after two epochs on 1,000 synthetic samples, batch 32 (its products and Adam
/// steps are large enough to be split), on `threads` threads.
fn trained(threads: usize, opt: impl Optimizer<f32>) -> (Vec<f32>, u64) {
    let n = 1_000;
    let x: Vec<f32> = (0..784 * n)
        .map(|i| ((i * 37 + i / 784 * 11) % 101) as f32 / 101.0)
        .collect();
    let labels = (0..n).map(|i| (i * 7 + i / 13) % 10).collect();
    let data = Dataset::<f32, 784>::from_slices(
        &x,
        Labels::Classes {
            labels,
            classes: 10,
        },
    )
    .expect("valid data");
    let mut net = Mlp::new(&mut StdRng::seed_from_u64(4));
    kernel::set_threads(threads);
    let mut trainer = Trainer::new(CrossEntropy, opt)
        .epochs(2)
        .batch_size(32)
        .progress(Progress::Off);
    let fitted = trainer.fit(&mut net, &data, None);
    kernel::set_threads(1);
    let history = fitted.expect("training");
    assert!(history.epochs[1].train_loss < history.epochs[0].train_loss);
    let alone = trainer.steps_alone().iter().sum();
    (net.to_flat(), alone)
}

#[test]
fn training_on_two_threads_gives_the_single_thread_bits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (name, one, two) in [
        ("sgd", trained(1, Sgd::new(0.1)), trained(2, Sgd::new(0.1))),
        (
            "adam",
            trained(1, Adam::new(1e-3)),
            trained(2, Adam::new(1e-3)),
        ),
    ] {
        assert_eq!(bits(&two.0), bits(&one.0), "{name}");
        // 2 x 32 steps: on one thread none runs alone; on two the governor's first probe ran
        // some alone, the rest with the helper.
        assert_eq!(one.1, 0, "{name}");
        assert!(two.1 >= 4 && two.1 < 64, "{name}: {} steps alone", two.1);
    }
}
