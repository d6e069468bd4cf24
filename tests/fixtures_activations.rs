//! Every activation's value and derivative (`activations.json`), and softmax, its
//! Jacobian-vector product, log-softmax and log-softmax's vector-Jacobian product
//! (`softmax.json`), against PyTorch, in f64 and f32.
//!
//! The activations are run through the [`Activation`] interface generated code uses:
//! `forward` (checked against `forward_in_place`), then `backward` of a gradient of ones, given
//! the pre-activation when the activation needs it and its output otherwise, as generated code
//! does. Parameters (slopes, alpha, beta, threshold) come from the file's `params`; an
//! activation or parameter this test does not know fails the test.
//!
//! Errors are `|got - want| / max(|want|, floor)` (see `common::fixtures`): relative, or
//! absolute below a floor. The floor is 1e-3 for activations and probabilities, whose
//! rounding is relative; for log-softmax it is 1 (a log-probability near 0 is `ln Σ` of a sum
//! near 1, wrong by about ε whatever its size), and for `J v` and log-softmax's VJP it is the
//! row's largest `|v|` (each is a difference of terms of that size, e.g. `v_i - ⟨s, v⟩` when
//! `s_i ≈ 1`). Tolerances:
//!
//! - f64: 1e-11 for activations, 1e-12 for softmax. PyTorch and this library evaluate the same
//!   formulas in the same precision and differ by a few roundings, except that PyTorch's
//!   tanh-GELU derivative cancels in the far negative tail (`1 + tanh u`, `1 - tanh² u` with
//!   `tanh u = -1 + ulp`), an absolute 5e-15 on a value of about -3e-15, i.e. 5e-12 on this
//!   scale. The largest errors seen are printed.
//! - f32: 1e-5, against the PyTorch value moved by the effect of rounding the *inputs* to f32,
//!   `f64impl(round32(x)) - f64impl(x)` (our f64 code, checked above). Without that a logit of
//!   1000 rounded to f32 moves by up to 3e-5, and a softmax output by far more than 1e-5 of
//!   itself, whatever the implementation. The raw error against PyTorch is printed too.

mod common;

use common::fixtures::{load, matrix, num, vector, MaxRelError};
use nn::runtime::activation::*;
use nn::runtime::Float;
use serde_json::Value;

const F64_TOL_ACTIVATIONS: f64 = 1e-11;
const F64_TOL_SOFTMAX: f64 = 1e-12;
const F32_TOL: f64 = 1e-5;
/// The error floor for element-wise activations and probabilities.
const FLOOR: f64 = 1e-3;

/// The parameters an activation of this library takes from the fixture's `params`.
const KNOWN_PARAMS: &[&str] = &[
    "leaky_negative_slope",
    "elu_alpha",
    "softplus_beta",
    "softplus_threshold",
];

/// `x` rounded to `T` and back.
fn round<T: Float>(x: f64) -> f64 {
    T::of(x).to_f64()
}

/// Value and derivative of the activation the fixture names at every `x` (given in f64,
/// computed in `T`).
fn apply<T: Float>(name: &str, params: &Value, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let p = |key: &str| {
        assert!(
            KNOWN_PARAMS.contains(&key),
            "`{key}` missing from KNOWN_PARAMS"
        );
        T::of(num(&params[key]))
    };
    fn run<T: Float, A: Activation<T>>(a: A, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let z: Vec<T> = x.iter().map(|&v| T::of(v)).collect();
        let n = z.len();
        let mut y = vec![T::zero(); n];
        a.forward(&z, &mut y, n);
        let mut in_place = z.clone();
        a.forward_in_place(&mut in_place, n);
        assert!(
            y.iter().zip(&in_place).all(|(a, b)| a.to_bits_eq(*b)),
            "{}: forward_in_place differs from forward",
            A::NAME
        );
        let mut d = vec![T::one(); n];
        // Generated code passes the output in place of `z` when the derivative does not need
        // `z` (and may have overwritten `z` with it).
        let zz = if A::NEEDS_Z { &z } else { &y };
        a.backward(zz, &y, &mut d, n);
        let f = |v: Vec<T>| v.into_iter().map(Float::to_f64).collect();
        (f(y), f(d))
    }
    match name {
        "identity" => run::<T, _>(Identity, x),
        "sigmoid" => run::<T, _>(Sigmoid, x),
        "tanh" => run::<T, _>(Tanh, x),
        "relu" => run::<T, _>(Relu, x),
        "leaky_relu" => run::<T, _>(
            LeakyRelu {
                negative_slope: p("leaky_negative_slope"),
            },
            x,
        ),
        "elu" => run::<T, _>(
            Elu {
                alpha: p("elu_alpha"),
            },
            x,
        ),
        "gelu" => run::<T, _>(Gelu, x),
        "gelu_tanh" => run::<T, _>(GeluTanh, x),
        "softplus" => run::<T, _>(
            Softplus {
                beta: p("softplus_beta"),
                threshold: p("softplus_threshold"),
            },
            x,
        ),
        "silu" => run::<T, _>(Silu, x),
        other => panic!("activations.json has `{other}`, which this test does not know"),
    }
}

