//! Every optimizer trajectory of the PyTorch fixture `optimizers.json`, in f64 and f32.
//!
//! Each case names a `torch.optim` class and gives all its hyperparameters; the optimizer is
//! built from them (an unknown class or hyperparameter fails the test), stepped with the
//! fixture's fixed gradients and compared after every step.

use nn::runtime::optim::{AdaMax, Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nn::runtime::{Float, TensorInfo};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The fixture directory: `NN_FIXTURES_DIR` if set, else `tests/fixtures/pytorch`.
fn fixtures_dir() -> PathBuf {
    match std::env::var_os("NN_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch"),
    }
}

fn load(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Hyperparameters to be consumed one by one; leftovers are an error.
struct Hyper {
    case: String,
    map: Map<String, Value>,
}

impl Hyper {
    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn num(&mut self, key: &str) -> Result<Option<f64>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{}: `{key}` = {v} is not a number", self.case)),
        }
    }

    fn flag(&mut self, key: &str) -> Result<Option<bool>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| format!("{}: `{key}` = {v} is not a bool", self.case)),
        }
    }

    fn betas(&mut self) -> Result<Option<(f64, f64)>, String> {
        match self.take("betas") {
            None => Ok(None),
            Some(v) => match v
                .as_array()
                .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>())
            {
                Some(b) if b.len() == 2 && b.iter().all(Option::is_some) => {
                    Ok(Some((b[0].unwrap_or(0.0), b[1].unwrap_or(0.0))))
                }
                _ => Err(format!(
                    "{}: betas = {v} is not a pair of numbers",
                    self.case
                )),
            },
        }
    }

    fn finish(self) -> Result<(), String> {
        if self.map.is_empty() {
            Ok(())
        } else {
            let keys: Vec<&String> = self.map.keys().collect();
            Err(format!(
                "{}: unrecognized hyperparameters {keys:?}",
                self.case
            ))
        }
    }
}

/// Applies `set` when the hyperparameter is present.
fn with<O, V>(o: O, v: Option<V>, set: impl FnOnce(O, V) -> O) -> O {
    match v {
        Some(v) => set(o, v),
        None => o,
    }
}

/// Builds the optimizer of a fixture case from the torch class name and every
/// hyperparameter, failing on anything unknown, then validates it.
fn build<T: Float>(
    case: &str,
    optimizer: &str,
    hyperparameters: &Map<String, Value>,
) -> Result<Box<dyn Optimizer<T>>, String> {
    let mut h = Hyper {
        case: case.to_owned(),
        map: hyperparameters.clone(),
    };
    let lr = h.num("lr")?;
    let opt: Box<dyn Optimizer<T>> = match optimizer {
        "SGD" => {
            let o = lr.map_or_else(Sgd::default, Sgd::new);
            let o = with(o, h.num("momentum")?, Sgd::momentum);
            let o = with(o, h.num("dampening")?, Sgd::dampening);
            let o = with(o, h.num("weight_decay")?, Sgd::weight_decay);
            let o = with(o, h.flag("nesterov")?, Sgd::nesterov);
            Box::new(with(o, h.flag("maximize")?, Sgd::maximize))
        }
        "Adagrad" => {
            let o = lr.map_or_else(Adagrad::default, Adagrad::new);
            let o = with(o, h.num("lr_decay")?, Adagrad::lr_decay);
            let o = with(o, h.num("weight_decay")?, Adagrad::weight_decay);
            let o = with(
                o,
                h.num("initial_accumulator_value")?,
                Adagrad::initial_accumulator_value,
            );
            let o = with(o, h.num("eps")?, Adagrad::eps);
            Box::new(with(o, h.flag("maximize")?, Adagrad::maximize))
        }
        "RMSprop" => {
            let o = lr.map_or_else(RmsProp::default, RmsProp::new);
            let o = with(o, h.num("alpha")?, RmsProp::alpha);
            let o = with(o, h.num("eps")?, RmsProp::eps);
            let o = with(o, h.num("weight_decay")?, RmsProp::weight_decay);
            let o = with(o, h.num("momentum")?, RmsProp::momentum);
            let o = with(o, h.flag("centered")?, RmsProp::centered);
            Box::new(with(o, h.flag("maximize")?, RmsProp::maximize))
        }
        "Adam" => {
            let o = lr.map_or_else(Adam::default, Adam::new);
            let o = with(o, h.betas()?, |o, (b1, b2)| o.betas(b1, b2));
            let o = with(o, h.num("eps")?, Adam::eps);
            let o = with(o, h.num("weight_decay")?, Adam::weight_decay);
            let o = with(o, h.flag("amsgrad")?, Adam::amsgrad);
            let o = with(
                o,
                h.flag("decoupled_weight_decay")?,
                Adam::decoupled_weight_decay,
            );
            Box::new(with(o, h.flag("maximize")?, Adam::maximize))
        }
        "Adamax" => {
            let o = lr.map_or_else(AdaMax::default, AdaMax::new);
            let o = with(o, h.betas()?, |o, (b1, b2)| o.betas(b1, b2));
            let o = with(o, h.num("eps")?, AdaMax::eps);
            let o = with(o, h.num("weight_decay")?, AdaMax::weight_decay);
            Box::new(with(o, h.flag("maximize")?, AdaMax::maximize))
        }
        "AdamW" => {
            let o = lr.map_or_else(AdamW::default, AdamW::new);
            let o = with(o, h.betas()?, |o, (b1, b2)| o.betas(b1, b2));
            let o = with(o, h.num("eps")?, AdamW::eps);
            let o = with(o, h.num("weight_decay")?, AdamW::weight_decay);
            let o = with(o, h.flag("amsgrad")?, AdamW::amsgrad);
            Box::new(with(o, h.flag("maximize")?, AdamW::maximize))
        }
        other => return Err(format!("{case}: unknown optimizer `{other}`")),
    };
    h.finish()?;
    opt.validate().map_err(|e| format!("{case}: {e}"))?;
    Ok(opt)
}

