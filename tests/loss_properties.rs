//! Property tests: every loss's gradient matches central finite differences on random inputs
//! (plain and fused forms), and losses that must be non-negative are.

use nn::runtime::activation::{sigmoid, softmax_column};
use nn::runtime::loss::{BinaryCrossEntropy, CrossEntropy, Huber, KlDiv, Loss, Mse, Targets};
use proptest::prelude::*;

const ROWS: usize = 4;
const H: f64 = 1e-6;

/// Largest |analytic - numeric| / max(1, |numeric|) over every input of the plain form.
fn plain_error(loss: &dyn Loss<f64>, x: &[f64], targets: Targets<'_, f64>) -> (f64, f64) {
    let mut grad = vec![0.0; x.len()];
    let value = loss
        .loss_and_grad(x, ROWS, targets, &mut grad)
        .expect("valid");
    let mut scratch = vec![0.0; x.len()];
    let mut worst: f64 = 0.0;
    for i in 0..x.len() {
        let (mut p, mut m) = (x.to_vec(), x.to_vec());
        p[i] += H;
        m[i] -= H;
        let lp = loss
            .loss_and_grad(&p, ROWS, targets, &mut scratch)
            .expect("valid");
        let lm = loss
            .loss_and_grad(&m, ROWS, targets, &mut scratch)
            .expect("valid");
        let numeric = (lp - lm) / (2.0 * H);
        worst = worst.max((grad[i] - numeric).abs() / numeric.abs().max(1.0));
    }
    (value, worst)
}

/// The same for the fused form, differentiating with respect to the logits.
fn fused_error(
    loss: &dyn Loss<f64>,
    z: &[f64],
    targets: Targets<'_, f64>,
    act: fn(&[f64]) -> Vec<f64>,
) -> (f64, f64) {
    let mut grad = vec![0.0; z.len()];
    let value = loss
        .fused_loss_and_grad(z, &act(z), ROWS, targets, &mut grad)
        .expect("valid");
    let mut scratch = vec![0.0; z.len()];
    let mut worst: f64 = 0.0;
    for i in 0..z.len() {
        let (mut p, mut m) = (z.to_vec(), z.to_vec());
        p[i] += H;
        m[i] -= H;
        let lp = loss
            .fused_loss_and_grad(&p, &act(&p), ROWS, targets, &mut scratch)
            .expect("valid");
        let lm = loss
            .fused_loss_and_grad(&m, &act(&m), ROWS, targets, &mut scratch)
            .expect("valid");
        let numeric = (lp - lm) / (2.0 * H);
        worst = worst.max((grad[i] - numeric).abs() / numeric.abs().max(1.0));
    }
    (value, worst)
}

fn softmax_all(z: &[f64]) -> Vec<f64> {
    let mut s = vec![0.0; z.len()];
    for (zc, sc) in z.chunks(ROWS).zip(s.chunks_mut(ROWS)) {
        softmax_column(zc, sc);
    }
    s
}

fn sigmoid_all(z: &[f64]) -> Vec<f64> {
    z.iter().map(|&v| sigmoid(v)).collect()
}

/// Probability columns from arbitrary positive weights.
fn normalize(w: &[f64]) -> Vec<f64> {
    w.chunks(ROWS)
        .flat_map(|c| {
            let s: f64 = c.iter().sum();
            c.iter().map(move |v| v / s).collect::<Vec<_>>()
        })
        .collect()
}

fn batch() -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<usize>)> {
    (1usize..5).prop_flat_map(|n| {
        (
            prop::collection::vec(-5.0f64..5.0, ROWS * n),
            prop::collection::vec(0.01f64..1.0, ROWS * n),
            prop::collection::vec(0usize..ROWS, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn regression_losses((x, y, _) in batch(), delta in 0.1f64..3.0) {
        for loss in [&Mse as &dyn Loss<f64>, &Huber::new(delta)] {
            let (value, err) = plain_error(loss, &x, Targets::Values(&y));
            prop_assert!(value >= 0.0);
            prop_assert!(err < 1e-6, "{}: {err}", loss.name());
        }
    }

    #[test]
    fn cross_entropy_and_kl((z, w, classes) in batch()) {
        let p = normalize(&w);
        for targets in [Targets::Classes(&classes), Targets::Values(&p)] {
            let (value, err) = plain_error(&CrossEntropy, &z, targets);
            prop_assert!(value >= 0.0 && err < 1e-6, "plain CE {value} {err}");
            let (value, err) = fused_error(&CrossEntropy, &z, targets, softmax_all);
            prop_assert!(value >= 0.0 && err < 1e-6, "fused CE {value} {err}");
            let (value, err) = fused_error(&KlDiv, &z, targets, softmax_all);
            prop_assert!(value >= -1e-12 && err < 1e-6, "fused KL {value} {err}");
        }
        // Plain KL takes log-probabilities; its gradient is -p / batch whatever the input.
        let log_q: Vec<f64> = normalize(&w.iter().map(|v| v + 0.5).collect::<Vec<_>>()).iter().map(|q| q.ln()).collect();
        let (value, err) = plain_error(&KlDiv, &log_q, Targets::Values(&p));
        prop_assert!(value >= -1e-12 && err < 1e-6, "plain KL {value} {err}");
    }

    #[test]
    fn binary_cross_entropy((z, y, _) in batch()) {
        let y: Vec<f64> = y.iter().map(|v| (v * 2.0).floor().min(1.0)).collect();
        let (value, err) = plain_error(&BinaryCrossEntropy, &z, Targets::Values(&y));
        prop_assert!(value >= 0.0 && err < 1e-6, "plain BCE {value} {err}");
        let (value, err) = fused_error(&BinaryCrossEntropy, &z, Targets::Values(&y), sigmoid_all);
        prop_assert!(value >= 0.0 && err < 1e-6, "fused BCE {value} {err}");
    }
}
