//! [`BatchNorm`] and [`LayerNorm`] through the [`Layer`] trait only, as generated code calls
//! them: a chain `Dense<T, 3, 4, A>` → norm with the loss `L = Σ c ⊙ y` for a fixed `c`,
//! against central finite differences, PyTorch's running-statistics rule and the other
//! paths of the trait.

use crate::activation::{Activation, Identity, Tanh};
use crate::layer::dropout::NoDraws;
use crate::layer::{
    BatchNorm, Dense, InputGradient, Layer, LayerNorm, NormGradients, Record, Tensors,
};
use crate::param::Param;
use crate::scalar::Float;
use nalgebra::SVector;
use rand::{rngs::StdRng, Rng, SeedableRng};

const IN: usize = 3;
const N: usize = 4;

/// `len` values uniform in `[lo, hi)`, each representable in `f32`.
fn uniform(rng: &mut StdRng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..len)
        .map(|_| rng.random_range(lo..hi) as f32 as f64)
        .collect()
}

fn of<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&v| T::of(v)).collect()
}

fn vector<T: Float>(v: &[f64]) -> SVector<T, N> {
    SVector::from_column_slice(&of::<T>(v))
}

/// `|a − f| ≤ tol · max(1, |f|)`.
fn assert_close(a: f64, f: f64, tol: f64, what: &str) {
    assert!(
        (a - f).abs() <= tol * f.abs().max(1.0),
        "{what}: analytic {a}, reference {f}"
    );
}

fn dense<T: Float, A: Activation<T> + Default>(rng: &mut StdRng) -> Dense<T, IN, N, A> {
    let w = uniform(rng, IN * N, -1.0, 1.0);
    let b = uniform(rng, N, -0.5, 0.5);
    let mut d = Dense::<T, IN, N, A>::zeros(true);
    d.weight = Param::from_column_slice(&of::<T>(&w)).unwrap();
    d.bias = Param::from_column_slice(&of::<T>(&b));
    d
}

fn batch_norm<T: Float>(rng: &mut StdRng, affine: bool) -> BatchNorm<T, N> {
    BatchNorm {
        weight: vector(&uniform(rng, N, 0.5, 2.0)),
        bias: vector(&uniform(rng, N, -1.0, 1.0)),
        running_mean: vector(&uniform(rng, N, -1.0, 1.0)),
        running_var: vector(&uniform(rng, N, 0.2, 3.0)),
        affine,
        ..BatchNorm::default()
    }
}

fn layer_norm<T: Float>(rng: &mut StdRng, affine: bool) -> LayerNorm<T, N> {
    LayerNorm {
        weight: vector(&uniform(rng, N, 0.5, 2.0)),
        bias: vector(&uniform(rng, N, -1.0, 1.0)),
        affine,
        ..LayerNorm::default()
    }
}

/// One recorded pass of the chain and its backward, through the trait.
struct Pass<T, A, L: Layer<T, N, N>>
where
    T: Float,
    A: Activation<T>,
{
    /// The dense layer's output, the norm's input.
    h: Vec<T>,
    y: Vec<T>,
    dx: Vec<T>,
    dense_grads: <Dense<T, IN, N, A> as Layer<T, IN, N>>::Gradients,
    norm_grads: L::Gradients,
    norm_tape: L::Tape,
    /// Whether the norm applied the dense layer's derivative.
    ready: bool,
}

/// `L = Σ c ⊙ y` of the chain recorded in the given mode.
fn loss<T: Float, A: Activation<T>, L: Layer<T, N, N>>(
    d: &Dense<T, IN, N, A>,
    norm: &L,
    x: &[T],
    c: &[T],
    training: bool,
) -> f64 {
    let n = x.len() / IN;
    let mut rng = NoDraws;
    let mut pass = Record {
        training,
        output_layer: false,
        rng: &mut rng,
    };
    let mut h = vec![T::zero(); N * n];
    d.record(x, &mut h, &mut Default::default(), n, &mut pass);
    pass.output_layer = true;
    let mut y = vec![T::zero(); N * n];
    norm.record(&h, &mut y, &mut Default::default(), n, &mut pass);
    y.iter()
        .zip(c)
        .map(|(&y, &c)| <T as Float>::to_f64(y) * <T as Float>::to_f64(c))
        .sum()
}

