//! # Tabular benchmark: the trainer's defaults against scikit-learn's `MLPClassifier`
//!
//! For each data set exported by `benches/tabular/sklearn_baseline.py` (a header, the
//! features, the target last), standardizes the features (and, for regression, the target)
//! with `Preprocessing` fitted on the training rows, builds `dense(IN -> 100, relu),
//! dense(100 -> OUT, softmax | identity)`, trains with `Trainer::new(loss, Adam::default())`
//! and nothing else but the seed (which seeds both the initial weights and the batch order,
//! as scikit-learn's `random_state`), and prints the test accuracy or R² (in the target's
//! units) per seed and the median, beside scikit-learn's median measured by the script.
//!
//! ```text
//! cargo run --release --example tabular_bench [-- --data DIR] [--quick]
//! ```
//!
//! `--data DIR` reads the script's output directory (default `benches/tabular/data`, the
//! committed files, which lack digits: it is then skipped, saying so). `--quick` runs seed 0
//! only, for CI. `--epochs N`, `--batch-size N`, `--validation-fraction F` and
//! `--patience P` (early stopping on the validation loss) set those options explicitly, to
//! measure other settings; the book's table uses none of them.

use nn::prelude::*;
use nn::runtime::data::csv::{self, CsvOptions};
use nn::runtime::data::{Dataset, Preprocessing, ScalerKind};
use nn::runtime::loss::{CrossEntropy, Mse};
use nn::runtime::optim::Adam;
use nn::runtime::train::{evaluate, EarlyStopping, Progress, Trainer};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Hidden width, scikit-learn's default `hidden_layer_sizes=(100,)`.
const H: usize = 100;

/// The value after `--name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// What the command line asks for.
struct Run {
    dir: PathBuf,
    seeds: Vec<u64>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    validation_fraction: Option<f64>,
    patience: Option<usize>,
}

impl Run {
    /// A trainer with the library's defaults, except the seed and what `--epochs` and
    /// `--batch-size` set.
    fn trainer<L, O>(&self, loss: L, optimizer: O, seed: u64) -> Trainer<'static, L, O> {
        let mut t = Trainer::new(loss, optimizer)
            .seed(seed)
            .progress(Progress::Off);
        if let Some(e) = self.epochs {
            t = t.epochs(e);
        }
        if let Some(b) = self.batch_size {
            t = t.batch_size(b);
        }
        if let Some(f) = self.validation_fraction {
            t = t.validation_fraction(f);
        }
        if let Some(p) = self.patience {
            t = t.early_stopping(EarlyStopping::new(p));
        }
        t
    }
}

/// The training and test files of `name`, or `None` (saying so) when they are missing.
fn files(run: &Run, name: &str) -> Option<(PathBuf, PathBuf)> {
    let train = run.dir.join(format!("{name}_train.csv"));
    let test = run.dir.join(format!("{name}_test.csv"));
    if train.is_file() && test.is_file() {
        return Some((train, test));
    }
    println!(
        "{name:<14} skipped: no {} (run benches/tabular/sklearn_baseline.py DIR, then --data DIR)",
        train.display()
    );
    None
}

/// The median of a non-empty list.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Prints one data set's line: the scores per seed, their median, scikit-learn's median.
fn report(name: &str, n: usize, metric: &str, scores: Vec<f64>, sklearn: f64, seconds: f64) {
    let per_seed: Vec<String> = scores.iter().map(|s| format!("{s:.4}")).collect();
    let m = median(scores);
    let verdict = if m >= sklearn - 5e-5 { "ok" } else { "below" };
    println!(
        "{name:<14} {n:>5} {metric:<8} {} -> {m:.4}   sklearn {sklearn:.4}  {verdict}  ({seconds:.1}s)",
        per_seed.join(" ")
    );
}

