//! # XOR: the smallest network that needs a hidden layer
//!
//! Shows a tiny sigmoid network learning XOR, which no single-layer network can, with binary
//! cross-entropy (fused with the sigmoid output) and Adam, then its four predictions.
//!
//! ```text
//! cargo run --example xor
//! ```

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::BinaryCrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{Progress, Trainer};
use std::error::Error;

network! {
    /// XOR: 2 inputs → 4 tanh units → 1 probability.
    Xor < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) >
}

fn main() -> Result<(), Box<dyn Error>> {
    let inputs = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    let targets = vec![0.0, 1.0, 1.0, 0.0];
    let data = Dataset::<f32, 2>::from_slices(
        &inputs,
        Labels::Values {
            values: targets.clone(),
            rows: 1,
        },
    )?;

    let mut net = Xor::new(&mut StdRng::seed_from_u64(3));
    let mut trainer = Trainer::new(BinaryCrossEntropy, Adam::new(0.05))
        .epochs(300)
        .batch_size(4)
        .progress(Progress::Off);
    let history = trainer.fit(&mut net, &data, None)?;
    println!(
        "final loss {:.5}",
        history.last().map_or(f64::NAN, |e| e.train_loss)
    );

    let mut correct = 0;
    for (i, pair) in inputs.chunks(2).enumerate() {
        let p = net.predict(&SVector::<f32, 2>::from_column_slice(pair))[0];
        let class = f32::from(p > 0.5);
        correct += usize::from(class == targets[i]);
        println!(
            "{} xor {} -> {p:.4} (class {class}, want {})",
            pair[0], pair[1], targets[i]
        );
    }
    let accuracy = correct as f64 / 4.0;
    println!("accuracy={accuracy:.2}");
    if correct != 4 {
        return Err("XOR was not learned".into());
    }
    Ok(())
}