/// The chain recorded and differentiated: `dy = c`.
fn run<T: Float, A: Activation<T>, L: Layer<T, N, N>>(
    d: &Dense<T, IN, N, A>,
    norm: &L,
    x: &[T],
    c: &[T],
    training: bool,
) -> Pass<T, A, L> {
    let n = x.len() / IN;
    let mut rng = NoDraws;
    let mut pass = Record {
        training,
        output_layer: false,
        rng: &mut rng,
    };
    let mut dense_tape = Default::default();
    let mut h = vec![T::zero(); N * n];
    d.record(x, &mut h, &mut dense_tape, n, &mut pass);
    pass.output_layer = true;
    let mut norm_tape = L::Tape::default();
    let mut y = vec![T::nan(); N * n];
    norm.record(&h, &mut y, &mut norm_tape, n, &mut pass);

    let mut dy = c.to_vec();
    let mut dh = vec![T::nan(); N * n];
    let below = d.output_derivative(&dense_tape, x, &h);
    let ready = norm.input_gradient(
        &h,
        &y,
        &mut norm_tape,
        &mut dy,
        false,
        InputGradient::new(&mut dh, below),
        n,
    );
    assert_eq!(dy, c, "the norm's input gradient leaves dy intact");
    let mut dx = vec![T::nan(); IN * n];
    d.input_gradient(
        x,
        &h,
        &mut dense_tape,
        &mut dh,
        ready,
        InputGradient::<T, Identity>::Plain(&mut dx),
        n,
    );
    let mut dense_grads = d.zero_gradients();
    d.parameter_gradients(x, &dense_tape, &dh, &mut dense_grads, n);
    let mut norm_grads = norm.zero_gradients();
    norm.parameter_gradients(&h, &norm_tape, &dy, &mut norm_grads, n);
    assert!(norm.gradient_finite(&h, &norm_tape, &dy, n));
    Pass {
        h,
        y,
        dx,
        dense_grads,
        norm_grads,
        norm_tape,
        ready,
    }
}

/// The gradients' tensors as `(k, values)`.
fn tensors<G: Tensors<f64>>(g: &G) -> Vec<(usize, Vec<f64>)> {
    let mut out = Vec::new();
    g.visit(&mut |k, v| out.push((k, v.to_vec())));
    out
}

/// Adds `d` to value `i` of tensor `k`.
fn nudge<P: Tensors<f64>>(p: &mut P, k: usize, i: usize, d: f64) {
    p.visit_mut(&mut |j, v| {
        if j == k {
            v[i] += d;
        }
    });
}

/// Every parameter gradient (found by the gradients' `k`, nudged in the layer's tensor `k`)
/// and the input gradient against central differences with `h = 1e-6`.
fn check_chain<A, L>(d: &Dense<f64, IN, N, A>, norm: &L, training: bool, what: &str)
where
    A: Activation<f64> + Clone,
    L: Layer<f64, N, N> + Clone,
{
    const TOL: f64 = 1e-6;
    let n = 5;
    let mut rng = StdRng::seed_from_u64(7 + training as u64);
    let x = uniform(&mut rng, IN * n, -2.0, 2.0);
    let c = uniform(&mut rng, N * n, -1.0, 1.0);
    let p = run(d, norm, &x, &c, training);
    assert_eq!(p.ready, !A::IS_IDENTITY, "{what}: ready");
    let h = 1e-6;
    let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
    let mode = if training { "training" } else { "eval" };

    for k in 0..IN * n {
        let f = fd(&|e| {
            let mut x = x.clone();
            x[k] += e;
            loss(d, norm, &x, &c, training)
        });
        assert_close(p.dx[k], f, TOL, &format!("{what} {mode} dx[{k}]"));
    }
    for (k, g) in tensors(&p.dense_grads) {
        for (i, &g) in g.iter().enumerate() {
            let f = fd(&|e| {
                let mut d = d.clone();
                nudge(&mut d, k, i, e);
                loss(&d, norm, &x, &c, training)
            });
            assert_close(g, f, TOL, &format!("{what} {mode} dense[{k}][{i}]"));
        }
    }
    let norm_tensors = tensors(&p.norm_grads);
    for (k, g) in &norm_tensors {
        for (i, &g) in g.iter().enumerate() {
            let f = fd(&|e| {
                let mut l = norm.clone();
                nudge(&mut l, *k, i, e);
                loss(d, &l, &x, &c, training)
            });
            assert_close(g, f, TOL, &format!("{what} {mode} norm[{k}][{i}]"));
        }
    }
    let affine = !norm_tensors.is_empty();
    assert_eq!(
        norm_tensors.iter().map(|t| t.0).collect::<Vec<_>>(),
        if affine { vec![0, 1] } else { vec![] },
        "{what}"
    );
}

