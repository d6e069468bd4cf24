//! # Binary classification: two moons
//!
//! Shows a sigmoid output with binary cross-entropy (computed from the logits, so it never
//! takes log 0) on the synthetic two-moons set, with a held-out test set and accuracy.
//!
//! ```text
//! cargo run --release --example binary_classification
//! ```

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::BinaryCrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{Progress, Trainer};
use std::error::Error;

network! {
    /// Two moons: 2 coordinates → 16 → 16 ReLU units → probability of the upper moon.
    Moons < dense(2 -> 16, relu), dense(16 -> 16, relu), dense(16 -> 1, sigmoid) >
}

/// `n` points of two interleaved half circles with Gaussian noise; label 0 for the upper moon.
fn two_moons(n: usize, noise: f32, rng: &mut StdRng) -> Result<Dataset<f32, 2>, Box<dyn Error>> {
    let mut xs = Vec::with_capacity(2 * n);
    let mut ys = Vec::with_capacity(n);
    for i in 0..n {
        let upper = i % 2 == 0;
        let t = rng.random_range(0.0..std::f32::consts::PI);
        let (x, y) = if upper {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        xs.push(x + noise * gaussian(rng));
        xs.push(y + noise * gaussian(rng));
        ys.push(if upper { 0.0 } else { 1.0 });
    }
    Ok(Dataset::from_slices(
        &xs,
        Labels::Values {
            values: ys,
            rows: 1,
        },
    )?)
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut StdRng) -> f32 {
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

fn accuracy(net: &Moons, data: &Dataset<f32, 2>) -> f64 {
    let out = net.forward(data.inputs());
    let Labels::Values { values, .. } = data.labels() else {
        return 0.0;
    };
    let correct = out
        .iter()
        .zip(values)
        .filter(|(p, y)| f32::from(**p > 0.5) == **y)
        .count();
    correct as f64 / data.len() as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = StdRng::seed_from_u64(11);
    let train = two_moons(1000, 0.1, &mut rng)?;
    let test = two_moons(500, 0.1, &mut rng)?;
    let mut net = Moons::new(&mut rng);
    let mut trainer = Trainer::new(BinaryCrossEntropy, Adam::new(0.01))
        .epochs(60)
        .batch_size(32)
        .seed(11)
        .progress(Progress::Off);
    let history = trainer.fit(&mut net, &train, Some(&test))?;
    for e in history.epochs.iter().step_by(10) {
        println!("{e}");
    }
    let (train_acc, test_acc) = (accuracy(&net, &train), accuracy(&net, &test));
    println!("train accuracy {train_acc:.4}");
    println!("test_accuracy={test_acc:.4}");
    if test_acc < 0.95 {
        return Err(format!("two moons should be separated, got {test_acc:.4}").into());
    }
    Ok(())
}
