//! # Tabular regression: predictions from a saved model and raw values
//!
//! Loads the network and its scalers that `examples/tabular_train.rs` saved, predicts the
//! price of a few houses given in raw units (m², rooms, years, km), then of the test rows
//! of `test.csv`, and prints their R² in the price's units as the last line (`r2=0.98`).
//! Run the train example first.
//!
//! ```text
//! cargo run --release --example tabular_train [-- --dir DIR]
//! cargo run --release --example tabular_predict [-- --dir DIR]
//! ```

use nn::nalgebra::SVector;
use nn::prelude::*;
use nn::runtime::data::csv::{self, CsvOptions};
use nn::runtime::data::Preprocessing;
use nn::runtime::persist;
use nn::runtime::train::Metrics;
use std::error::Error;
use std::path::PathBuf;

network! {
    /// The network of `tabular_train` (loading checks that the file records this architecture).
    pub House < dense(4 -> 32, relu), dense(32 -> 1) >
}

/// The example's directory: `--dir DIR`, else `nn-tabular-example` in the temporary directory.
fn dir() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--dir") {
        Some(i) if i + 1 < args.len() => PathBuf::from(&args[i + 1]),
        _ => std::env::temp_dir().join("nn-tabular-example"),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = dir();
    let model = dir.join("house.safetensors");
    let (net, pre): (House, Preprocessing) = persist::load_with_preprocessing(&model)?;
    println!(
        "loaded {} (input scaler: {:?}, target scaler: {:?})",
        model.display(),
        pre.input.as_ref().map(|s| s.kind()),
        pre.target.as_ref().map(|s| s.kind())
    );

    // Raw values, as a user types them: area m², rooms, age in years, distance in km.
    let houses = [
        [55.0f32, 2.0, 40.0, 12.0],
        [120.0, 3.0, 10.0, 3.5],
        [210.0, 5.0, 2.0, 1.0],
    ];
    for h in houses {
        let price = pre.predict(&net, &SVector::from(h))?;
        println!(
            "{:>5} m², {} rooms, {:>2} years, {:>4} km: {:7.1} k",
            h[0], h[1], h[2], h[3], price[0]
        );
    }

    let test = csv::load::<f32, 4>(dir.join("test.csv"), &CsvOptions::values(1))?;
    let predictions = pre.predict_batch(&net, test.inputs())?;
    let targets = match test.labels() {
        nn::runtime::data::Labels::Values { values, .. } => values.as_slice(),
        nn::runtime::data::Labels::Classes { .. } => return Err("test.csv has no prices".into()),
    };
    for (p, t) in predictions.iter().zip(targets).take(5) {
        println!("predicted {p:7.1} k, sold for {t:7.1} k");
    }
    let Metrics::Regression { mae, r2, .. } = pre.evaluate(&net, &test)? else {
        return Err("not a regression".into());
    };
    println!("{} test rows: mae {mae:.2} k", test.len());
    println!("r2={r2:.2}");
    Ok(())
}
