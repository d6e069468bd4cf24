//! End-to-end check against PyTorch: generated networks, the fused and unfused losses, L1/L2
//! penalties, backward, and SGD/Adam steps through the `Trainer`, for every case of
//! `mlp_end_to_end.json` (in f64 and f32).
//!
//! Networks are compiled, so each architecture a fixture file uses needs a network here;
//! a case with an architecture not listed fails the test and names what to add.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::{CrossEntropy, Loss, Mse};
use nn::runtime::optim::{Adam, Optimizer, Sgd};
use nn::runtime::train::{Progress, Trainer};
use nn::runtime::TensorInfo;
use serde_json::Value;
use std::path::PathBuf;

network! { Tanh4x8x3: f64 < dense(4 -> 8, tanh), dense(8 -> 3, softmax) > }
network! { Tanh4x8x3F32 < dense(4 -> 8, tanh), dense(8 -> 3, softmax) > }
network! { Sigmoid3x5x1: f64 < dense(3 -> 5, sigmoid), dense(5 -> 1) > }
network! { Sigmoid3x5x1F32 < dense(3 -> 5, sigmoid), dense(5 -> 1) > }

fn fixture() -> Value {
    let dir = std::env::var_os("NN_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch")
        });
    let path = dir.join("mlp_end_to_end.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("a matrix")
        .iter()
        .map(|r| r.as_array().expect("a row").iter().map(f).collect())
        .collect()
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array().expect("a vector").iter().map(f).collect()
}

/// Relative error, or absolute where both values are below 1e-3.
fn err(got: f64, want: f64) -> f64 {
    (got - want).abs() / got.abs().max(want.abs()).max(1e-3)
}

struct Tracker {
    tol: f64,
    worst: f64,
    what: String,
}

impl Tracker {
    fn new(tol: f64) -> Self {
        Self {
            tol,
            worst: 0.0,
            what: String::new(),
        }
    }
    fn check(&mut self, what: &str, got: f64, want: f64) {
        let e = err(got, want);
        assert!(
            e <= self.tol,
            "{what}: got {got:e}, PyTorch {want:e} (error {e:e} > {:e})",
            self.tol
        );
        if e >= self.worst {
            self.worst = e;
            self.what = what.to_string();
        }
    }
}

const PYTORCH_NAMES: [(&str, &str); 4] = [
    ("dense0.weight", "W1"),
    ("dense0.bias", "b1"),
    ("dense1.weight", "W2"),
    ("dense1.bias", "b2"),
];

/// A fixture tensor (PyTorch layout: `W [out, in]` row-major, `b [out]`) in our column-major
/// order, for the tensor `info` names.
fn from_pytorch(tensors: &Value, info: &TensorInfo) -> Vec<f64> {
    let key = PYTORCH_NAMES
        .iter()
        .find(|(ours, _)| *ours == info.name)
        .map(|p| p.1)
        .unwrap_or_else(|| panic!("no PyTorch name for {}", info.name));
    if info.is_bias {
        vector(&tensors[key])
    } else {
        let w = matrix(&tensors[key]);
        assert_eq!(
            (w.len(), w[0].len()),
            (info.rows, info.cols),
            "{} shape",
            info.name
        );
        (0..info.cols)
            .flat_map(|j| w.iter().map(move |row| row[j]))
            .collect()
    }
}

fn set_params<T: Float, P: Parameters<T>>(net: &mut P, tensors: &Value) {
    net.for_each_tensor_mut(&mut |info, values| {
        let flat = from_pytorch(tensors, info);
        assert_eq!(flat.len(), values.len(), "{}", info.name);
        for (v, x) in values.iter_mut().zip(flat) {
            *v = T::of(x);
        }
    });
}

fn compare_params<T: Float, P: Parameters<T>>(
    net: &P,
    tensors: &Value,
    label: &str,
    t: &mut Tracker,
) {
    net.for_each_tensor(&mut |info, values| {
        for (k, (&g, w)) in values.iter().zip(from_pytorch(tensors, info)).enumerate() {
            t.check(&format!("{label} {}[{k}]", info.name), g.to_f64(), w);
        }
    });
}

/// The case's data set.
fn dataset<T: Float, const IN: usize, const OUT: usize>(case: &Value) -> Dataset<T, IN> {
    let x: Vec<T> = matrix(&case["x"])
        .into_iter()
        .flatten()
        .map(T::of)
        .collect();
    let labels = if let Some(idx) = case.get("target_index") {
        let labels = idx
            .as_array()
            .expect("indices")
            .iter()
            .map(|v| v.as_u64().expect("index") as usize)
            .collect();
        Labels::Classes {
            labels,
            classes: OUT,
        }
    } else {
        let values = matrix(&case["target"])
            .into_iter()
            .flatten()
            .map(T::of)
            .collect();
        Labels::Values { values, rows: OUT }
    };
    Dataset::from_slices(&x, labels).expect("valid fixture data")
}

/// `(l1, l2)` from the case's penalty description and lambda.
fn penalty(case: &Value) -> (f64, f64) {
    let text = case["penalty"].as_str().expect("penalty text");
    let lambda = case["penalty_lambda"].as_f64().unwrap_or(0.0);
    if text == "none" {
        (0.0, 0.0)
    } else if text.starts_with("L1") {
        (lambda, 0.0)
    } else if text.starts_with("L2") {
        assert!(
            text.contains("0.5*"),
            "this test reads L2 as 0.5*lambda*sum(W^2): {text}"
        );
        (0.0, lambda)
    } else {
        panic!("unknown penalty {text:?}")
    }
}

