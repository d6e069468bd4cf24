//! # The standard benchmark workloads
//!
//! Runs the workloads of `shared/BENCHMARK.md` on the real MNIST files and prints figures;
//! the last line is `samples_per_s=<median>` (train, infer1000), `latency_us=<median>`
//! (infer1) or `test_accuracy=<fraction>` (acc). Data loading is not timed.
//!
//! ```text
//! cargo run --release --example bench -- --net w1 --batch 128 --opt sgd --threads 1
//! cargo run --release --example bench -- --net w2 --batch 128 --opt adam --threads 2 --epochs 3
//! cargo run --release --example bench -- --net w1 --mode infer1
//! cargo run --release --example bench -- --net w1 --mode infer1000 --threads 2
//! cargo run --release --example bench -- --mode acc     # W1, Adam 1e-3, batch 64, 3 epochs
//! ```
//!
//! - W1 = 784-128-10, W2 = 784-512-512-10, ReLU hidden layers, softmax output with
//!   cross-entropy.
//! - train: one epoch over the 60,000 training images in file order (last partial batch
//!   included) per run, a fresh network each run, `--epochs` runs (default 3; fewer are raised to 3);
//!   SGD lr 0.1 or Adam lr 1e-3.
//! - infer1: `predict`, 10,000 timed calls after 10,000 warm-up calls, each call on the next
//!   of the 10,000 test images (as the candle peer does: `predict` skips the weight columns of
//!   zero pixels, so its time depends on the image); two lines before the last give the median
//!   on test image 0 alone and on a dense input (every pixel 0.5), for reference;
//!   infer1000: `forward` on a batch of 1,000 test images, 50 batches per run, `--epochs` runs.
//! - `--threads` sets the threads of the large matrix products (`kernel::set_threads`). With
//!   more than one, each train run also reports how many steps the trainer's
//!   `kernel::ThreadGovernor` ran on one thread because two were slower at the time.

use nn::prelude::*;
use nn::runtime::data::{mnist, Dataset};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{Adam, Optimizer, Sgd};
use nn::runtime::train::{evaluate, Progress, Trainer};
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

network! {
    /// W1: the MNIST multilayer perceptron of the benchmark.
    W1 < dense(784 -> 128, relu), dense(128 -> 10, softmax) >
}

network! {
    /// W2: the wider, deeper benchmark network.
    W2 < dense(784 -> 512, relu), dense(512 -> 512, relu), dense(512 -> 10, softmax) >
}