#[test]
fn batch_norm_chain_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(1);
    for training in [true, false] {
        for affine in [true, false] {
            let bn = batch_norm::<f64>(&mut rng, affine);
            let what = format!("batch norm (affine {affine})");
            check_chain(&dense::<f64, Identity>(&mut rng), &bn, training, &what);
            let what = format!("batch norm after tanh (affine {affine})");
            check_chain(&dense::<f64, Tanh>(&mut rng), &bn, training, &what);
        }
    }
}

#[test]
fn layer_norm_chain_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(2);
    for training in [true, false] {
        for affine in [true, false] {
            let ln = layer_norm::<f64>(&mut rng, affine);
            let what = format!("layer norm (affine {affine})");
            check_chain(&dense::<f64, Identity>(&mut rng), &ln, training, &what);
            let what = format!("layer norm after tanh (affine {affine})");
            check_chain(&dense::<f64, Tanh>(&mut rng), &ln, training, &what);
        }
    }
}

#[test]
fn eval_mode_backward_treats_the_running_statistics_as_constants() {
    // dx = γ dy / √(σ²_run + ε), whatever the batch.
    let mut rng = StdRng::seed_from_u64(3);
    let bn = batch_norm::<f64>(&mut rng, true);
    let n = 3;
    let h = uniform(&mut rng, N * n, -2.0, 2.0);
    let dy = uniform(&mut rng, N * n, -1.0, 1.0);
    let mut tape = Default::default();
    let mut y = vec![0.0; N * n];
    let mut draws = NoDraws;
    let mut pass = Record {
        training: false,
        output_layer: true,
        rng: &mut draws,
    };
    bn.record(&h, &mut y, &mut tape, n, &mut pass);
    let mut forwarded = vec![0.0; N * n];
    bn.forward(&h, &mut forwarded, n);
    assert_eq!(y, forwarded);
    let mut dx = vec![f64::NAN; N * n];
    let mut d = dy.clone();
    let fused = bn.input_gradient(
        &h,
        &y,
        &mut tape,
        &mut d,
        false,
        InputGradient::<f64, Identity>::Plain(&mut dx),
        n,
    );
    assert!(!fused);
    for (k, (&dx, &dy)) in dx.iter().zip(&dy).enumerate() {
        let i = k % N;
        let want = bn.weight[i] * dy / (bn.running_var[i] + bn.eps).sqrt();
        assert_close(dx, want, 1e-15, &format!("dx[{k}]"));
    }
    // The first layer of a network has no input gradient to write.
    let mut d = dy.clone();
    assert!(!bn.input_gradient(&h, &y, &mut tape, &mut d, false, InputGradient::none(), n));
    assert_eq!(d, dy);
}

#[test]
fn update_statistics_follows_pytorch_after_three_training_records() {
    let momentum = 0.1;
    let mut rng = StdRng::seed_from_u64(4);
    let mut bn = BatchNorm::<f64, N>::default();
    let mut tape = Default::default();
    let (mut mean, mut var) = ([0.0f64; N], [1.0f64; N]);
    for (b, n) in [4, 2, 6].into_iter().enumerate() {
        let x = uniform(&mut rng, N * n, -3.0, 5.0);
        let mut y = vec![0.0; N * n];
        let mut draws = NoDraws;
        let mut pass = Record {
            training: true,
            output_layer: false,
            rng: &mut draws,
        };
        bn.record(&x, &mut y, &mut tape, n, &mut pass);
        bn.update_statistics(&tape, n);
        for i in 0..N {
            let v: Vec<f64> = (0..n).map(|j| x[j * N + i]).collect();
            let mu = v.iter().sum::<f64>() / n as f64;
            let unbiased = v.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (n - 1) as f64;
            mean[i] = (1.0 - momentum) * mean[i] + momentum * mu;
            var[i] = (1.0 - momentum) * var[i] + momentum * unbiased;
        }
        assert_eq!(bn.num_batches_tracked, (b + 1) as f64);
        // An inference-mode record does not move the statistics.
        pass.training = false;
        let before = bn.clone();
        bn.record(&x, &mut y, &mut tape, n, &mut pass);
        bn.update_statistics(&tape, n);
        assert_eq!(bn, before);
    }
    for i in 0..N {
        assert_close(bn.running_mean[i], mean[i], 1e-14, "running mean");
        assert_close(bn.running_var[i], var[i], 1e-14, "running var");
    }
    assert_eq!(bn.num_batches_tracked, 3.0);

    // A training batch of one sample leaves the statistics unchanged (PyTorch raises).
    let before = bn.clone();
    let mut draws = NoDraws;
    let mut pass = Record {
        training: true,
        output_layer: false,
        rng: &mut draws,
    };
    let mut y = [0.0; N];
    bn.record(&[1.0, 2.0, 3.0, 4.0], &mut y, &mut tape, 1, &mut pass);
    bn.update_statistics(&tape, 1);
    assert_eq!(bn, before);

    // Layer normalization keeps no statistics: the default no-op.
    let mut ln = LayerNorm::<f64, N>::default();
    let mut lt = Default::default();
    ln.record(&[1.0, 2.0, 3.0, 4.0], &mut y, &mut lt, 1, &mut pass);
    ln.update_statistics(&lt, 1);
    assert_eq!(ln, LayerNorm::default());
}