/// Bit-for-bit equality (NaN equal to itself).
trait BitsEq {
    fn to_bits_eq(self, other: Self) -> bool;
}

impl<T: Float> BitsEq for T {
    fn to_bits_eq(self, other: T) -> bool {
        self == other || (self.is_nan() && other.is_nan())
    }
}

/// The largest error against the input-rounding-adjusted reference (checked), and against
/// PyTorch's value itself (only reported).
struct Errors {
    checked: MaxRelError,
    raw: MaxRelError,
}

impl Errors {
    fn new() -> Self {
        Self {
            checked: MaxRelError::new(),
            raw: MaxRelError::new(),
        }
    }

    /// Checks `got` (computed in `T` from rounded inputs) against PyTorch's `want`, moved by
    /// `at_rounded - at_exact` (our f64 code at the rounded and at the exact inputs; zero for
    /// `T = f64`), with the error floor `scale`.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        what: impl Fn() -> String,
        got: f64,
        want: f64,
        (at_rounded, at_exact): (f64, f64),
        scale: f64,
        tol: f64,
    ) {
        let shift = if at_rounded == at_exact {
            0.0
        } else {
            at_rounded - at_exact
        };
        self.raw.record_scaled(&what, got, want, scale);
        self.checked
            .check_scaled(what, got, want + shift, scale, tol);
    }
}

fn activations<T: Float>(tol: f64) -> Errors {
    let fx = load("activations.json");
    let params = &fx["params"];
    for key in params.as_object().expect("`params` is an object").keys() {
        assert!(
            KNOWN_PARAMS.contains(&key.as_str()),
            "activations.json has parameter `{key}`, which no activation here reads"
        );
    }
    let x = vector(&fx["x"]);
    let x_t: Vec<f64> = x.iter().map(|&v| round::<T>(v)).collect();
    let acts = fx["activations"].as_object().expect("`activations`");
    assert!(!acts.is_empty(), "activations.json has no activations");
    let mut e = Errors::new();
    for (name, case) in acts {
        let (value, derivative) = apply::<T>(name, params, &x);
        let (value_r, derivative_r) = apply::<f64>(name, params, &x_t);
        let (value_x, derivative_x) = apply::<f64>(name, params, &x);
        let (want_v, want_d) = (vector(&case["value"]), vector(&case["derivative"]));
        assert_eq!(want_v.len(), x.len(), "{name}: values");
        assert_eq!(want_d.len(), x.len(), "{name}: derivatives");
        for i in 0..x.len() {
            let xi = x[i];
            e.check(
                || format!("{name}({xi:e})"),
                value[i],
                want_v[i],
                (value_r[i], value_x[i]),
                FLOOR,
                tol,
            );
            e.check(
                || format!("{name}'({xi:e})"),
                derivative[i],
                want_d[i],
                (derivative_r[i], derivative_x[i]),
                FLOOR,
                tol,
            );
        }
    }
    e
}