/// The optimizer a training key names, e.g. `SGD(lr=0.1)` or `Adam(lr=0.01)` (PyTorch defaults
/// otherwise, as the fixture's description says).
fn optimizer_lr(key: &str) -> (&str, f64) {
    let (name, rest) = key
        .split_once("(lr=")
        .unwrap_or_else(|| panic!("unknown optimizer key {key}"));
    let lr = rest
        .trim_end_matches(')')
        .parse()
        .unwrap_or_else(|_| panic!("bad lr in {key}"));
    (name, lr)
}

fn run_case<N, T, L, const IN: usize, const OUT: usize>(case: &Value, loss: L, tol: f64) -> Tracker
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + Clone,
{
    let name = case["name"].as_str().expect("name");
    let mut t = Tracker::new(tol);
    let data = dataset::<T, IN, OUT>(case);
    let (l1, l2) = penalty(case);
    let fresh = || {
        let mut net = N::init(&mut StdRng::seed_from_u64(0));
        set_params(&mut net, &case["init"]);
        net
    };

    // At init: outputs (logits), data loss, penalty, total loss and gradients, through the
    // same trainer settings: one step of SGD with lr 0 changes nothing and reports the loss.
    let net = fresh();
    let mut tape = net.new_tape();
    let x = data.inputs().as_view();
    net.forward_eval(x, &mut tape);
    let logits: Vec<Vec<f64>> = matrix(&case["output_at_init"]);
    for (s, row) in logits.iter().enumerate() {
        for (k, want) in row.iter().enumerate() {
            t.check(
                &format!("{name} output_at_init[{s}][{k}]"),
                tape.output_parts().logits[s * OUT + k].to_f64(),
                *want,
            );
        }
    }
    let (data_loss, _) = nn::runtime::train::evaluate(&net, &loss, &data).expect("evaluate");
    t.check(
        &format!("{name} data_loss_at_init"),
        data_loss,
        f(&case["data_loss_at_init"]),
    );

    for (key, run) in case["training"].as_object().expect("training runs") {
        let (opt, lr) = optimizer_lr(key);
        let steps = run["steps"].as_array().expect("steps");
        for (k, step) in steps.iter().enumerate() {
            // Train k+1 full-batch steps from the initial weights and compare.
            let mut net = fresh();
            let history = match opt {
                "SGD" => train(&mut net, Sgd::new(lr), loss.clone(), &data, k + 1, l1, l2),
                "Adam" => train(&mut net, Adam::new(lr), loss.clone(), &data, k + 1, l1, l2),
                other => panic!("{name}: unknown optimizer {other}"),
            };
            let reported = history.last().map(|e| e.train_loss).expect("an epoch");
            t.check(
                &format!("{name} {key} loss_before_step {k}"),
                reported,
                f(&step["loss_before_step"]),
            );
            compare_params(
                &net,
                &step["params_after"],
                &format!("{name} {key} step {k}"),
                &mut t,
            );
        }
        let mut net = fresh();
        let after = steps.len();
        let _ = match opt {
            "SGD" => train(&mut net, Sgd::new(lr), loss.clone(), &data, after, l1, l2),
            _ => train(&mut net, Adam::new(lr), loss.clone(), &data, after, l1, l2),
        };
        let (end_data_loss, _) =
            nn::runtime::train::evaluate(&net, &loss, &data).expect("evaluate");
        let want_key = format!("data_loss_after_{after}_steps");
        if let Some(want) = run.get(&want_key) {
            t.check(&format!("{name} {key} {want_key}"), end_data_loss, f(want));
        }
    }
    t
}

fn train<N, T, L, O, const IN: usize, const OUT: usize>(
    net: &mut N,
    opt: O,
    loss: L,
    data: &Dataset<T, IN>,
    steps: usize,
    l1: f64,
    l2: f64,
) -> nn::runtime::train::History
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T>,
    O: Optimizer<T>,
{
    // Full batch, one step per epoch, no shuffling: exactly the fixture's loop.
    Trainer::new(loss, opt)
        .epochs(steps)
        .batch_size(data.len())
        .shuffle(false)
        .l1(l1)
        .l2(l2)
        .progress(Progress::Off)
        .fit(net, data, None)
        .expect("training")
}

fn check_all(tol64: f64, tol32: f64) {
    let fx = fixture();
    let cases = fx["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let sizes: Vec<u64> = case["sizes"]
            .as_array()
            .expect("sizes")
            .iter()
            .map(|v| v.as_u64().expect("size"))
            .collect();
        let hidden = case["hidden_activation"]
            .as_str()
            .expect("hidden activation");
        let ce = case.get("target_index").is_some();
        let (t64, t32) = match (sizes.as_slice(), hidden, ce) {
            ([4, 8, 3], "tanh", true) => (
                run_case::<Tanh4x8x3, f64, _, 4, 3>(case, CrossEntropy, tol64),
                run_case::<Tanh4x8x3F32, f32, _, 4, 3>(case, CrossEntropy, tol32),
            ),
            ([3, 5, 1], "sigmoid", false) => (
                run_case::<Sigmoid3x5x1, f64, _, 3, 1>(case, Mse, tol64),
                run_case::<Sigmoid3x5x1F32, f32, _, 3, 1>(case, Mse, tol32),
            ),
            _ => panic!(
                "{name}: no compiled network for sizes {sizes:?} with {hidden} ({}); add one to this test",
                if ce { "cross-entropy" } else { "MSE" }
            ),
        };
        println!(
            "{name}: largest error f64 {:.2e} ({}), f32 {:.2e} ({})",
            t64.worst, t64.what, t32.worst, t32.what
        );
    }
}

#[test]
fn every_case_matches_pytorch() {
    check_all(1e-9, 1e-4);
}
