//! Every loss value and gradient against PyTorch (`losses.json`), in f64 and f32, through both
//! the plain form (the output taken as the loss's input) and, where the loss has one, the
//! fused form (from the logits of a softmax or sigmoid output). Loss options come from each
//! case.

mod common;

use common::{load, matrix, num, Tracker};
use nn::runtime::activation::{sigmoid, softmax_column};
use nn::runtime::loss::{BinaryCrossEntropy, CrossEntropy, Huber, KlDiv, Loss, Mse, Targets};
use nn::runtime::Float;
use serde_json::Value;

/// Rows of a case's matrix, flattened column-major (one column per sample), and the width.
fn columns<T: Float>(v: &Value) -> (Vec<T>, usize) {
    let rows = matrix(v);
    let width = rows.first().map_or(0, Vec::len);
    (rows.into_iter().flatten().map(T::of).collect(), width)
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("indices")
        .iter()
        .map(|x| x.as_u64().expect("an index") as usize)
        .collect()
}

fn compare<T: Float>(
    t: &mut Tracker,
    what: &str,
    value: T,
    grad: &[T],
    case: &Value,
    grad_key: &str,
) {
    t.check(
        || format!("{what} value"),
        Float::to_f64(value),
        num(&case["value"]),
    );
    let (want, _) = columns::<f64>(&case[grad_key]);
    assert_eq!(want.len(), grad.len(), "{what}: gradient length");
    for (i, (g, w)) in grad.iter().zip(want).enumerate() {
        t.check(|| format!("{what} {grad_key}[{i}]"), Float::to_f64(*g), w);
    }
}

fn run<T: Float>(tol: f64) -> Tracker {
    let fx = load("losses.json");
    let cases = fx["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut t = Tracker::new(tol);
    for (k, case) in cases.iter().enumerate() {
        let name = case["loss"].as_str().expect("loss name");
        let what = format!("case {k} {name} (batch {})", case["batch"]);
        match name {
            "mse" | "huber" => {
                let (pred, rows) = columns::<T>(&case["pred"]);
                let (target, _) = columns::<T>(&case["target"]);
                let mut grad = vec![T::zero(); pred.len()];
                let value = if name == "mse" {
                    Mse.loss_and_grad(&pred, rows, Targets::Values(&target), &mut grad)
                } else {
                    Huber::new(num(&case["delta"])).loss_and_grad(
                        &pred,
                        rows,
                        Targets::Values(&target),
                        &mut grad,
                    )
                }
                .expect("valid targets");
                compare(&mut t, &what, value, &grad, case, "grad_pred");
            }
            "cross_entropy_index" | "cross_entropy_soft" | "kl_div_batchmean" => {
                let (z, rows) = columns::<T>(&case["logits"]);
                let idx;
                let probs;
                let targets = if name == "cross_entropy_index" {
                    idx = indices(&case["target_index"]);
                    Targets::Classes(&idx)
                } else {
                    probs = columns::<T>(&case["target_probs"]).0;
                    Targets::Values(&probs)
                };
                let loss: &dyn Loss<T> = if name == "kl_div_batchmean" {
                    &KlDiv
                } else {
                    &CrossEntropy
                };
                // Fused with a softmax output: from the logits.
                let mut s = vec![T::zero(); z.len()];
                for (zc, sc) in z.chunks(rows).zip(s.chunks_mut(rows)) {
                    softmax_column(zc, sc);
                }
                let mut grad = vec![T::zero(); z.len()];
                let value = loss
                    .fused_loss_and_grad(&z, &s, rows, targets, &mut grad)
                    .expect("valid targets");
                compare(
                    &mut t,
                    &format!("{what} fused"),
                    value,
                    &grad,
                    case,
                    "grad_logits",
                );
                if name == "kl_div_batchmean" {
                    // Plain: the output is the log-probabilities.
                    let (log_q, _) = columns::<T>(&case["input_log_q"]);
                    let value = loss
                        .loss_and_grad(&log_q, rows, targets, &mut grad)
                        .expect("valid targets");
                    compare(
                        &mut t,
                        &format!("{what} plain"),
                        value,
                        &grad,
                        case,
                        "grad_input",
                    );
                } else {
                    // Plain: an identity output is the logits.
                    let value = loss
                        .loss_and_grad(&z, rows, targets, &mut grad)
                        .expect("valid targets");
                    compare(
                        &mut t,
                        &format!("{what} plain"),
                        value,
                        &grad,
                        case,
                        "grad_logits",
                    );
                }
            }
            "bce_with_logits" => {
                let (z, rows) = columns::<T>(&case["logits"]);
                let (y, _) = columns::<T>(&case["target"]);
                let s: Vec<T> = z.iter().map(|&v| sigmoid(v)).collect();
                let mut grad = vec![T::zero(); z.len()];
                let value = BinaryCrossEntropy
                    .fused_loss_and_grad(&z, &s, rows, Targets::Values(&y), &mut grad)
                    .expect("valid targets");
                compare(
                    &mut t,
                    &format!("{what} fused"),
                    value,
                    &grad,
                    case,
                    "grad_logits",
                );
                let value = BinaryCrossEntropy
                    .loss_and_grad(&z, rows, Targets::Values(&y), &mut grad)
                    .expect("valid");
                compare(
                    &mut t,
                    &format!("{what} plain"),
                    value,
                    &grad,
                    case,
                    "grad_logits",
                );
            }
            other => panic!("losses.json has `{other}`, which this test does not know"),
        }
    }
    t
}

#[test]
fn losses_match_pytorch() {
    let t64 = run::<f64>(1e-9);
    let t32 = run::<f32>(1e-5);
    println!(
        "losses.json: largest error f64 {:.2e} ({}), f32 {:.2e} ({})",
        t64.worst, t64.at, t32.worst, t32.at
    );
}

#[test]
fn class_out_of_range_is_an_error() {
    let z = [0.1f64, 0.2, 0.3, 0.4, 0.5, 0.6];
    let mut g = [0.0; 6];
    let err = CrossEntropy
        .loss_and_grad(&z, 3, Targets::Classes(&[0, 3]), &mut g)
        .expect_err("class 3 of 3");
    assert!(err.to_string().contains("sample 1"), "{err}");
    let err = Mse
        .loss_and_grad(&z, 3, Targets::Values(&[0.0; 5]), &mut g)
        .expect_err("wrong length");
    assert!(
        err.to_string().contains("5 target values for 6 outputs"),
        "{err}"
    );
}
