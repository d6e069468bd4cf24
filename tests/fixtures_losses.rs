//! Every case of `losses.json` against PyTorch: the value and every gradient, in f64 and f32,
//! through the plain form (the output taken as the loss's input) and, where the loss has one,
//! the fused form (from the logits of a softmax or sigmoid output).
//!
//! Loss options (Huber's `delta`) and the reduction come from each case: a reduction other
//! than ours (`mean`, or `batchmean` for KL) is matched by rescaling, an unknown reduction,
//! loss name or case field fails the test, so no option is silently ignored.
//!
//! Errors are `|got - want| / max(|want|, 1e-3)` (see `common::fixtures`). Tolerances:
//!
//! - f64: 1e-12. The same formulas in the same precision (log-softmax as `(z - m) - ln Σ`, as
//!   PyTorch); the largest error seen is printed.
//! - f32: 1e-5, against the PyTorch value moved by the effect of rounding the *inputs* to f32,
//!   `f64impl(round32(x)) - f64impl(x)` (our f64 code, checked above): a logit of 1000 rounded
//!   to f32 moves by up to 3e-5, which no f32 implementation can undo. The raw error against
//!   PyTorch is printed too.

mod common;

use common::fixtures::{load, matrix, num, MaxRelError};
use nn::runtime::activation::{sigmoid, softmax_column};
use nn::runtime::loss::{
    BinaryCrossEntropy, CrossEntropy, Huber, KlDiv, Loss, LossError, Mse, Targets,
};
use nn::runtime::Float;
use serde_json::Value;
use std::collections::BTreeMap;

const F64_TOL: f64 = 1e-12;
const F32_TOL: f64 = 1e-5;

/// Fields every case may have besides its loss's inputs and outputs.
const META: &[&str] = &["loss", "batch", "reduction", "call"];

/// The losses this test knows: fixture name, the fields its cases may have, and the
/// reduction our implementation uses.
const LOSSES: &[(&str, &[&str])] = &[
    ("mse", &["pred", "target", "value", "grad_pred"]),
    ("huber", &["delta", "pred", "target", "value", "grad_pred"]),
    (
        "cross_entropy_index",
        &["logits", "target_index", "value", "grad_logits"],
    ),
    (
        "cross_entropy_soft",
        &["logits", "target_probs", "value", "grad_logits"],
    ),
    (
        "bce_with_logits",
        &["logits", "target", "value", "grad_logits"],
    ),
    (
        "kl_div_batchmean",
        &[
            "logits",
            "input_log_q",
            "target_probs",
            "value",
            "grad_input",
            "grad_logits",
        ],
    ),
];

/// One case, parsed: every matrix flattened column-major (one column per sample).
struct Case {
    label: String,
    loss: String,
    rows: usize,
    batch: usize,
    /// Our result times this is PyTorch's under the case's reduction.
    scale: f64,
    delta: Option<f64>,
    arrays: BTreeMap<String, Vec<f64>>,
    classes: Vec<usize>,
    value: f64,
}

