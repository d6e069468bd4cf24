//! Training on the real MNIST files (shipped in `data/mnist`) reaches a known accuracy.
//!
//! A release-mode test: `cargo test --release --test mnist_training` (CI runs it). In debug
//! builds it is ignored, since unoptimized training takes minutes.

use nn::prelude::*;
use nn::runtime::data::mnist;
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{evaluate, Progress, Trainer};
use std::path::PathBuf;

network! { Mnist < dense(784 -> 128, relu), dropout(0.2), dense(128 -> 10, softmax) > }

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release-mode test: cargo test --release --test mnist_training"
)]
fn two_epochs_on_mnist_reach_96_percent() {
    let dir = std::env::var_os("NN_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"));
    let (train, test) = mnist::load::<f32>(&dir).expect("the MNIST files");
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    let mut net = Mnist::new(&mut StdRng::seed_from_u64(7));
    let history = Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(2)
        .batch_size(32)
        .seed(7)
        .progress(Progress::Lines)
        .fit(&mut net, &train, None)
        .expect("training");
    let (loss, metrics) = evaluate(&net, &CrossEntropy, &test).expect("evaluation");
    let accuracy = metrics.accuracy().expect("classification");
    println!("{history}\ntest loss {loss:.4}, test accuracy {accuracy:.4}");
    assert!(accuracy > 0.96, "test accuracy {accuracy}");
}
