//! # Regularization: closing the gap between training and validation
//!
//! Overfits a wide network on 1,000 MNIST images, then trains the same network again with an
//! L2 penalty, with dropout, and with early stopping (restoring the best weights), and prints
//! the training and validation loss of every epoch for each, and the final gap. The
//! validation images are held out of the training set (`Trainer::validation_fraction`), so
//! early stopping never sees the test set, which scores each run's final weights once.
//!
//! ```text
//! cargo run --release --example regularization
//! cargo run --release --example regularization -- --epochs 8   # shorter
//! ```

use nn::prelude::*;
use nn::runtime::data::{mnist, Dataset};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{evaluate, EarlyStopping, History, Progress, Trainer};
use std::error::Error;
use std::path::PathBuf;

network! {
    /// Wide enough to memorize 1,000 images.
    Wide < dense(784 -> 256, relu), dense(256 -> 10, softmax) >
}

network! {
    /// The same with dropout on the hidden layer.
    WideDropout < dense(784 -> 256, relu), dropout(0.5), dense(256 -> 10, softmax) >
}

/// Of the 3,000 images given, 2,000 (drawn by the seed) are held out for validation.
const VALIDATION_FRACTION: f64 = 2.0 / 3.0;

/// Trains a fresh network; returns its history and its test loss.
fn fit<N: Network<784, 10, Scalar = f32>>(
    setup: impl FnOnce(
        Trainer<'static, CrossEntropy, Adam<f32>>,
    ) -> Trainer<'static, CrossEntropy, Adam<f32>>,
    data: &Dataset<f32, 784>,
    test: &Dataset<f32, 784>,
    epochs: usize,
) -> Result<(History, f64), Box<dyn Error>> {
    let mut net = N::init(&mut StdRng::seed_from_u64(3));
    let trainer = Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(epochs)
        .batch_size(32)
        .seed(3)
        .validation_fraction(VALIDATION_FRACTION)
        .progress(Progress::Off);
    let history = setup(trainer).fit(&mut net, data, None)?;
    let (test_loss, _) = evaluate(&net, &CrossEntropy, test)?;
    Ok((history, test_loss))
}

fn print(name: &str, h: &History) {
    println!("\n{name}");
    println!("{:>5} {:>10} {:>10} {:>8}", "epoch", "train", "val", "gap");
    for e in &h.epochs {
        let val = e.val_loss.unwrap_or(f64::NAN);
        println!(
            "{:>5} {:>10.4} {:>10.4} {:>8.4}",
            e.epoch,
            e.train_loss,
            val,
            val - e.train_loss
        );
    }
    if let Some(e) = h.restored_epoch {
        println!("(early stopping restored the weights of epoch {e})");
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::var_os("NN_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"));
    let (train, test) = mnist::load::<f32>(&dir)?;
    // 1,000 images to train on and 2,000 to validate on, all from the training set.
    let data = train.subset(&(0..3000).collect::<Vec<_>>())?;
    let mut epochs = 30;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--epochs" => epochs = args.next().ok_or("--epochs needs a value")?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }

    let runs = [
        (
            "no regularization",
            fit::<Wide>(|t| t, &data, &test, epochs)?,
        ),
        (
            "L2 1e-3",
            fit::<Wide>(|t| t.l2(1e-3), &data, &test, epochs)?,
        ),
        (
            "dropout 0.5",
            fit::<WideDropout>(|t| t, &data, &test, epochs)?,
        ),
        (
            "early stopping (patience 3)",
            fit::<Wide>(
                |t| t.early_stopping(EarlyStopping::new(3)),
                &data,
                &test,
                epochs,
            )?,
        ),
    ];
    for (name, (h, _)) in &runs {
        print(name, h);
    }
    println!(
        "\nsummary: validation loss, train/validation gap and test loss (all 10,000 test images) of the weights each run ends with"
    );
    for (name, (h, test_loss)) in &runs {
        let kept = h
            .restored_epoch
            .and_then(|e| h.epochs.iter().find(|r| r.epoch == e))
            .or(h.last());
        let (val, train) = kept.map_or((f64::NAN, f64::NAN), |e| {
            (e.val_loss.unwrap_or(f64::NAN), e.train_loss)
        });
        println!(
            "{name:<30} val {val:.4}  gap {:.4}  test {test_loss:.4}",
            val - train
        );
    }
    Ok(())
}
