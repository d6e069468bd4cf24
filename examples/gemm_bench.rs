//! GFLOP/s of the matrix products of W1 (784-128-10) and W2 (784-512-512-10) training, for
//! our packed GEMM and the `gemm` crate side by side.
//!
//! `cargo run --release --example gemm_bench -- [--net w1,w2] [--batch 32,128] [--threads 1]
//! [--f64] [--reps 7] [--ms 30]`
//!
//! Every shape is timed `reps` times per kernel (each a loop of at least `ms` milliseconds,
//! the two kernels taking turns so that both see the same load of a shared machine); the best
//! and the median of those figures are printed, with the median ratio of consecutive timings
//! (ours / gemm crate), then, per network and batch, the time of one
//! training step's products (forward, weight gradients, input gradients) with each kernel.

use nn::runtime::kernel::{self, Kernel, Op};
use std::time::Instant;

/// One product of a training step: `C (m x n) = op(A) op(B)`, inner dimension `k`.
struct Shape {
    name: &'static str,
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
}

/// The products of one training step of a dense network with layer widths `widths`:
/// forward `Z = W X` (`out x b x in`), weight gradient `dW = dZ Xᵀ` (`out x in x b`) and,
/// past the first layer, input gradient `dX = Wᵀ dZ` (`in x b x out`).
fn step(widths: &[usize], b: usize) -> Vec<Shape> {
    let mut v = Vec::new();
    for (l, w) in widths.windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        v.push(Shape {
            name: "fwd  W X",
            op_a: Op::N,
            op_b: Op::N,
            m: o,
            n: b,
            k: i,
        });
        v.push(Shape {
            name: "dW   dZ Xt",
            op_a: Op::N,
            op_b: Op::T,
            m: o,
            n: i,
            k: b,
        });
        if l > 0 {
            v.push(Shape {
                name: "dX   Wt dZ",
                op_a: Op::T,
                op_b: Op::N,
                m: i,
                n: b,
                k: o,
            });
        }
    }
    v
}

/// GFLOP/s figures of `reps` timings of one shape with each kernel of `kinds`; the kernels
/// take turns, so that both see the same load of a shared machine.
fn measure<T: nn::runtime::scalar::Float>(
    s: &Shape,
    kinds: [Kernel; 2],
    reps: usize,
    ms: f64,
) -> [Vec<f64>; 2] {
    let a: Vec<T> = (0..s.m * s.k)
        .map(|i| T::of(((i * 37) % 101) as f64 / 101.0 - 0.5))
        .collect();
    let b: Vec<T> = (0..s.k * s.n)
        .map(|i| T::of(((i * 53) % 97) as f64 / 97.0 - 0.5))
        .collect();
    let mut c = vec![T::zero(); s.m * s.n];
    let mut call = || {
        kernel::gemm(
            s.op_a,
            s.op_b,
            s.m,
            s.n,
            s.k,
            T::one(),
            &a,
            &b,
            T::zero(),
            &mut c,
        )
    };
    // Warm up (workspaces, caches) and find a loop long enough for the clock.
    let mut iters = 1usize;
    for kind in kinds {
        kernel::set_kernel(kind);
        call();
    }
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            call();
        }
        if t.elapsed().as_secs_f64() * 1e3 >= ms / 4.0 {
            break;
        }
        iters *= 2;
    }
    iters *= 4;
    let flop = 2.0 * (s.m * s.n * s.k) as f64 * iters as f64;
    let mut out = [Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (slot, kind) in kinds.into_iter().enumerate() {
            kernel::set_kernel(kind);
            let t = Instant::now();
            for _ in 0..iters {
                call();
            }
            out[slot].push(flop / t.elapsed().as_secs_f64() / 1e9);
        }
    }
    out
}

/// Best and median of the figures.
fn best_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| b.total_cmp(a));
    (v[0], v[v.len() / 2])
}

fn main() {
    let mut batches = vec![32, 128];
    let mut threads = 1;
    let mut f64_ = false;
    let mut reps = 7;
    let mut nets = "w1,w2".to_string();
    let mut ms = 30.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match a.as_str() {
            "--batch" => batches = value().split(',').filter_map(|b| b.parse().ok()).collect(),
            "--threads" => threads = value().parse().unwrap_or(1),
            "--f64" => f64_ = true,
            "--net" => nets = value().to_lowercase(),
            "--reps" => reps = value().parse().unwrap_or(7).max(1),
            "--ms" => ms = value().parse().unwrap_or(30.0),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    kernel::set_threads(threads);
    let ty = if f64_ { "f64" } else { "f32" };
    println!(
        "{ty}, threads {threads}, {reps} timings per shape of >= {ms} ms; GFLOP/s best / median"
    );
    println!(
        "{:<4} {:>5} {:<11} {:>15} {:>17} {:>17} {:>6}",
        "net", "batch", "product", "m x n x k", "packed (ours)", "gemm crate", "ratio"
    );
    for (net, widths) in [
        ("W1", &[784, 128, 10][..]),
        ("W2", &[784, 512, 512, 10][..]),
    ] {
        if !nets.contains(&net.to_lowercase()) {
            continue;
        }
        for &b in &batches {
            let mut time = [0.0f64; 2];
            for s in step(widths, b) {
                let kinds = [Kernel::Packed, Kernel::GemmCrate];
                let [ours, theirs] = if f64_ {
                    measure::<f64>(&s, kinds, reps, ms)
                } else {
                    measure::<f32>(&s, kinds, reps, ms)
                };
                // The median of the ratios of consecutive timings.
                let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
                let ratio = best_median(ratios).1;
                let fig = [best_median(ours), best_median(theirs)];
                for (t, f) in time.iter_mut().zip(&fig) {
                    *t += 2.0 * (s.m * s.n * s.k) as f64 / (f.1 * 1e9);
                }
                println!(
                    "{net:<4} {b:>5} {:<11} {:>15} {:>8.1} / {:>6.1} {:>8.1} / {:>6.1} {:>6.2}",
                    s.name,
                    format!("{}x{}x{}", s.m, s.n, s.k),
                    fig[0].0,
                    fig[0].1,
                    fig[1].0,
                    fig[1].1,
                    ratio
                );
            }
            println!(
                "{net:<4} {b:>5} step products (medians): packed {:.1} us, gemm crate {:.1} us, ratio {:.2}",
                time[0] * 1e6,
                time[1] * 1e6,
                time[1] / time[0]
            );
        }
    }
    kernel::set_kernel(kernel::DEFAULT_KERNEL);
}
