//! Property tests of the losses on random batches, in f64:
//!
//! - every gradient (plain and fused forms, class and distribution targets) matches central
//!   finite differences of the value;
//! - losses that must be non-negative are: MSE, Huber, cross-entropy, BCE (targets in [0, 1])
//!   and KL between proper distributions (down to rounding);
//! - `loss_and_grad` and `fused_loss_and_grad` allocate nothing (the trainer calls them every
//!   step).

use nn::runtime::activation::{sigmoid, softmax_column};
use nn::runtime::loss::{BinaryCrossEntropy, CrossEntropy, Huber, KlDiv, Loss, Mse, Targets};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const H: f64 = 1e-6;
/// Finite differences with step 1e-6 are good to about 1e-9 here; 1e-6 leaves room and still
/// catches any wrong factor or sign.
const FD_TOL: f64 = 1e-6;

/// Largest |analytic - numeric| / max(1, |numeric|) of `f(x) = (value, gradient)`.
fn fd_error(x: &[f64], f: impl Fn(&[f64], &mut [f64]) -> f64) -> (f64, f64) {
    let mut grad = vec![0.0; x.len()];
    let value = f(x, &mut grad);
    let mut scratch = vec![0.0; x.len()];
    let mut worst: f64 = 0.0;
    for i in 0..x.len() {
        let (mut p, mut m) = (x.to_vec(), x.to_vec());
        p[i] += H;
        m[i] -= H;
        let numeric = (f(&p, &mut scratch) - f(&m, &mut scratch)) / (2.0 * H);
        worst = worst.max((grad[i] - numeric).abs() / numeric.abs().max(1.0));
    }
    (value, worst)
}

/// The plain form as a function of the output.
fn plain<'a>(
    loss: &'a dyn Loss<f64>,
    rows: usize,
    targets: Targets<'a, f64>,
) -> impl Fn(&[f64], &mut [f64]) -> f64 + 'a {
    move |x, g| loss.loss_and_grad(x, rows, targets, g).expect("valid")
}

/// The fused form as a function of the logits (the output recomputed by `act`).
fn fused<'a>(
    loss: &'a dyn Loss<f64>,
    rows: usize,
    targets: Targets<'a, f64>,
    act: fn(&[f64], usize) -> Vec<f64>,
) -> impl Fn(&[f64], &mut [f64]) -> f64 + 'a {
    move |z, g| {
        loss.fused_loss_and_grad(z, &act(z, rows), rows, targets, g)
            .expect("valid")
    }
}

fn softmax_all(z: &[f64], rows: usize) -> Vec<f64> {
    let mut s = vec![0.0; z.len()];
    for (zc, sc) in z.chunks(rows).zip(s.chunks_mut(rows)) {
        softmax_column(zc, sc);
    }
    s
}

fn sigmoid_all(z: &[f64], _rows: usize) -> Vec<f64> {
    z.iter().map(|&v| sigmoid(v)).collect()
}

/// Probability columns from positive weights.
fn normalize(w: &[f64], rows: usize) -> Vec<f64> {
    w.chunks(rows)
        .flat_map(|c| {
            let s: f64 = c.iter().sum();
            c.iter().map(move |v| v / s).collect::<Vec<_>>()
        })
        .collect()
}