#[test]
fn tensors_visit_trainable_tensors_first_with_the_gradients_k() {
    let mut rng = StdRng::seed_from_u64(5);
    for affine in [true, false] {
        let mut bn = batch_norm::<f64>(&mut rng, affine);
        bn.num_batches_tracked = 7.0;
        let mut want = vec![];
        if affine {
            want.push((0, bn.weight.as_slice().to_vec()));
            want.push((1, bn.bias.as_slice().to_vec()));
        }
        let k = want.len();
        want.push((k, bn.running_mean.as_slice().to_vec()));
        want.push((k + 1, bn.running_var.as_slice().to_vec()));
        want.push((k + 2, vec![7.0]));
        assert_eq!(tensors(&bn), want);
        let mut mutable = vec![];
        bn.visit_mut(&mut |k, v| mutable.push((k, v.to_vec())));
        assert_eq!(mutable, want);

        let mut ln = layer_norm::<f64>(&mut rng, affine);
        let want_ln = if affine {
            vec![
                (0, ln.weight.as_slice().to_vec()),
                (1, ln.bias.as_slice().to_vec()),
            ]
        } else {
            vec![]
        };
        assert_eq!(tensors(&ln), want_ln);

        // The gradients: weight k = 0, bias k = 1 when affine, none otherwise; and
        // visit_with_gradients pairs each parameter with the gradient of the same k.
        let grads = NormGradients {
            weight: vector(&[1.0, 2.0, 3.0, 4.0]),
            bias: vector(&[5.0, 6.0, 7.0, 8.0]),
            affine,
        };
        assert_eq!(
            Layer::<f64, N, N>::zero_gradients(&bn),
            NormGradients::zeros(affine)
        );
        assert_eq!(
            Layer::<f64, N, N>::zero_gradients(&ln),
            NormGradients::zeros(affine)
        );
        let grad_tensors = tensors(&grads);
        assert_eq!(grad_tensors.len(), if affine { 2 } else { 0 });
        let (bn_tensors, ln_tensors) = (tensors(&bn), tensors(&ln));
        let mut pairs = vec![];
        bn.visit_with_gradients(&grads, &mut |k, p, g| {
            pairs.push((k, p.to_vec(), g.to_vec()))
        });
        let mut ln_pairs = vec![];
        ln.visit_with_gradients(&grads, &mut |k, p, g| {
            ln_pairs.push((k, p.to_vec(), g.to_vec()))
        });
        for (pairs, layer) in [(pairs, bn_tensors), (ln_pairs, ln_tensors)] {
            assert_eq!(pairs.len(), grad_tensors.len());
            for ((k, p, g), (gk, gv)) in pairs.iter().zip(&grad_tensors) {
                assert_eq!((k, g), (gk, gv));
                assert_eq!(&layer[*k], &(*k, p.clone()));
            }
        }
    }
}

fn sgd_step_is_minus_lr_times_the_gradients<L>(norm: &L)
where
    L: Layer<f64, N, N> + Clone + PartialEq + std::fmt::Debug,
{
    let lr = 0.25;
    let mut rng = StdRng::seed_from_u64(6);
    let d = dense::<f64, Identity>(&mut rng);
    let n = 4;
    let x = uniform(&mut rng, IN * n, -2.0, 2.0);
    let c = uniform(&mut rng, N * n, -1.0, 1.0);
    for training in [true, false] {
        let p = run(&d, norm, &x, &c, training);
        let mut want = norm.clone();
        want.visit_with_gradients(&p.norm_grads, &mut |_, p, g| {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g;
            }
        });
        let mut stepped = norm.clone();
        stepped.sgd_step(&p.h, &p.norm_tape, &c, n, -lr);
        assert_eq!(stepped, want);
        assert_eq!(stepped == *norm, tensors(&p.norm_grads).is_empty());

        // A non-finite dy makes the gradients non-finite (when there are any).
        let mut bad = c.clone();
        bad[1] = f64::INFINITY;
        let has = !tensors(&p.norm_grads).is_empty();
        assert_eq!(norm.gradient_finite(&p.h, &p.norm_tape, &bad, n), !has);
    }
}

