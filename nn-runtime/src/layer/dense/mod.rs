//! Fully connected layer: `Z = W X + b 1ᵀ`.

use crate::activation::{Activation, Identity};
use crate::init::Init;
use crate::kernel::{gemm, gemm_then, matvec_bias, Epilogue, Op};
use crate::param::Param;
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

mod chain;

pub use chain::DenseTape;

/// A fully connected layer from `IN` to `OUT` features with activation `f`:
/// `y = f(z)`, `z = W x + b`; `W` is `OUT x IN`, `b` has `OUT` values (absent when the DSL
/// says `bias = false`).
///
/// Generated networks hold one `Dense` per `dense(...)` layer; its gradients are a
/// [`DenseGradients`], shaped as the parameters. The layer implements
/// [`Layer`](super::Layer) in `layer/dense/chain.rs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T, const IN: usize, const OUT: usize, A = Identity> {
    /// Weights `W`, `OUT x IN`.
    pub weight: Param<T, OUT, IN>,
    /// Bias `b`, `OUT x 1`, or `None` for a layer without bias.
    pub bias: Option<Param<T, OUT, 1>>,
    /// The activation `f` applied to `z`.
    pub activation: A,
}

/// The gradients of a [`Dense`] layer's parameters: `dL/dW` (`OUT x IN`) and `dL/db`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseGradients<T, const IN: usize, const OUT: usize> {
    /// `dL/dW = dZ Xᵀ`.
    pub weight: Param<T, OUT, IN>,
    /// `dL/db = dZ 1`, or `None` for a layer without bias.
    pub bias: Option<Param<T, OUT, 1>>,
}