/// Softmax, `J(z) v`, log-softmax and its VJP of every row (each row a sample, computed as one
/// batch of columns), in `T`.
fn softmax_outputs<T: Float>(z: &[Vec<f64>], v: &[Vec<f64>]) -> [Vec<Vec<f64>>; 4] {
    let k = z[0].len();
    let flat = |m: &[Vec<f64>]| -> Vec<T> { m.iter().flatten().map(|&x| T::of(x)).collect() };
    let (zt, vt) = (flat(z), flat(v));
    let n = zt.len();
    // The batch path of the activation, as generated code runs it.
    let mut s = vec![T::zero(); n];
    Activation::<T>::forward(&Softmax, &zt, &mut s, k);
    let mut in_place = zt.clone();
    Activation::<T>::forward_in_place(&Softmax, &mut in_place, k);
    assert!(
        s.iter().zip(&in_place).all(|(a, b)| a.to_bits_eq(*b)),
        "softmax forward_in_place differs from forward"
    );
    let mut column = vec![T::zero(); k];
    for (zc, sc) in zt.chunks(k).zip(s.chunks(k)) {
        softmax_column(zc, &mut column);
        assert!(
            column.iter().zip(sc).all(|(a, b)| a.to_bits_eq(*b)),
            "softmax_column differs from Softmax::forward"
        );
    }
    // Softmax's Jacobian is symmetric: its VJP (backward) is J v.
    let mut jvp = vt.clone();
    Activation::<T>::backward(&Softmax, &zt, &s, &mut jvp, k);
    let mut ls = vec![T::zero(); n];
    let mut lvjp = vt.clone();
    for (((zc, sc), lc), gc) in zt
        .chunks(k)
        .zip(s.chunks(k))
        .zip(ls.chunks_mut(k))
        .zip(lvjp.chunks_mut(k))
    {
        log_softmax_column(zc, lc);
        log_softmax_vjp_column(sc, gc);
    }
    let rows = |flat: Vec<T>| -> Vec<Vec<f64>> {
        flat.chunks(k)
            .map(|c| c.iter().map(|&x| Float::to_f64(x)).collect())
            .collect()
    };
    [rows(s), rows(jvp), rows(ls), rows(lvjp)]
}

fn softmax<T: Float>(tol: f64) -> Errors {
    let fx = load("softmax.json");
    let (z, v) = (matrix(&fx["z"]), matrix(&fx["v"]));
    assert!(!z.is_empty(), "softmax.json has no rows");
    assert_eq!(z.len(), v.len(), "as many `v` rows as `z` rows");
    assert_eq!(z[0].len(), v[0].len(), "`v` rows as long as `z` rows");
    let rounded = |m: &[Vec<f64>]| -> Vec<Vec<f64>> {
        m.iter()
            .map(|r| r.iter().map(|&x| round::<T>(x)).collect())
            .collect()
    };
    let got = softmax_outputs::<T>(&z, &v);
    let at_rounded = softmax_outputs::<f64>(&rounded(&z), &rounded(&v));
    let at_exact = softmax_outputs::<f64>(&z, &v);
    let mut e = Errors::new();
    for (q, key) in ["softmax", "jvp", "log_softmax", "log_softmax_vjp"]
        .into_iter()
        .enumerate()
    {
        let want = matrix(&fx[key]);
        assert_eq!(want.len(), z.len(), "{key}: rows");
        for (r, want_row) in want.iter().enumerate() {
            assert_eq!(want_row.len(), z[r].len(), "{key}: row {r}");
            let scale = match key {
                "softmax" => FLOOR,
                "log_softmax" => 1.0,
                _ => v[r].iter().fold(FLOOR, |m, x| m.max(x.abs())),
            };
            for (i, &w) in want_row.iter().enumerate() {
                e.check(
                    || format!("{key} row {r}[{i}]"),
                    got[q][r][i],
                    w,
                    (at_rounded[q][r][i], at_exact[q][r][i]),
                    scale,
                    tol,
                );
            }
        }
    }
    e
}

fn report(file: &str, e64: &Errors, e32: &Errors) {
    println!(
        "{file}: largest relative error f64 {}",
        e64.checked.summary()
    );
    println!(
        "{file}: largest relative error f32 {} (input rounding accounted); raw against PyTorch {}",
        e32.checked.summary(),
        e32.raw.summary()
    );
}

#[test]
fn activations_match_pytorch() {
    let e64 = activations::<f64>(F64_TOL_ACTIVATIONS);
    let e32 = activations::<f32>(F32_TOL);
    report("activations.json", &e64, &e32);
}

#[test]
fn softmax_matches_pytorch() {
    let e64 = softmax::<f64>(F64_TOL_SOFTMAX);
    let e32 = softmax::<f32>(F32_TOL);
    report("softmax.json", &e64, &e32);
}