/// A batch: rows, outputs in [-8, 8], positive weights, class indices.
fn batch() -> impl Strategy<Value = (usize, Vec<f64>, Vec<f64>, Vec<usize>)> {
    (2usize..7, 1usize..5).prop_flat_map(|(rows, n)| {
        (
            Just(rows),
            prop::collection::vec(-8.0f64..8.0, rows * n),
            prop::collection::vec(0.01f64..1.0, rows * n),
            prop::collection::vec(0..rows, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn regression_losses((rows, x, w, _) in batch(), delta in 0.1f64..3.0) {
        let y: Vec<f64> = w.iter().map(|v| 8.0 * v - 4.0).collect();
        for loss in [&Mse as &dyn Loss<f64>, &Huber::new(delta)] {
            let (value, err) = fd_error(&x, plain(loss, rows, Targets::Values(&y)));
            prop_assert!(value >= 0.0, "{}: {value}", loss.name());
            prop_assert!(err < FD_TOL, "{}: {err}", loss.name());
        }
    }

    #[test]
    fn cross_entropy_and_kl((rows, z, w, classes) in batch()) {
        let p = normalize(&w, rows);
        for targets in [Targets::Classes(&classes), Targets::Values(&p)] {
            let (value, err) = fd_error(&z, plain(&CrossEntropy, rows, targets));
            prop_assert!(value >= 0.0 && err < FD_TOL, "plain CE {value} {err}");
            let (value, err) = fd_error(&z, fused(&CrossEntropy, rows, targets, softmax_all));
            prop_assert!(value >= 0.0 && err < FD_TOL, "fused CE {value} {err}");
            let (value, err) = fd_error(&z, fused(&KlDiv, rows, targets, softmax_all));
            prop_assert!(value >= -1e-12 && err < FD_TOL, "fused KL {value} {err}");
        }
        // Plain KL takes log-probabilities of a proper distribution q.
        let q = normalize(&w.iter().map(|v| v + 0.5).collect::<Vec<_>>(), rows);
        let log_q: Vec<f64> = q.iter().map(|q| q.ln()).collect();
        for targets in [Targets::Classes(&classes), Targets::Values(&p)] {
            let (value, err) = fd_error(&log_q, plain(&KlDiv, rows, targets));
            prop_assert!(value >= -1e-12 && err < FD_TOL, "plain KL {value} {err}");
        }
    }

    #[test]
    fn binary_cross_entropy((rows, z, w, _) in batch(), hard in any::<bool>()) {
        // Targets in [0, 1]: hard 0/1 labels or soft ones.
        let y: Vec<f64> = if hard {
            w.iter().map(|v| if *v > 0.5 { 1.0 } else { 0.0 }).collect()
        } else {
            w.clone()
        };
        let t = Targets::Values(&y);
        let (value, err) = fd_error(&z, plain(&BinaryCrossEntropy, rows, t));
        prop_assert!(value >= 0.0 && err < FD_TOL, "plain BCE {value} {err}");
        let (value, err) = fd_error(&z, fused(&BinaryCrossEntropy, rows, t, sigmoid_all));
        prop_assert!(value >= 0.0 && err < FD_TOL, "fused BCE {value} {err}");
    }
}

// Counts the calling thread's allocations, so other test threads do not interfere.
thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// A loss, the targets it takes, and the output it fuses with (if any).
type Use<'a> = (&'a dyn Loss<f64>, &'a [Targets<'a, f64>], Option<&'a [f64]>);

#[test]
fn losses_allocate_nothing() {
    // The counter sees this thread's allocations.
    let before = allocations();
    let probe = std::hint::black_box(vec![0u8; 64]);
    assert!(
        allocations() > before,
        "the counting allocator counts nothing"
    );
    drop(probe);
    let rows = 5;
    let z: Vec<f64> = (0..rows * 8)
        .map(|i| (i as f64 * 0.37).sin() * 3.0)
        .collect();
    let p = normalize(&z.iter().map(|v| v.abs() + 0.1).collect::<Vec<_>>(), rows);
    let classes: Vec<usize> = (0..8).map(|i| i % rows).collect();
    let softmax = softmax_all(&z, rows);
    let sig = sigmoid_all(&z, rows);
    let mut grad = vec![0.0; z.len()];
    let huber = Huber::default();
    let (by_class, by_value) = (Targets::Classes(&classes), Targets::Values(&p));
    // Every valid use: the loss, its targets, and the output it fuses with (if any).
    let uses: [Use<'_>; 5] = [
        (&Mse, &[by_value], None),
        (&huber, &[by_value], None),
        (&CrossEntropy, &[by_class, by_value], Some(&softmax)),
        (&BinaryCrossEntropy, &[by_value], Some(&sig)),
        (&KlDiv, &[by_class, by_value], Some(&softmax)),
    ];
    for (loss, targets, fused_output) in uses {
        for &t in targets {
            let before = allocations();
            let v = loss.loss_and_grad(&z, rows, t, &mut grad);
            let after_plain = allocations();
            let fused =
                fused_output.map(|out| loss.fused_loss_and_grad(&z, out, rows, t, &mut grad));
            let after_fused = allocations();
            assert!(v.is_ok_and(|v| v.is_finite()), "{}", loss.name());
            assert!(
                fused.is_none_or(|f| f.is_ok_and(|v| v.is_finite())),
                "{} fused",
                loss.name()
            );
            assert_eq!(after_plain - before, 0, "{} allocated", loss.name());
            assert_eq!(
                after_fused - after_plain,
                0,
                "{} fused allocated",
                loss.name()
            );
        }
    }
}