/// A `[rows][cols]` nested list as a column-major vector (our storage order).
fn col_major(v: &Value, rows: usize, cols: usize) -> Vec<f64> {
    let m: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("a matrix of numbers");
    assert_eq!(m.len(), rows, "rows");
    let mut out = Vec::with_capacity(rows * cols);
    for c in 0..cols {
        for row in &m {
            assert_eq!(row.len(), cols, "cols");
            out.push(row[c]);
        }
    }
    out
}

struct Fixture {
    rows: usize,
    cols: usize,
    p0: Vec<f64>,
    grads: Vec<Vec<f64>>,
    cases: Vec<Value>,
}

fn fixture() -> Fixture {
    let f = load("optimizers.json");
    let shape: Vec<usize> = serde_json::from_value(f["shape"].clone()).expect("shape [rows, cols]");
    assert_eq!(shape.len(), 2, "shape must be [rows, cols]");
    let (rows, cols) = (shape[0], shape[1]);
    let p0 = col_major(&f["p0"], rows, cols);
    let grads = f["grads"]
        .as_array()
        .expect("grads")
        .iter()
        .map(|g| col_major(g, rows, cols))
        .collect();
    let cases = f["cases"].as_array().expect("cases").clone();
    assert!(!cases.is_empty(), "optimizers.json has no cases");
    Fixture {
        rows,
        cols,
        p0,
        grads,
        cases,
    }
}

fn tensor(rows: usize, cols: usize) -> TensorInfo {
    TensorInfo {
        index: 0,
        name: "p",
        rows,
        cols,
        is_bias: false,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    }
}

/// Relative error, or absolute where the reference is below 1e-3 in magnitude.
fn error(got: f64, want: f64) -> f64 {
    let diff = (got - want).abs();
    if want.abs() < 1e-3 {
        diff
    } else {
        diff / want.abs()
    }
}