/// Trains and tests a classifier on `name` for every seed.
fn classify<N, const IN: usize, const OUT: usize>(
    run: &Run,
    name: &str,
    sklearn: f64,
    new: fn(&mut StdRng) -> N,
) -> Result<(), Box<dyn Error>>
where
    N: Network<IN, OUT, Scalar = f32>,
{
    let Some((train, test)) = files(run, name) else {
        return Ok(());
    };
    let options = CsvOptions::classes(OUT);
    let (mut train, mut test) = (
        csv::load::<f32, IN>(&train, &options)?,
        csv::load::<f32, IN>(&test, &options)?,
    );
    let pre = Preprocessing::fit(&train, Some(ScalerKind::Standardize), None)?;
    pre.apply(&mut train)?;
    pre.apply(&mut test)?;
    let started = Instant::now();
    let mut scores = Vec::new();
    for &seed in &run.seeds {
        let mut net = new(&mut StdRng::seed_from_u64(seed));
        run.trainer(CrossEntropy, Adam::default(), seed)
            .fit(&mut net, &train, None)?;
        let (_, metrics) = evaluate(&net, &CrossEntropy, &test)?;
        scores.push(metrics.accuracy().ok_or("no accuracy")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    report(
        name,
        n_all(&train, &test),
        "accuracy",
        scores,
        sklearn,
        seconds,
    );
    Ok(())
}

/// Trains and tests a regressor on `name` (target standardized for training, R² in the
/// target's units) for every seed.
fn regress<N, const IN: usize>(
    run: &Run,
    name: &str,
    sklearn: f64,
    new: fn(&mut StdRng) -> N,
) -> Result<(), Box<dyn Error>>
where
    N: Network<IN, 1, Scalar = f32>,
{
    let Some((train, test)) = files(run, name) else {
        return Ok(());
    };
    let options = CsvOptions::values(1);
    let (train, test) = (
        csv::load::<f32, IN>(&train, &options)?,
        csv::load::<f32, IN>(&test, &options)?,
    );
    let standardize = Some(ScalerKind::Standardize);
    let pre = Preprocessing::fit(&train, standardize, standardize)?;
    let mut scaled = train.clone();
    pre.apply(&mut scaled)?;
    let started = Instant::now();
    let mut scores = Vec::new();
    for &seed in &run.seeds {
        let mut net = new(&mut StdRng::seed_from_u64(seed));
        run.trainer(Mse, Adam::default(), seed)
            .fit(&mut net, &scaled, None)?;
        scores.push(pre.evaluate(&net, &test)?.r2().ok_or("no R²")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    report(name, n_all(&train, &test), "r2", scores, sklearn, seconds);
    Ok(())
}

/// Samples in both sets.
fn n_all<const IN: usize>(train: &Dataset<f32, IN>, test: &Dataset<f32, IN>) -> usize {
    train.len() + test.len()
}

/// One network per data set shape: `$in` features, `H` relu units, `$out` outputs.
macro_rules! net {
    ($name:ident, $in:tt, $out:tt, softmax) => {
        network! { $name < dense($in -> H, relu), dense(H -> $out, softmax) > }
    };
    ($name:ident, $in:tt, $out:tt, identity) => {
        network! { $name < dense($in -> H, relu), dense(H -> $out) > }
    };
}

net!(Iris, 4, 3, softmax);
net!(Wine, 13, 3, softmax);
net!(BreastCancer, 30, 2, softmax);
net!(Digits, 64, 10, softmax);
net!(Penguins, 4, 3, softmax);
net!(Diabetes, 10, 1, identity);
net!(PenguinsMass, 7, 1, identity);

fn main() -> Result<(), Box<dyn Error>> {
    let parse = |name: &str| arg(name).map(|v| v.parse::<usize>()).transpose();
    let run = Run {
        dir: arg("--data").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tabular/data"),
            PathBuf::from,
        ),
        seeds: if std::env::args().any(|a| a == "--quick") {
            vec![0]
        } else {
            (0..5).collect()
        },
        epochs: parse("--epochs")?,
        batch_size: parse("--batch-size")?,
        validation_fraction: arg("--validation-fraction")
            .map(|v| v.parse::<f64>())
            .transpose()?,
        patience: parse("--patience")?,
    };
    println!(
        "{:<14} {:>5} {:<8} per seed -> median, scikit-learn's median (sklearn_baseline.py)",
        "data set", "n", "metric"
    );
    // scikit-learn 1.9.1's medians over seeds 0..4, from benches/tabular/sklearn_baseline.py.
    classify(&run, "iris", 0.9667, Iris::new)?;
    classify(&run, "wine", 1.0, Wine::new)?;
    classify(&run, "breast_cancer", 0.9561, BreastCancer::new)?;
    classify(&run, "digits", 0.9778, Digits::new)?;
    classify(&run, "penguins", 0.9851, Penguins::new)?;
    regress(&run, "diabetes", 0.2467, Diabetes::new)?;
    regress(&run, "penguins_mass", 0.8745, PenguinsMass::new)?;
    Ok(())
}
