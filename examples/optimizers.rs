//! # Optimizers side by side
//!
//! Trains the same network from the same initial weights and batch order with SGD, SGD with
//! momentum (Nesterov), Adagrad, RMSprop, Adam and AdaMax, on 6,000 MNIST images, and prints a
//! table of the training loss per epoch and the final validation accuracy.
//!
//! ```text
//! cargo run --release --example optimizers
//! cargo run --release --example optimizers -- --epochs 2   # shorter
//! ```

use nn::prelude::*;
use nn::runtime::data::{mnist, Dataset};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{AdaMax, Adagrad, Adam, Optimizer, RmsProp, Sgd};
use nn::runtime::train::{History, Progress, Trainer};
use std::error::Error;
use std::path::PathBuf;

network! {
    /// A small MNIST classifier.
    Small < dense(784 -> 64, relu), dense(64 -> 10, softmax) >
}

fn run<O: Optimizer<f32>>(
    opt: O,
    epochs: usize,
    train: &Dataset<f32, 784>,
    val: &Dataset<f32, 784>,
) -> Result<History, Box<dyn Error>> {
    let mut net = Small::new(&mut StdRng::seed_from_u64(42));
    Ok(Trainer::new(CrossEntropy, opt)
        .epochs(epochs)
        .batch_size(32)
        .seed(42)
        .progress(Progress::Off)
        .fit(&mut net, train, Some(val))?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut epochs = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--epochs" => epochs = args.next().ok_or("--epochs needs a value")?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let dir = std::env::var_os("NN_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"));
    let (train, test) = mnist::load::<f32>(&dir)?;
    let train = train.subset(&(0..6000).collect::<Vec<_>>())?;
    let val = test.subset(&(0..2000).collect::<Vec<_>>())?;

    let runs: Vec<(&str, History)> = vec![
        ("SGD(0.1)", run(Sgd::new(0.1), epochs, &train, &val)?),
        (
            "SGD(0.05, nesterov 0.9)",
            run(
                Sgd::new(0.05).momentum(0.9).nesterov(true),
                epochs,
                &train,
                &val,
            )?,
        ),
        (
            "Adagrad(0.05)",
            run(Adagrad::new(0.05), epochs, &train, &val)?,
        ),
        (
            "RMSprop(1e-3)",
            run(RmsProp::new(1e-3), epochs, &train, &val)?,
        ),
        ("Adam(1e-3)", run(Adam::new(1e-3), epochs, &train, &val)?),
        (
            "AdaMax(2e-3)",
            run(AdaMax::new(2e-3), epochs, &train, &val)?,
        ),
    ];

    print!("{:<26}", "training loss by epoch");
    for e in 1..=epochs {
        print!("{:>8}", e);
    }
    println!("{:>10}", "val acc");
    for (name, h) in &runs {
        print!("{name:<26}");
        for e in &h.epochs {
            print!("{:>8.4}", e.train_loss);
        }
        let acc = h
            .last()
            .and_then(|e| e.val_metrics)
            .and_then(|m| m.accuracy())
            .unwrap_or(0.0);
        println!("{acc:>10.4}");
    }
    Ok(())
}
