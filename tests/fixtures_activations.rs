//! Every activation's value and derivative, and softmax, log-softmax and their
//! vector-Jacobian products, against PyTorch (`activations.json`, `softmax.json`), in f64 and
//! f32. Activation parameters come from the file.

mod common;

use common::{load, matrix, num, vector, Tracker};
use nn::runtime::activation::*;
use nn::runtime::Float;

/// Value and derivative of the activation the fixture names, through the same `Activation`
/// interface generated code uses (`forward`, then `backward` of a gradient of ones).
fn apply<T: Float>(name: &str, params: &serde_json::Value, x: &[T]) -> (Vec<T>, Vec<T>) {
    let p = |key: &str| T::of(num(&params[key]));
    fn run<T: Float, A: Activation<T>>(a: A, x: &[T]) -> (Vec<T>, Vec<T>) {
        let mut y = vec![T::zero(); x.len()];
        a.forward(x, &mut y, x.len());
        let mut d = vec![T::one(); x.len()];
        a.backward(x, &y, &mut d, x.len());
        (y, d)
    }
    match name {
        "identity" => run(Identity, x),
        "sigmoid" => run(Sigmoid, x),
        "tanh" => run(Tanh, x),
        "relu" => run(Relu, x),
        "leaky_relu" => run(
            LeakyRelu {
                negative_slope: p("leaky_negative_slope"),
            },
            x,
        ),
        "elu" => run(
            Elu {
                alpha: p("elu_alpha"),
            },
            x,
        ),
        "gelu" => run(Gelu, x),
        "gelu_tanh" => run(GeluTanh, x),
        "softplus" => run(
            Softplus {
                beta: p("softplus_beta"),
                threshold: p("softplus_threshold"),
            },
            x,
        ),
        "silu" => run(Silu, x),
        other => panic!("activations.json has `{other}`, which this library does not know"),
    }
}

fn activations<T: Float>(tol: f64) -> Tracker {
    let fx = load("activations.json");
    let x: Vec<T> = vector(&fx["x"]).into_iter().map(T::of).collect();
    let mut t = Tracker::new(tol);
    let acts = fx["activations"].as_object().expect("activations");
    assert!(!acts.is_empty());
    for (name, case) in acts {
        let (value, derivative) = apply::<T>(name, &fx["params"], &x);
        for (i, (want_v, want_d)) in vector(&case["value"])
            .into_iter()
            .zip(vector(&case["derivative"]))
            .enumerate()
        {
            let xi = x[i].to_f64();
            t.check(|| format!("{name}({xi})"), value[i].to_f64(), want_v);
            t.check(|| format!("{name}'({xi})"), derivative[i].to_f64(), want_d);
        }
    }
    t
}

fn softmax<T: Float>(tol: f64) -> Tracker {
    let fx = load("softmax.json");
    let mut t = Tracker::new(tol);
    let rows = |key: &str| -> Vec<Vec<T>> {
        matrix(&fx[key])
            .into_iter()
            .map(|r| r.into_iter().map(T::of).collect())
            .collect()
    };
    let (z, v) = (rows("z"), rows("v"));
    let (want_s, want_jvp) = (matrix(&fx["softmax"]), matrix(&fx["jvp"]));
    let (want_ls, want_lvjp) = (matrix(&fx["log_softmax"]), matrix(&fx["log_softmax_vjp"]));
    assert!(!z.is_empty());
    for (r, (zr, vr)) in z.iter().zip(&v).enumerate() {
        let k = zr.len();
        // Rounding the logits to T moves each by up to |z| ε, so log-softmax moves by up to
        // about 2 |z| ε absolute, and softmax and its products by that much relative. In f64
        // this is far below the tolerance; in f32 it dominates for logits near ±1000.
        let eps = if T::NAME == "f32" {
            f64::from(f32::EPSILON)
        } else {
            f64::EPSILON
        };
        let shift = 4.0
            * zr.iter()
                .fold(0.0f64, |m, &z| m.max(Float::to_f64(z).abs()))
            * eps;
        let mut t_row = Tracker::new(tol + shift);
        let abs_tol = |want: f64| tol + shift / want.abs().max(1e-3);
        let mut s = vec![T::zero(); k];
        softmax_column(zr, &mut s);
        // Softmax's Jacobian is symmetric: J v is the vector-Jacobian product.
        let mut jvp = vr.clone();
        softmax_vjp_column(&s, &mut jvp);
        let mut ls = vec![T::zero(); k];
        log_softmax_column(zr, &mut ls);
        let mut lvjp = vr.clone();
        log_softmax_vjp_column(&s, &mut lvjp);
        // The batch path of the `Softmax` activation agrees with the column helpers.
        let mut a = vec![T::zero(); k];
        Activation::<T>::forward(&Softmax, zr, &mut a, k);
        assert_eq!(a, s, "row {r}");
        for i in 0..k {
            t_row.check(
                || format!("softmax row {r}[{i}]"),
                s[i].to_f64(),
                want_s[r][i],
            );
            t_row.check(
                || format!("jvp row {r}[{i}]"),
                jvp[i].to_f64(),
                want_jvp[r][i],
            );
            t_row.check_within(
                || format!("log_softmax row {r}[{i}]"),
                ls[i].to_f64(),
                want_ls[r][i],
                abs_tol(want_ls[r][i]),
            );
            t_row.check(
                || format!("log_softmax_vjp row {r}[{i}]"),
                lvjp[i].to_f64(),
                want_lvjp[r][i],
            );
        }
        if t_row.worst > t.worst {
            t.worst = t_row.worst;
            t.at = t_row.at;
        }
    }
    t
}

#[test]
fn activations_match_pytorch() {
    let t64 = activations::<f64>(1e-9);
    let t32 = activations::<f32>(1e-5);
    println!(
        "activations.json: largest error f64 {:.2e} ({}), f32 {:.2e} ({})",
        t64.worst, t64.at, t32.worst, t32.at
    );
}

#[test]
fn softmax_matches_pytorch() {
    let t64 = softmax::<f64>(1e-9);
    let t32 = softmax::<f32>(1e-5);
    println!(
        "softmax.json: largest error f64 {:.2e} ({}), f32 {:.2e} ({})",
        t64.worst, t64.at, t32.worst, t32.at
    );
}