impl Case {
    fn parse(k: usize, case: &Value) -> Self {
        let loss = case["loss"]
            .as_str()
            .unwrap_or_else(|| panic!("case {k}: no `loss` name"))
            .to_string();
        let label = format!("case {k} {loss}");
        let fields = LOSSES
            .iter()
            .find(|(name, _)| *name == loss)
            .unwrap_or_else(|| panic!("losses.json has `{loss}`, which this test does not know"))
            .1;
        let obj = case.as_object().expect("a case is an object");
        for key in obj.keys() {
            assert!(
                META.contains(&key.as_str()) || fields.contains(&key.as_str()),
                "{label}: field `{key}` is not read by this test"
            );
        }
        let mut arrays = BTreeMap::new();
        let (mut rows, mut batch) = (None, None);
        for &key in fields {
            let v = &case[key];
            assert!(!v.is_null(), "{label}: no `{key}`");
            if key == "value" || key == "delta" || key == "target_index" {
                continue;
            }
            let m = matrix(v);
            let (b, r) = (m.len(), m.first().map_or(0, Vec::len));
            assert_eq!(
                *batch.get_or_insert(b),
                b,
                "{label}: `{key}` has {b} samples"
            );
            assert_eq!(
                *rows.get_or_insert(r),
                r,
                "{label}: `{key}` has {r} columns"
            );
            arrays.insert(key.to_string(), m.into_iter().flatten().collect());
        }
        let (rows, batch) = (rows.expect("a matrix"), batch.expect("a matrix"));
        assert!(rows > 0 && batch > 0, "{label}: empty");
        let stated = case["batch"].as_u64().expect("`batch`") as usize;
        assert_eq!(stated, batch, "{label}: `batch` says {stated}");
        let classes: Vec<usize> = match case.get("target_index") {
            Some(v) => v
                .as_array()
                .expect("`target_index` is a list")
                .iter()
                .map(|x| x.as_u64().expect("a class index") as usize)
                .collect(),
            None => Vec::new(),
        };
        if loss == "cross_entropy_index" {
            assert_eq!(classes.len(), batch, "{label}: one class per sample");
        }
        // Our reductions: a mean over all elements (MSE, Huber, BCE) or over the batch (CE,
        // KL). PyTorch's: `mean` is over all elements except for cross-entropy (over the
        // batch), `batchmean` over the batch, `sum` none.
        let ours = match loss.as_str() {
            "cross_entropy_index" | "cross_entropy_soft" | "kl_div_batchmean" => batch,
            _ => rows * batch,
        } as f64;
        let reduction = case["reduction"].as_str().expect("`reduction`");
        let theirs = match (reduction, loss.as_str()) {
            ("mean", "cross_entropy_index" | "cross_entropy_soft") => batch,
            ("mean", _) => rows * batch,
            ("batchmean", "kl_div_batchmean") => batch,
            ("sum", _) => 1,
            (other, _) => panic!("{label}: reduction `{other}` is not supported"),
        } as f64;
        Case {
            label,
            scale: ours / theirs,
            delta: case.get("delta").map(num),
            value: num(&case["value"]),
            loss,
            rows,
            batch,
            arrays,
            classes,
        }
    }

    /// The case with every input rounded to `T` (and back to f64).
    fn rounded<T: Float>(&self) -> Case {
        Case {
            label: self.label.clone(),
            loss: self.loss.clone(),
            arrays: self
                .arrays
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|&x| T::of(x).to_f64()).collect()))
                .collect(),
            classes: self.classes.clone(),
            ..*self
        }
    }

    fn get<T: Float>(&self, key: &str) -> Vec<T> {
        self.arrays[key].iter().map(|&x| T::of(x)).collect()
    }
}