struct Args {
    net: String,
    batch: usize,
    opt: String,
    threads: usize,
    runs: usize,
    mode: String,
    data: PathBuf,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut a = Args {
        net: "w1".into(),
        batch: 128,
        opt: "sgd".into(),
        threads: 1,
        runs: 3,
        mode: "train".into(),
        data: std::env::var_os("NN_MNIST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--net" => a.net = value()?,
            "--batch" => a.batch = value()?.parse()?,
            "--opt" => a.opt = value()?,
            "--threads" => a.threads = value()?.parse()?,
            "--epochs" | "--runs" => a.runs = value()?.parse()?,
            "--mode" => a.mode = value()?,
            "--data" => a.data = value()?.into(),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    if a.batch == 0 || a.threads == 0 {
        return Err("--batch and --threads must be at least 1".into());
    }
    if a.runs < 3 {
        eprintln!(
            "note: --epochs {} raised to 3: every figure is a median of 3 or more runs",
            a.runs
        );
        a.runs = 3;
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One training epoch per run; returns the median samples per second.
fn train<N: Network<784, 10, Scalar = f32>>(
    a: &Args,
    data: &Dataset<f32, 784>,
) -> Result<f64, Box<dyn Error>> {
    let mut rates = Vec::new();
    for run in 0..a.runs {
        let mut net = N::init(&mut StdRng::seed_from_u64(run as u64));
        let (seconds, alone) = match a.opt.as_str() {
            "sgd" => epoch(&mut net, Sgd::new(0.1), a.batch, data)?,
            "adam" => epoch(&mut net, Adam::new(1e-3), a.batch, data)?,
            other => return Err(format!("unknown optimizer `{other}` (sgd or adam)").into()),
        };
        let rate = data.len() as f64 / seconds;
        let steps = data.len().div_ceil(a.batch);
        println!("run {run}: {seconds:.3} s, {rate:.0} samples/s, {alone} of {steps} steps alone");
        rates.push(rate);
    }
    Ok(median(rates))
}

fn epoch<N, O>(
    net: &mut N,
    opt: O,
    batch: usize,
    data: &Dataset<f32, 784>,
) -> Result<(f64, u64), Box<dyn Error>>
where
    N: Network<784, 10, Scalar = f32>,
    O: Optimizer<f32>,
{
    let mut trainer = Trainer::new(CrossEntropy, opt)
        .epochs(1)
        .batch_size(batch)
        .shuffle(false)
        .progress(Progress::Off);
    let started = Instant::now();
    trainer.fit(net, data, None)?;
    Ok((
        started.elapsed().as_secs_f64(),
        trainer.steps_alone().iter().sum(),
    ))
}

/// Batch-1000 inference throughput, median over runs.
fn infer1000<N: Network<784, 10, Scalar = f32>>(a: &Args, test: &Dataset<f32, 784>) -> f64 {
    let net = N::init(&mut StdRng::seed_from_u64(0));
    let n = 1000.min(test.len());
    let batch = Batch::<f32, 784>::from_column_slice(&test.inputs().as_slice()[..784 * n]);
    let reps = 50;
    let mut rates = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(net.forward(std::hint::black_box(&batch)));
        }
        rates.push((reps * n) as f64 / t.elapsed().as_secs_f64());
    }
    median(rates)
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    nn::runtime::kernel::set_threads(a.threads);
    let (train_set, test_set) = mnist::load::<f32>(&a.data)?;
    println!(
        "workload: net={} mode={} batch={} opt={} threads={} runs={}",
        a.net, a.mode, a.batch, a.opt, a.threads, a.runs
    );
    match (a.mode.as_str(), a.net.as_str()) {
        ("train", "w1") => println!("samples_per_s={:.0}", train::<W1>(&a, &train_set)?),
        ("train", "w2") => println!("samples_per_s={:.0}", train::<W2>(&a, &train_set)?),
        ("infer1", "w1") => {
            let net = W1::new(&mut StdRng::seed_from_u64(0));
            let images: Vec<SVector<f32, 784>> = (0..test_set.len())
                .filter_map(|i| test_set.input(i).map(SVector::from_column_slice))
                .collect();
            if images.is_empty() {
                return Err("empty test set".into());
            }
            let dense = [SVector::<f32, 784>::repeat(0.5)];
            let mut sink = 0.0;
            // Median latency of 10,000 calls (after 10,000 warm-up calls) cycling over `xs`.
            let mut latency = |xs: &[SVector<f32, 784>]| {
                let mut times = Vec::with_capacity(10_000);
                for i in 0..20_000 {
                    let x = &xs[i % xs.len()];
                    let t = Instant::now();
                    sink += std::hint::black_box(net.predict(std::hint::black_box(x)))[0];
                    if i >= 10_000 {
                        times.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                median(times)
            };
            let first = latency(&images[..1]);
            let dense = latency(&dense);
            let all = latency(&images);
            println!("latency_us on test image 0 alone: {first:.2}");
            println!("latency_us on a dense input: {dense:.2}");
            println!("(checksum {sink:.3})");
            println!("latency_us={all:.2}");
        }
        ("infer1000", "w1") => println!("samples_per_s={:.0}", infer1000::<W1>(&a, &test_set)),
        ("infer1000", "w2") => println!("samples_per_s={:.0}", infer1000::<W2>(&a, &test_set)),
        ("acc", _) => {
            let mut net = W1::new(&mut StdRng::seed_from_u64(0));
            let mut trainer = Trainer::new(CrossEntropy, Adam::new(1e-3))
                .epochs(3)
                .batch_size(64)
                .seed(0)
                .progress(Progress::Lines);
            trainer.fit(&mut net, &train_set, None)?;
            let (_, m) = evaluate(&net, &CrossEntropy, &test_set)?;
            println!("test_accuracy={:.4}", m.accuracy().unwrap_or(0.0));
        }
        (mode, net) => return Err(format!("unknown workload --mode {mode} --net {net}").into()),
    }
    Ok(())
}