impl<T: Float, const IN: usize, const OUT: usize> DenseGradients<T, IN, OUT> {
    /// Gradients of zeros, with a bias gradient if `bias`.
    pub fn zeros(bias: bool) -> Self {
        Self {
            weight: Param::zeros(),
            bias: bias.then(Param::zeros),
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A: Default> Dense<T, IN, OUT, A> {
    /// A layer of zeros with the activation's default settings.
    pub fn zeros(bias: bool) -> Self {
        Self {
            weight: Param::zeros(),
            bias: bias.then(Param::zeros),
            activation: A::default(),
        }
    }

    /// Weights drawn by `init` (fans `IN` and `OUT`), biases zero, the activation's default
    /// settings.
    pub fn init<R: Rng + ?Sized>(init: Init, bias: bool, rng: &mut R) -> Self {
        Self::new(A::default(), init, bias, rng)
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A> Dense<T, IN, OUT, A> {
    /// Parameter count: `IN * OUT` weights plus `OUT` biases if present.
    pub const fn params(bias: bool) -> usize {
        IN * OUT + if bias { OUT } else { 0 }
    }

    /// A layer ending in `activation`, weights drawn by `init` (fans `IN` and `OUT`, see
    /// [`Init::sample`]), biases zero. Generated code passes the activation's own
    /// [`Activation::INIT`] unless the DSL names a scheme.
    pub fn new<R: Rng + ?Sized>(activation: A, init: Init, bias: bool, rng: &mut R) -> Self {
        Self {
            weight: Param::from_fn(|_, _| init.sample(IN, OUT, rng)),
            bias: bias.then(Param::zeros),
            activation,
        }
    }

    /// `z = W x + b` for one sample, on the stack, without heap allocation.
    #[inline]
    pub fn apply(&self, x: &SVector<T, IN>) -> SVector<T, OUT> {
        self.apply_slice(x.as_slice())
    }

    /// `z = W x + b` for one sample given as a slice of `IN` values (generated code passes
    /// the previous layer's output this way), on the stack.
    ///
    /// # Panics
    /// If `x` does not hold exactly `IN` values.
    #[inline]
    pub fn apply_slice(&self, x: &[T]) -> SVector<T, OUT> {
        assert_eq!(x.len(), IN, "dense layer takes {IN} inputs");
        let mut z = SVector::<T, OUT>::zeros();
        matvec_bias(
            self.weight.as_slice(),
            x,
            self.bias.as_ref().map(Param::as_slice),
            z.as_mut_slice(),
        );
        z
    }

    /// `Z = W X + b 1ᵀ` for a batch of `n` samples: `x` is `IN x n`, `z` is `OUT x n`
    /// (column-major, one column per sample). The bias is added by the product's epilogue.
    pub fn linear(&self, x: &[T], z: &mut [T], n: usize) {
        match &self.bias {
            Some(b) => {
                let b = b.as_slice();
                self.product(x, z, n, Some(&|i, _, col: &mut [T]| add_bias(col, &b[i..])));
            }
            None => self.product(x, z, n, None),
        }
    }

    /// `A = f(W X + b 1ᵀ)` into `a` (`OUT x n`). An element-wise `f` is applied with the bias
    /// by the product's epilogue: on each part of a product split over threads, by the thread
    /// that computed it, while the part is in its cache, instead of in passes of their own
    /// over `A` on one thread. Other activations (softmax) run after the product.
    pub fn forward_activated<F: Activation<T>>(&self, x: &[T], a: &mut [T], n: usize, f: &F) {
        if !F::ELEMENTWISE {
            self.linear(x, a, n);
            f.forward_in_place(&mut a[..OUT * n], OUT);
            return;
        }
        let bias = self.bias.as_ref().map(Param::as_slice);
        self.product(
            x,
            a,
            n,
            Some(&|i, _, col: &mut [T]| {
                if let Some(b) = bias {
                    add_bias(col, &b[i..]);
                }
                let rows = col.len();
                f.forward_in_place(col, rows);
            }),
        );
    }

    /// `Z = W X` then `then` on it (see [`Epilogue`]).
    fn product(&self, x: &[T], z: &mut [T], n: usize, then: Option<Epilogue<'_, T>>) {
        gemm_then(
            Op::N,
            Op::N,
            OUT,
            n,
            IN,
            T::one(),
            self.weight.as_slice(),
            x,
            T::zero(),
            &mut z[..OUT * n],
            then,
        );
    }

    /// Backward through `Z = W X + b 1ᵀ` for a batch of `n`, given `dz = dL/dZ` (`OUT x n`):
    /// `dL/dW = dZ Xᵀ`, `dL/db = dZ 1` (written into `grad`, overwriting), and, if asked,
    /// `dL/dX = Wᵀ dZ` into `dx` (`IN x n`).
    pub fn backward(
        &self,
        x: &[T],
        dz: &[T],
        n: usize,
        grad: &mut DenseGradients<T, IN, OUT>,
        dx: Option<&mut [T]>,
    ) {
        self.weight_gradients(x, dz, n, grad);
        if let Some(dx) = dx {
            self.linear_input_gradient(dz, n, dx);
        }
    }

    /// `dL/dW = dZ Xᵀ` and `dL/db = dZ 1` into `grad` (overwriting).
    pub fn weight_gradients(
        &self,
        x: &[T],
        dz: &[T],
        n: usize,
        grad: &mut DenseGradients<T, IN, OUT>,
    ) {
        let dz = &dz[..OUT * n];
        Self::weight_product(x, dz, n, T::one(), T::zero(), grad.weight.as_mut_slice());
        if let Some(db) = grad.bias.as_mut() {
            Self::bias_sums(dz, 0, db.as_mut_slice());
        }
    }

    /// `dL/dX = Wᵀ dZ` into `dx` (`IN x n`) from `dz = dL/dZ` (`OUT x n`): the part of
    /// [`Dense::backward`] that passes the gradient on to the layer below.
    pub fn linear_input_gradient(&self, dz: &[T], n: usize, dx: &mut [T]) {
        self.input_product(dz, n, dx, None);
    }

    /// The weight-gradient product `C = alpha·(dZ Xᵀ) + beta·C` (`OUT x IN`), with `x` the
    /// layer's input (`IN x n`) and `dz` its `dL/dZ` (`OUT x n`).
    fn weight_product(x: &[T], dz: &[T], n: usize, alpha: T, beta: T, c: &mut [T]) {
        gemm(Op::N, Op::T, OUT, IN, n, alpha, dz, x, beta, c);
    }

    /// `out_i = Σ_j dZ[first + i, j]`, the bias gradient of rows `first..first + out.len()`,
    /// summed column by column from the first.
    fn bias_sums(dz: &[T], first: usize, out: &mut [T]) {
        out.fill(T::zero());
        for col in dz.chunks_exact(OUT) {
            for (d, &g) in out.iter_mut().zip(&col[first..]) {
                *d += g;
            }
        }
    }

    /// `dX = Wᵀ dZ` then `then` on it (see [`Epilogue`]).
    fn input_product(&self, dz: &[T], n: usize, dx: &mut [T], then: Option<Epilogue<'_, T>>) {
        gemm_then(
            Op::T,
            Op::N,
            IN,
            n,
            OUT,
            T::one(),
            self.weight.as_slice(),
            &dz[..OUT * n],
            T::zero(),
            dx,
            then,
        );
    }

    /// [`Dense::linear_input_gradient`] carried on through the activation `f` of the layer below,
    /// whose pre-activation and output are `z` and `a` (`IN x n`; `z` may be `a` when `f`
    /// does not need it): `dx = (Wᵀ dZ) ⊙ f'(z)`. An element-wise `f` is applied by the
    /// product's epilogue, part by part on the thread that computed it; others after it.
    pub fn input_gradient_activated<F: Activation<T>>(
        &self,
        dz: &[T],
        n: usize,
        dx: &mut [T],
        f: &F,
        z: &[T],
        a: &[T],
    ) {
        if !F::ELEMENTWISE {
            self.linear_input_gradient(dz, n, dx);
            f.backward(&z[..IN * n], &a[..IN * n], &mut dx[..IN * n], IN);
            return;
        }
        let (z, a) = (&z[..IN * n], &a[..IN * n]);
        self.input_product(
            dz,
            n,
            dx,
            Some(&|i, j, col: &mut [T]| {
                let at = i + j * IN;
                let rows = col.len();
                f.backward(&z[at..at + rows], &a[at..at + rows], col, rows);
            }),
        );
    }

    /// Adds `a` times the parameter gradient to the parameters, without storing the gradient:
    /// `W ← W + a·(dZ Xᵀ)`, `b ← b + a·(dZ 1)`, with `x` (`IN x n`) the layer's input and `dz`
    /// (`OUT x n`) `dL/dZ`. With `a = −lr` this is a plain SGD step; the weight update is the
    /// weight-gradient product itself (`C = a·A B + C`), so the gradient is never written out
    /// and read back. With the packed kernel (the default), when the batch fits in one block
    /// of the product's inner dimension (256 samples), every weight becomes exactly
    /// `W + round(a·g)`, as with a stored gradient `g`; larger batches add each block's share
    /// in turn. The bias sums are those of [`Dense::backward`], in the same order.
    pub fn add_scaled_gradient(&mut self, x: &[T], dz: &[T], n: usize, a: T) {
        let dz = &dz[..OUT * n];
        Self::weight_product(x, dz, n, a, T::one(), self.weight.as_mut_slice());
        if let Some(b) = self.bias.as_mut() {
            // The bias gradient 64 rows at a time, on the stack (no allocation per step).
            let mut db = [T::zero(); 64];
            for (chunk, part) in b.as_mut_slice().chunks_mut(64).enumerate() {
                let db = &mut db[..part.len()];
                Self::bias_sums(dz, 64 * chunk, db);
                for (v, &d) in part.iter_mut().zip(db.iter()) {
                    *v += a * d;
                }
            }
        }
    }
}

/// `z_i += b_i` down one column run (`b` starts at the run's first row).
#[inline]
fn add_bias<T: Float>(z: &mut [T], b: &[T]) {
    for (v, &b) in z.iter_mut().zip(b) {
        *v += b;
    }
}

/// The parameter count of dense layers given as `(IN, OUT, bias)`: `Σ IN·OUT (+ OUT with a
/// bias)`, or `Err(k)` if the sum first overflows `usize` at the `k`-th layer (from 0).
///
/// Generated networks whose widths are `const`s assert with it, at compile time, that the
/// count fits, naming the layer where it does not.
pub const fn parameter_count(layers: &[(usize, usize, bool)]) -> Result<usize, usize> {
    let mut sum: usize = 0;
    let mut k = 0;
    while k < layers.len() {
        let (inputs, outputs, bias) = layers[k];
        let layer = match inputs.checked_mul(outputs) {
            Some(w) if bias => w.checked_add(outputs),
            w => w,
        };
        sum = match layer {
            Some(n) => match sum.checked_add(n) {
                Some(s) => s,
                None => return Err(k),
            },
            None => return Err(k),
        };
        k += 1;
    }
    Ok(sum)
}

/// [`parameter_count`], or `usize::MAX` where it overflows: `PARAMS`, `FLOPS` (no biases)
/// and the layers' counts of a network with `const` widths, whose overflow its generated
/// assertion reports.
pub const fn saturating_parameter_count(layers: &[(usize, usize, bool)]) -> usize {
    match parameter_count(layers) {
        Ok(n) => n,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn parameter_count_sums_and_names_the_first_overflowing_layer() {
        assert_eq!(parameter_count(&[]), Ok(0));
        assert_eq!(
            parameter_count(&[(784, 128, true), (128, 10, false)]),
            Ok(101_760)
        );
        // 2·third weights and third biases make usize::MAX, which fits; one more does not.
        let third = usize::MAX / 3;
        assert_eq!(parameter_count(&[(2, third, true)]), Ok(usize::MAX));
        assert_eq!(parameter_count(&[(2, third, true), (1, 1, false)]), Err(1));
        let half = usize::MAX / 2;
        // The product, the bias and the running sum each overflow on their own.
        assert_eq!(parameter_count(&[(1, 1, false), (3, half, false)]), Err(1));
        assert_eq!(parameter_count(&[(1, usize::MAX, true)]), Err(0));
        assert_eq!(
            parameter_count(&[(half, 1, false), (half, 1, false), (1, 2, false)]),
            Err(2)
        );
        assert_eq!(saturating_parameter_count(&[(3, 4, true)]), 16);
        assert_eq!(saturating_parameter_count(&[(3, half, false)]), usize::MAX);
    }

    #[test]
    fn batch_forward_equals_per_sample_apply() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut layer = Dense::<f64, 5, 3>::init(Init::Xavier, true, &mut rng);
        layer.bias = Some(Param::from_fn(|i, _| i as f64));
        let x: Vec<f64> = (0..5 * 4).map(|i| (i as f64).sin()).collect();
        let mut z = vec![0.0; 3 * 4];
        layer.linear(&x, &mut z, 4);
        for s in 0..4 {
            let xs = SVector::<f64, 5>::from_column_slice(&x[5 * s..5 * s + 5]);
            let zs = layer.apply(&xs);
            for i in 0..3 {
                assert!((zs[i] - z[3 * s + i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn activated_forward_has_the_bits_of_forward_then_the_activation() {
        use crate::activation::{LeakyRelu, Relu, Softmax, Tanh};
        fn check<A: Activation<f32>>(f: A, bias: bool) {
            let mut rng = StdRng::seed_from_u64(5);
            let mut layer = Dense::<f32, 300, 70>::init(Init::He, bias, &mut rng);
            if let Some(b) = layer.bias.as_mut() {
                *b = Param::from_fn(|i, _| 0.01 * i as f32 - 0.3);
            }
            for n in [1, 9, 64] {
                let x: Vec<f32> = (0..300 * n).map(|i| (i as f32 * 0.37).sin()).collect();
                let mut want = vec![0.0; 70 * n];
                layer.linear(&x, &mut want, n);
                f.forward_in_place(&mut want, 70);
                let mut got = vec![f32::NAN; 70 * n];
                layer.forward_activated(&x, &mut got, n, &f);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{}, bias {bias}, n {n}", A::NAME);
            }
        }
        for bias in [true, false] {
            check(Relu, bias);
            check(Tanh, bias);
            check(
                LeakyRelu::<f32> {
                    negative_slope: 0.1,
                },
                bias,
            );
            check(Softmax, bias);
        }
    }

    #[test]
    fn activated_input_gradient_has_the_bits_of_input_gradient_then_the_derivative() {
        use crate::activation::{Gelu, Relu, Softmax, Tanh};
        fn check<A: Activation<f32>>(f: A) {
            let mut rng = StdRng::seed_from_u64(6);
            let layer = Dense::<f32, 300, 70>::init(Init::He, true, &mut rng);
            for n in [1, 9, 64] {
                let dz: Vec<f32> = (0..70 * n).map(|i| (i as f32 * 0.61).cos()).collect();
                let z: Vec<f32> = (0..300 * n).map(|i| (i as f32 * 0.37).sin()).collect();
                let mut a = vec![0.0; 300 * n];
                f.forward(&z, &mut a, 300);
                let mut want = vec![0.0; 300 * n];
                layer.linear_input_gradient(&dz, n, &mut want);
                f.backward(&z, &a, &mut want, 300);
                let mut got = vec![f32::NAN; 300 * n];
                layer.input_gradient_activated(&dz, n, &mut got, &f, &z, &a);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{}, n {n}", A::NAME);
            }
        }
        check(Relu);
        check(Tanh);
        check(Gelu);
        check(Softmax);
    }

    #[test]
    fn backward_matches_finite_differences() {
        // L = Σ c ⊙ Z, so dL/dZ = c.
        let mut rng = StdRng::seed_from_u64(4);
        let layer = Dense::<f64, 4, 3>::init(Init::He, true, &mut rng);
        let n = 2;
        let x: Vec<f64> = (0..4 * n).map(|i| (i as f64 * 0.7).cos()).collect();
        let c: Vec<f64> = (0..3 * n).map(|i| i as f64 - 2.0).collect();
        let loss = |l: &Dense<f64, 4, 3>, x: &[f64]| {
            let mut z = vec![0.0; 3 * n];
            l.linear(x, &mut z, n);
            z.iter().zip(&c).map(|(z, c)| z * c).sum::<f64>()
        };
        let mut grad = DenseGradients::<f64, 4, 3>::zeros(true);
        let mut dx = vec![0.0; 4 * n];
        layer.backward(&x, &c, n, &mut grad, Some(&mut dx));
        let h = 1e-6;
        for k in 0..12 {
            let (mut p, mut m) = (layer.clone(), layer.clone());
            p.weight.as_mut_slice()[k] += h;
            m.weight.as_mut_slice()[k] -= h;
            let fd = (loss(&p, &x) - loss(&m, &x)) / (2.0 * h);
            assert!((grad.weight.as_slice()[k] - fd).abs() < 1e-6);
        }
        let db = grad
            .bias
            .as_ref()
            .map(|b| b.as_slice().to_vec())
            .unwrap_or_default();
        assert_eq!(db.len(), 3);
        for (i, d) in db.iter().enumerate() {
            assert!((d - (c[i] + c[3 + i])).abs() < 1e-12);
        }
        for k in 0..4 * n {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += h;
            xm[k] -= h;
            let fd = (loss(&layer, &xp) - loss(&layer, &xm)) / (2.0 * h);
            assert!((dx[k] - fd).abs() < 1e-6);
        }
    }
}