/// What our code gives for a case, in `T`: `(name, fixture field, values)`, the value as a
/// one-element list, every number already rescaled to the case's reduction.
fn compute<T: Float>(case: &Case) -> Vec<(String, &'static str, Vec<f64>)> {
    let rows = case.rows;
    let mut out = Vec::new();
    let mut push = |form: &str, key: &'static str, r: Result<T, LossError>, grad: &[T]| {
        let v = r.unwrap_or_else(|e| panic!("{} {form}: {e}", case.label));
        let s = |x: T| x.to_f64() * case.scale;
        out.push((format!("{form} value"), "value", vec![s(v)]));
        out.push((
            format!("{form} {key}"),
            key,
            grad.iter().map(|&g| s(g)).collect(),
        ));
    };
    let mut grad = vec![T::zero(); rows * case.batch];
    let values;
    match case.loss.as_str() {
        "mse" | "huber" => {
            let (pred, y) = (case.get::<T>("pred"), case.get::<T>("target"));
            let loss: Box<dyn Loss<T>> = match case.delta {
                Some(delta) => Box::new(Huber::new(delta)),
                None => Box::new(Mse),
            };
            let r = loss.loss_and_grad(&pred, rows, Targets::Values(&y), &mut grad);
            push("plain", "grad_pred", r, &grad);
        }
        "cross_entropy_index" | "cross_entropy_soft" | "kl_div_batchmean" => {
            let z = case.get::<T>("logits");
            values = if case.loss == "cross_entropy_index" {
                Vec::new()
            } else {
                case.get::<T>("target_probs")
            };
            let t = if case.loss == "cross_entropy_index" {
                Targets::Classes(&case.classes)
            } else {
                Targets::Values(&values)
            };
            let loss: &dyn Loss<T> = if case.loss == "kl_div_batchmean" {
                &KlDiv
            } else {
                &CrossEntropy
            };
            // Fused with a softmax output: from the logits and the network's softmax.
            let mut s = vec![T::zero(); z.len()];
            for (zc, sc) in z.chunks(rows).zip(s.chunks_mut(rows)) {
                softmax_column(zc, sc);
            }
            let r = loss.fused_loss_and_grad(&z, &s, rows, t, &mut grad);
            push("fused", "grad_logits", r, &grad);
            if case.loss == "kl_div_batchmean" {
                // Plain: the output is the log-probabilities.
                let log_q = case.get::<T>("input_log_q");
                let r = loss.loss_and_grad(&log_q, rows, t, &mut grad);
                push("plain", "grad_input", r, &grad);
            } else {
                // Plain: an identity output is the logits.
                let r = loss.loss_and_grad(&z, rows, t, &mut grad);
                push("plain", "grad_logits", r, &grad);
            }
        }
        "bce_with_logits" => {
            let (z, y) = (case.get::<T>("logits"), case.get::<T>("target"));
            let s: Vec<T> = z.iter().map(|&v| sigmoid(v)).collect();
            let r = BinaryCrossEntropy.fused_loss_and_grad(
                &z,
                &s,
                rows,
                Targets::Values(&y),
                &mut grad,
            );
            push("fused", "grad_logits", r, &grad);
            let r = BinaryCrossEntropy.loss_and_grad(&z, rows, Targets::Values(&y), &mut grad);
            push("plain", "grad_logits", r, &grad);
        }
        other => panic!("no computation for `{other}`"),
    }
    out
}

struct Errors {
    checked: MaxRelError,
    raw: MaxRelError,
}

fn run<T: Float>(tol: f64) -> Errors {
    let fx = load("losses.json");
    let cases = fx["cases"].as_array().expect("`cases` is a list");
    assert!(!cases.is_empty(), "losses.json has no cases");
    let mut e = Errors {
        checked: MaxRelError::new(),
        raw: MaxRelError::new(),
    };
    for (k, raw_case) in cases.iter().enumerate() {
        let case = Case::parse(k, raw_case);
        let got = compute::<T>(&case);
        let at_rounded = compute::<f64>(&case.rounded::<T>());
        let at_exact = compute::<f64>(&case);
        for ((what, key, got), ((_, _, r), (_, _, x))) in
            got.iter().zip(at_rounded.iter().zip(&at_exact))
        {
            let want = if *key == "value" {
                vec![case.value]
            } else {
                let m = matrix(&raw_case[*key]);
                m.into_iter().flatten().collect()
            };
            assert_eq!(want.len(), got.len(), "{} {what}: length", case.label);
            for i in 0..want.len() {
                let shift = if r[i] == x[i] { 0.0 } else { r[i] - x[i] };
                let name = || format!("{} (batch {}) {what}[{i}]", case.label, case.batch);
                e.raw.record(name, got[i], want[i]);
                e.checked.check(name, got[i], want[i] + shift, tol);
            }
        }
    }
    e
}

#[test]
fn losses_match_pytorch() {
    let e64 = run::<f64>(F64_TOL);
    let e32 = run::<f32>(F32_TOL);
    println!(
        "losses.json: largest relative error f64 {}",
        e64.checked.summary()
    );
    println!(
        "losses.json: largest relative error f32 {} (input rounding accounted); raw against \
         PyTorch {}",
        e32.checked.summary(),
        e32.raw.summary()
    );
}