#[test]
fn sgd_step_equals_parameters_minus_lr_times_gradients() {
    let mut rng = StdRng::seed_from_u64(8);
    for affine in [true, false] {
        sgd_step_is_minus_lr_times_the_gradients(&batch_norm::<f64>(&mut rng, affine));
        sgd_step_is_minus_lr_times_the_gradients(&layer_norm::<f64>(&mut rng, affine));
    }
}

fn predict_is_forward_on_one_sample<T: Float, L: Layer<T, N, N>>(norm: &L) {
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..3 {
        let x = of::<T>(&uniform(&mut rng, N, -2.0, 2.0));
        let mut y = vec![T::zero(); N];
        norm.forward(&x, &mut y, 1);
        let p = norm.predict(&SVector::from_column_slice(&x));
        assert_eq!(p.as_slice(), y);
        let mut draws = NoDraws;
        let mut pass = Record {
            training: false,
            output_layer: false,
            rng: &mut draws,
        };
        let mut recorded = vec![T::zero(); N];
        norm.record(&x, &mut recorded, &mut Default::default(), 1, &mut pass);
        assert_eq!(recorded, y);
    }
}

#[test]
fn predict_equals_forward_on_a_batch_of_one() {
    let mut rng = StdRng::seed_from_u64(10);
    for affine in [true, false] {
        predict_is_forward_on_one_sample::<f64, _>(&batch_norm::<f64>(&mut rng, affine));
        predict_is_forward_on_one_sample::<f32, _>(&batch_norm::<f32>(&mut rng, affine));
        predict_is_forward_on_one_sample::<f64, _>(&layer_norm::<f64>(&mut rng, affine));
        predict_is_forward_on_one_sample::<f32, _>(&layer_norm::<f32>(&mut rng, affine));
    }
}

/// The chain in `f32` against the same chain in `f64`.
fn f32_agrees<L32, L64>(n32: &L32, n64: &L64, training: bool)
where
    L32: Layer<f32, N, N>,
    L64: Layer<f64, N, N>,
    L32::Gradients: Tensors<f32>,
{
    let mut rng = StdRng::seed_from_u64(12);
    let d64 = dense::<f64, Tanh>(&mut rng);
    let mut rng = StdRng::seed_from_u64(12);
    let d32 = dense::<f32, Tanh>(&mut rng);
    let n = 6;
    let x = uniform(&mut rng, IN * n, -2.0, 2.0);
    let c = uniform(&mut rng, N * n, -1.0, 1.0);
    let p64 = run(&d64, n64, &x, &c, training);
    let p32 = run(&d32, n32, &of::<f32>(&x), &of::<f32>(&c), training);
    let close = |a: &[f32], b: &[f64], what: &str| {
        assert_eq!(a.len(), b.len());
        for (k, (&a, &b)) in a.iter().zip(b).enumerate() {
            assert_close(a as f64, b, 1e-4, &format!("{what}[{k}]"));
        }
    };
    close(&p32.y, &p64.y, "y");
    close(&p32.dx, &p64.dx, "dx");
    let mut g32 = vec![];
    p32.norm_grads.visit(&mut |k, v| g32.push((k, v.to_vec())));
    let g64 = tensors(&p64.norm_grads);
    assert_eq!(g32.len(), g64.len());
    for ((k32, a), (k64, b)) in g32.iter().zip(&g64) {
        assert_eq!(k32, k64);
        close(a, b, "norm gradient");
    }
}

#[test]
fn f32_smoke() {
    for training in [true, false] {
        for affine in [true, false] {
            let mut rng = StdRng::seed_from_u64(13);
            let b64 = batch_norm::<f64>(&mut rng, affine);
            let mut rng = StdRng::seed_from_u64(13);
            let b32 = batch_norm::<f32>(&mut rng, affine);
            f32_agrees(&b32, &b64, training);
            let mut rng = StdRng::seed_from_u64(14);
            let l64 = layer_norm::<f64>(&mut rng, affine);
            let mut rng = StdRng::seed_from_u64(14);
            let l32 = layer_norm::<f32>(&mut rng, affine);
            f32_agrees(&l32, &l64, training);
        }
    }
}