/// Runs every case in `T`; returns the largest error and panics listing failures.
fn run_all<T: Float>(tolerance: f64) -> f64 {
    let fx = fixture();
    let info = tensor(fx.rows, fx.cols);
    let mut worst: (f64, String) = (0.0, String::new());
    let mut failures = Vec::new();
    for case in &fx.cases {
        let name = case["name"].as_str().expect("case name");
        let class = case["optimizer"].as_str().expect("optimizer");
        let hp = case["hyperparameters"]
            .as_object()
            .expect("hyperparameters");
        let mut opt = build::<T>(name, class, hp).unwrap_or_else(|e| panic!("{e}"));
        let after = case["params_after_step"]
            .as_array()
            .expect("params_after_step");
        assert!(!after.is_empty(), "{name}: no steps");
        assert!(
            after.len() <= fx.grads.len(),
            "{name}: more steps than gradients"
        );
        let mut p: Vec<T> = fx.p0.iter().map(|&v| T::of(v)).collect();
        for (t, want) in after.iter().enumerate() {
            let g: Vec<T> = fx.grads[t].iter().map(|&v| T::of(v)).collect();
            opt.begin_step();
            opt.update(&info, &mut p, &g);
            let want = col_major(want, fx.rows, fx.cols);
            for (i, (&got, &w)) in p.iter().zip(&want).enumerate() {
                let e = error(got.to_f64(), w);
                if e > worst.0 || e.is_nan() {
                    worst = (e, format!("{name} step {} element {i}", t + 1));
                }
                if e.is_nan() || e > tolerance {
                    failures.push(format!(
                        "{name}: step {} element {i}: got {} want {w} (error {e:.3e})",
                        t + 1,
                        got.to_f64()
                    ));
                }
            }
        }
    }
    println!(
        "optimizers.json in {}: {} cases, largest error {:.3e} ({})",
        T::NAME,
        fx.cases.len(),
        worst.0,
        worst.1
    );
    assert!(
        failures.is_empty(),
        "{} mismatches (tolerance {tolerance:e}), first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    worst.0
}

#[test]
fn optimizers_match_pytorch_f64() {
    run_all::<f64>(1e-9);
}

#[test]
fn optimizers_match_pytorch_f32() {
    run_all::<f32>(1e-5);
}

/// Saving the state halfway and loading it into a fresh optimizer continues bit for bit.
#[test]
fn state_round_trip_mid_trajectory_is_exact() {
    let fx = fixture();
    let info = tensor(fx.rows, fx.cols);
    for case in &fx.cases {
        let name = case["name"].as_str().expect("case name");
        let class = case["optimizer"].as_str().expect("optimizer");
        let hp = case["hyperparameters"]
            .as_object()
            .expect("hyperparameters");
        let steps = case["params_after_step"].as_array().expect("steps").len();
        let half = steps / 2;
        let mut a = build::<f64>(name, class, hp).unwrap_or_else(|e| panic!("{e}"));
        let mut p = fx.p0.clone();
        for g in &fx.grads[..half] {
            a.begin_step();
            a.update(&info, &mut p, g);
        }
        let state = a.state();
        let mut b = build::<f64>(name, class, hp).unwrap_or_else(|e| panic!("{e}"));
        b.load_state(&state)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.state(), state, "{name}: state after load");
        let mut q = p.clone();
        for g in &fx.grads[half..steps] {
            a.begin_step();
            a.update(&info, &mut p, g);
            b.begin_step();
            b.update(&info, &mut q, g);
        }
        assert_eq!(p, q, "{name}: resumed trajectory differs");
        assert_eq!(a.state(), b.state(), "{name}: final states differ");
    }
}

#[test]
fn unknown_optimizer_or_hyperparameter_is_rejected() {
    let hp: Map<String, Value> = serde_json::from_str(r#"{"lr": 0.1}"#).expect("json");
    assert!(build::<f64>("x", "SGD", &hp).is_ok());
    assert!(build::<f64>("x", "LBFGS", &hp).is_err());
    let bad: Map<String, Value> = serde_json::from_str(r#"{"lr": 0.1, "bogus": 1}"#).expect("json");
    let err = build::<f64>("x", "Adam", &bad).err().unwrap_or_default();
    assert!(err.contains("bogus"), "{err}");
    let invalid: Map<String, Value> =
        serde_json::from_str(r#"{"lr": 0.1, "betas": [0.9, 1.0]}"#).expect("json");
    assert!(build::<f64>("x", "Adam", &invalid).is_err());
    let nesterov: Map<String, Value> =
        serde_json::from_str(r#"{"lr": 0.1, "nesterov": true}"#).expect("json");
    assert!(build::<f64>("x", "SGD", &nesterov).is_err());
}
