//! # Regression: MSE and Huber under outliers
//!
//! Fits a noisy 1-D function, y = sin(2x) + x/2 on [-2, 2], twice: with the mean squared error
//! and with the Huber loss, on training targets where 5 % are outliers (shifted by +8). MSE
//! squares the outliers' residuals and is pulled towards them; Huber grows only linearly past
//! `delta` and stays close to the clean function. The example prints both fits' error against
//! the clean function on a test grid, and MAE and R².
//!
//! ```text
//! cargo run --release --example regression
//! ```

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::{Huber, Loss, Mse};
use nn::runtime::metrics;
use nn::runtime::optim::Adam;
use nn::runtime::train::{Progress, Trainer};
use std::error::Error;

network! {
    /// A smooth 1-D regressor: x → 32 → 32 tanh units → y.
    Fit < dense(1 -> 32, tanh), dense(32 -> 32, tanh), dense(32 -> 1) >
}

fn truth(x: f32) -> f32 {
    (2.0 * x).sin() + 0.5 * x
}

fn train_with<L: Loss<f32>>(loss: L, data: &Dataset<f32, 1>) -> Result<Fit, Box<dyn Error>> {
    let mut net = Fit::new(&mut StdRng::seed_from_u64(5));
    Trainer::new(loss, Adam::new(0.01))
        .epochs(150)
        .batch_size(32)
        .seed(5)
        .progress(Progress::Off)
        .fit(&mut net, data, None)?;
    Ok(net)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = StdRng::seed_from_u64(1);
    let n = 600;
    let xs: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|&x| {
            let noise = 0.1 * (rng.random::<f32>() - 0.5);
            let outlier = if rng.random::<f32>() < 0.05 { 8.0 } else { 0.0 };
            truth(x) + noise + outlier
        })
        .collect();
    let train = Dataset::<f32, 1>::from_slices(
        &xs,
        Labels::Values {
            values: ys,
            rows: 1,
        },
    )?;

    let grid: Vec<f32> = (0..201).map(|i| -2.0 + 4.0 * i as f32 / 200.0).collect();
    let clean: Vec<f32> = grid.iter().map(|&x| truth(x)).collect();
    let grid_batch = Batch::<f32, 1>::from_column_slice(&grid);

    println!(
        "{:<8} {:>10} {:>10} {:>8}",
        "loss", "test MSE", "test MAE", "R²"
    );
    let mut results = Vec::new();
    for (name, net) in [
        ("mse", train_with(Mse, &train)?),
        ("huber", train_with(Huber::new(1.0), &train)?),
    ] {
        let pred = net.forward(&grid_batch);
        let mse = metrics::mse(pred.as_slice(), &clean)?;
        let mae = metrics::mae(pred.as_slice(), &clean)?;
        let r2 = metrics::r2(pred.as_slice(), &clean, 1)?;
        println!("{name:<8} {mse:>10.4} {mae:>10.4} {r2:>8.4}");
        results.push(mse);
    }
    println!("huber_over_mse_test_error={:.3}", results[1] / results[0]);
    Ok(())
}
