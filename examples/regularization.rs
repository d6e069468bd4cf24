//! # Regularization: closing the gap between training and validation
//!
//! Overfits a wide network on 1,000 MNIST images, then trains the same network again with an
//! L2 penalty, with dropout, and with early stopping (restoring the best weights), and prints
//! the training and validation loss of every epoch for each, and the final gap.
//!
//! ```text
//! cargo run --release --example regularization
//! cargo run --release --example regularization -- --epochs 8   # shorter
//! ```

use nn::prelude::*;
use nn::runtime::data::{mnist, Dataset};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{EarlyStopping, History, Progress, Trainer};
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

fn fit<N: Network<784, 10, Scalar = f32>>(
    setup: impl FnOnce(
        Trainer<'static, CrossEntropy, Adam<f32>>,
    ) -> Trainer<'static, CrossEntropy, Adam<f32>>,
    train: &Dataset<f32, 784>,
    val: &Dataset<f32, 784>,
    epochs: usize,
) -> Result<History, Box<dyn Error>> {
    let mut net = N::init(&mut StdRng::seed_from_u64(3));
    let trainer = Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(epochs)
        .batch_size(32)
        .seed(3)
        .progress(Progress::Off);
    Ok(setup(trainer).fit(&mut net, train, Some(val))?)
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
    let train = train.subset(&(0..1000).collect::<Vec<_>>())?;
    let val = test.subset(&(0..2000).collect::<Vec<_>>())?;
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
            fit::<Wide>(|t| t, &train, &val, epochs)?,
        ),
        (
            "L2 1e-3",
            fit::<Wide>(|t| t.l2(1e-3), &train, &val, epochs)?,
        ),
        (
            "dropout 0.5",
            fit::<WideDropout>(|t| t, &train, &val, epochs)?,
        ),
        (
            "early stopping (patience 3)",
            fit::<Wide>(
                |t| t.early_stopping(EarlyStopping::new(3)),
                &train,
                &val,
                epochs,
            )?,
        ),
    ];
    for (name, h) in &runs {
        print(name, h);
    }
    println!(
        "\nsummary: validation loss and train/validation gap of the weights each run ends with"
    );
    for (name, h) in &runs {
        let kept = h
            .restored_epoch
            .and_then(|e| h.epochs.iter().find(|r| r.epoch == e))
            .or(h.last());
        let (val, train) = kept.map_or((f64::NAN, f64::NAN), |e| {
            (e.val_loss.unwrap_or(f64::NAN), e.train_loss)
        });
        println!("{name:<30} val {val:.4}  gap {:.4}", val - train);
    }
    Ok(())
}
