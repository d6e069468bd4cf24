//! Layer normalization, PyTorch's `LayerNorm(N)`; the formulas are on [`LayerNorm`], the
//! [`Layer`](super::Layer) trait in `chain.rs`.

mod chain;

use super::batch_norm::{inv_std, scale_shift, NormGradients};
use crate::network::ensure_len;
use crate::scalar::Float;
use nalgebra::SVector;

/// Layer normalization over the `N` features of each sample, PyTorch's `LayerNorm(N)`:
/// `y = γ ⊙ x̂ + β` with `x̂` the sample standardized by its own statistics, the same in
/// training and evaluation.
///
/// For sample `j` of a batch (column-major, `x_ij = x[j*N + i]`):
///
/// ```text
/// μ_j = (1/N) Σ_i x_ij        σ²_j = (1/N) Σ_i (x_ij − μ_j)²   (biased)
/// s_j = 1/√(σ²_j + ε)         x̂_ij = (x_ij − μ_j) s_j          y_ij = γ_i x̂_ij + β_i
/// ```
///
/// # Backward
/// With `g = ∂L/∂x̂ = γ ⊙ dy`, the derivation of [`BatchNorm`](super::BatchNorm)'s with the
/// roles of features and samples exchanged (`∂x̂_kj/∂x_ij = (s_j/N)(N δ_ki − 1 − x̂_kj x̂_ij)`):
///
/// ```text
/// dx_ij = (s_j/N) (N g_ij − Σ_k g_kj − x̂_ij Σ_k g_kj x̂_kj)
///       = s_j (g_ij − mean_k g_kj − x̂_ij mean_k g_kj x̂_kj),
/// dγ = Σ_j dy_j ⊙ x̂_j,   dβ = Σ_j dy_j.
/// ```
///
/// `dγ` and `dβ` are sums over the samples of the batch, as [`BatchNorm`](super::BatchNorm)'s
/// and [`Dense`](super::Dense)'s: the mean's factor is already in `dy` (the losses'
/// gradients carry it, see [`crate::loss`]).
///
/// With `N = 1` every `x̂` is `0`, so `y = β` and `dx = 0`; every batch size works, `n = 0`
/// included.
///
/// The layer implements [`Layer<T, N, N>`](super::Layer) (in `layer_norm/chain.rs`), with
/// its own input-gradient buffer (not in place), the same in training and inference. Its
/// [`Tensors`](super::Tensors) are `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`,
/// nothing otherwise, as those of its [`NormGradients`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T, const N: usize> {
    /// The scale `γ` (ones by default); ignored (`γ = 1`) when `affine` is false.
    pub weight: SVector<T, N>,
    /// The shift `β` (zeros by default); ignored (`β = 0`) when `affine` is false.
    pub bias: SVector<T, N>,
    /// The `ε` added to the variance (`1e-5`).
    pub eps: f64,
    /// Whether `γ` and `β` are learned (`true`, PyTorch's `elementwise_affine`). When false
    /// they are fixed at `γ = 1`, `β = 0` whatever `weight` and `bias` hold, and their
    /// gradients are zero.
    pub affine: bool,
}

impl<T: Float, const N: usize> Default for LayerNorm<T, N> {
    /// PyTorch's defaults: `γ = 1`, `β = 0`, `eps = 1e-5`, affine.
    fn default() -> Self {
        Self {
            weight: SVector::repeat(T::one()),
            bias: SVector::zeros(),
            eps: 1e-5,
            affine: true,
        }
    }
}

/// What [`LayerNorm::record_batch`] (and [`Layer::record`](super::Layer::record)) keeps for the backward pass. Its buffers grow to the largest
/// batch recorded and are reused: once warmed up, recording allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct LayerNormTape<T> {
    /// `x̂`, `N x n` column-major.
    x_hat: Vec<T>,
    /// `s_j = 1/√(σ²_j + ε)`, one per sample.
    inv_std: Vec<T>,
    /// The batch size recorded.
    samples: usize,
}

impl<T: Float, const N: usize> LayerNorm<T, N> {
    /// [`Layer::forward`](super::Layer::forward) recorded for [`LayerNorm::backward`]: the
    /// tape keeps `x̂` and each sample's `1/√(σ² + ε)`. Training and evaluation are the same
    /// pass ([`Layer::record`](super::Layer::record) is this, whatever the mode).
    pub fn record_batch(&self, x: &[T], y: &mut [T], tape: &mut LayerNormTape<T>, n: usize) {
        ensure_len(&mut tape.x_hat, N * n);
        ensure_len(&mut tape.inv_std, n);
        tape.samples = n;
        let eps = T::of(self.eps);
        for (((x, h), y), s) in x[..N * n]
            .chunks_exact(N)
            .zip(tape.x_hat[..N * n].chunks_exact_mut(N))
            .zip(y[..N * n].chunks_exact_mut(N))
            .zip(&mut tape.inv_std[..n])
        {
            *s = standardize(x, eps, h);
            y.copy_from_slice(h);
            self.scale_shift(y);
        }
    }

    /// Backward through the pass recorded on `tape` for a batch of `n`, given `dy = dL/dy`
    /// (`N x n`): with `g = γ ⊙ dy`, `dx_j = (s_j/N)(N g_j − Σ_i g_ij − x̂_j Σ_i g_ij x̂_ij)`,
    /// `dγ = Σ_j dy_j ⊙ x̂_j`, `dβ = Σ_j dy_j`, sample by sample.
    ///
    /// `grads`, if given, is overwritten (zeros when not `affine`); `dx`, if given, receives
    /// `dL/dx`. For `dx` in the buffer of `dy` use [`LayerNorm::backward_in_place`].
    ///
    /// # Panics
    /// If the tape recorded another batch size than `n`.
    pub fn backward(
        &self,
        tape: &LayerNormTape<T>,
        dy: &[T],
        dx: Option<&mut [T]>,
        grads: Option<&mut NormGradients<T, N>>,
        n: usize,
    ) {
        tape.check(n);
        let mut grads = self.cleared(grads);
        let columns = dy[..N * n]
            .chunks_exact(N)
            .zip(tape.x_hat[..N * n].chunks_exact(N))
            .zip(&tape.inv_std[..n]);
        match dx {
            Some(dx) => {
                for (((dy, h), &s), dx) in columns.zip(dx[..N * n].chunks_exact_mut(N)) {
                    if let Some(g) = grads.as_deref_mut() {
                        accumulate(g, dy, h);
                    }
                    dx.copy_from_slice(dy);
                    self.input_gradient_in_place(h, s, dx);
                }
            }
            None => {
                if let Some(g) = grads {
                    for ((dy, h), _) in columns {
                        accumulate(g, dy, h);
                    }
                }
            }
        }
    }

    /// [`LayerNorm::backward`] with `dL/dx` written over `dy` (the gradient passed down the
    /// chain in the same buffer).
    ///
    /// # Panics
    /// If the tape recorded another batch size than `n`.
    pub fn backward_in_place(
        &self,
        tape: &LayerNormTape<T>,
        dy: &mut [T],
        grads: Option<&mut NormGradients<T, N>>,
        n: usize,
    ) {
        tape.check(n);
        let mut grads = self.cleared(grads);
        for ((d, h), &s) in dy[..N * n]
            .chunks_exact_mut(N)
            .zip(tape.x_hat[..N * n].chunks_exact(N))
            .zip(&tape.inv_std[..n])
        {
            if let Some(g) = grads.as_deref_mut() {
                accumulate(g, d, h);
            }
            self.input_gradient_in_place(h, s, d);
        }
    }

    /// `grads ← (Σ_j dy_j ⊙ x̂_j, Σ_j dy_j)` (zeros when not `affine`) of the batch of `n`
    /// recorded on `tape`.
    fn parameter_sums(
        &self,
        tape: &LayerNormTape<T>,
        dy: &[T],
        grads: &mut NormGradients<T, N>,
        n: usize,
    ) {
        tape.check(n);
        if let Some(g) = self.cleared(Some(grads)) {
            for (dy, h) in dy[..N * n]
                .chunks_exact(N)
                .zip(tape.x_hat[..N * n].chunks_exact(N))
            {
                accumulate(g, dy, h);
            }
        }
    }

    /// Zeros `grads`, and returns them to accumulate into if the layer is `affine` (else
    /// they stay zero).
    fn cleared<'g>(
        &self,
        grads: Option<&'g mut NormGradients<T, N>>,
    ) -> Option<&'g mut NormGradients<T, N>> {
        let g = grads?;
        g.weight.fill(T::zero());
        g.bias.fill(T::zero());
        self.affine.then_some(g)
    }

    /// `d ← dx` on one sample from `d = dy`, its `x̂` and `s`: `g = γ ⊙ dy`, then
    /// `dx = (s/N)(N g − Σ g − x̂ Σ g x̂)`.
    #[inline]
    fn input_gradient_in_place(&self, h: &[T], s: T, d: &mut [T]) {
        if self.affine {
            for (d, &w) in d.iter_mut().zip(self.weight.as_slice()) {
                *d *= w;
            }
        }
        let (mut sum, mut dot) = (T::zero(), T::zero());
        for (&g, &h) in d.iter().zip(h) {
            sum += g;
            dot += g * h;
        }
        let count = T::of(N as f64);
        let k = s / count;
        for (d, &h) in d.iter_mut().zip(h) {
            *d = k * (count * *d - sum - h * dot);
        }
    }

    /// `y ← γ ⊙ y + β` on one sample (nothing when not `affine`).
    #[inline]
    fn scale_shift(&self, y: &mut [T]) {
        if self.affine {
            scale_shift(y, self.weight.as_slice(), self.bias.as_slice());
        }
    }
}

impl<T> LayerNormTape<T> {
    /// Asserts the tape recorded a batch of `n`.
    fn check(&self, n: usize) {
        assert_eq!(
            self.samples, n,
            "the layer-norm tape recorded {} samples, not {n}",
            self.samples
        );
    }
}

/// `out = (x − μ)/√(σ² + ε)` for one sample, with `μ` and the biased `σ²` of its values by
/// two passes; returns `1/√(σ² + ε)`.
#[inline]
fn standardize<T: Float>(x: &[T], eps: T, out: &mut [T]) -> T {
    let count = T::of(x.len().max(1) as f64);
    let mut mean = T::zero();
    for &v in x {
        mean += v;
    }
    mean /= count;
    let mut var = T::zero();
    for &v in x {
        let d = v - mean;
        var += d * d;
    }
    let s = inv_std(var / count, eps);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - mean) * s;
    }
    s
}

/// `dγ += dy ⊙ x̂`, `dβ += dy` for one sample.
#[inline]
fn accumulate<T: Float, const N: usize>(g: &mut NormGradients<T, N>, dy: &[T], h: &[T]) {
    let (dg, db) = (g.weight.as_mut_slice(), g.bias.as_mut_slice());
    for (((dg, db), &d), &h) in dg.iter_mut().zip(db.iter_mut()).zip(dy).zip(h) {
        *db += d;
        *dg += d * h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::layer::{BatchNorm, BatchNormTape};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// `len` values uniform in `[lo, hi)`, each representable in `f32`.
    fn uniform(rng: &mut StdRng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..len)
            .map(|_| rng.random_range(lo..hi) as f32 as f64)
            .collect()
    }

    fn random_layer<const N: usize>(rng: &mut StdRng, affine: bool) -> LayerNorm<f64, N> {
        LayerNorm {
            weight: SVector::from_column_slice(&uniform(rng, N, 0.5, 2.0)),
            bias: SVector::from_column_slice(&uniform(rng, N, -1.0, 1.0)),
            affine,
            ..LayerNorm::default()
        }
    }

    fn cast<T: Float, const N: usize>(l: &LayerNorm<f64, N>) -> LayerNorm<T, N> {
        LayerNorm {
            weight: l.weight.map(T::of),
            bias: l.bias.map(T::of),
            eps: l.eps,
            affine: l.affine,
        }
    }

    fn of<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&v| T::of(v)).collect()
    }

    /// `L = Σ c ⊙ y`, in `f64`.
    fn loss<const N: usize>(l: &LayerNorm<f64, N>, x: &[f64], c: &[f64]) -> f64 {
        let mut y = vec![0.0; x.len()];
        l.forward(x, &mut y, x.len() / N);
        y.iter().zip(c).map(|(y, c)| y * c).sum()
    }

    /// `|a − f| ≤ tol · max(1, |f|)`.
    fn assert_close(a: f64, f: f64, tol: f64, what: &str) {
        assert!(
            (a - f).abs() <= tol * f.abs().max(1.0),
            "{what}: analytic {a}, reference {f}"
        );
    }

    /// The gradients by `backward` in `T` at `x` against central finite differences (step
    /// `h`) of `L = Σ c ⊙ y` in `f64`, with respect to `x`, `γ` and `β`.
    fn check_gradients_at<T: Float, const N: usize>(
        l64: &LayerNorm<f64, N>,
        x: &[f64],
        c: &[f64],
        h: f64,
        tol: f64,
    ) {
        let n = x.len() / N;
        let l = cast::<T, N>(l64);
        let mut tape = LayerNormTape::default();
        let mut y = vec![T::zero(); N * n];
        l.record_batch(&of(x), &mut y, &mut tape, n);
        let mut dx = vec![T::nan(); N * n];
        let mut g = NormGradients {
            weight: SVector::repeat(T::nan()),
            bias: SVector::repeat(T::nan()),
            affine: true,
        };
        l.backward(&tape, &of(c), Some(&mut dx), Some(&mut g), n);

        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        for k in 0..N * n {
            let f = fd(&|d| {
                let mut x = x.to_vec();
                x[k] += d;
                loss(l64, &x, c)
            });
            assert_close(dx[k].to_f64(), f, tol, &format!("dx[{k}]"));
        }
        for i in 0..N {
            let f = fd(&|d| {
                let mut l = l64.clone();
                l.weight[i] += d;
                loss(&l, x, c)
            });
            assert_close(g.weight[i].to_f64(), f, tol, &format!("dγ[{i}]"));
            let f = fd(&|d| {
                let mut l = l64.clone();
                l.bias[i] += d;
                loss(&l, x, c)
            });
            assert_close(g.bias[i].to_f64(), f, tol, &format!("dβ[{i}]"));
        }
    }

    /// [`check_gradients_at`] for a random layer, input and `c` (`N = 4`, `n = 3`, `h = 1e-6`).
    fn check_gradients<T: Float>(affine: bool, tol: f64) {
        const N: usize = 4;
        let n = 3;
        let mut rng = StdRng::seed_from_u64(71 + affine as u64);
        let l64 = random_layer::<N>(&mut rng, affine);
        let x = uniform(&mut rng, N * n, -2.0, 3.0);
        let c = uniform(&mut rng, N * n, -1.0, 1.0);
        check_gradients_at::<T, N>(&l64, &x, &c, 1e-6, tol);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for affine in [true, false] {
            check_gradients::<f64>(affine, 1e-7);
            check_gradients::<f32>(affine, 1e-4);
        }
    }

    #[test]
    fn two_samples_by_hand() {
        // Samples (1, 3) and (10, 14): μ = 2 and 12, σ² = 1 and 4; with ε = 0, x̂ = (−1, 1).
        let l = LayerNorm::<f64, 2> {
            weight: SVector::from([2.0, 0.5]),
            bias: SVector::from([1.0, -1.0]),
            eps: 0.0,
            ..LayerNorm::default()
        };
        let mut tape = LayerNormTape::default();
        let mut y = [0.0; 4];
        l.record_batch(&[1.0, 3.0, 10.0, 14.0], &mut y, &mut tape, 2);
        assert_eq!(y, [-1.0, -0.5, -1.0, -0.5]);
        assert_eq!(tape.inv_std, [1.0, 0.5]);
        // Two features always standardize to ∓1: dx = 0.
        let mut dx = [f64::NAN; 4];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &[1.0, 0.0, 0.0, 2.0], Some(&mut dx), Some(&mut g), 2);
        assert_eq!(dx, [0.0; 4]);
        assert_eq!(g.bias, SVector::from([1.0, 2.0]));
        assert_eq!(g.weight, SVector::from([-1.0, 2.0]));
    }

    #[test]
    fn three_features_by_hand() {
        // x = (−1, 0, 1): μ = 0, σ² = 2/3, s = √1.5, x̂ = (−√1.5, 0, √1.5). With γ_0 = 2 and
        // dy = (1, 0, 0): g = (2, 0, 0), Σg = 2, Σ g x̂ = −2√1.5, so
        // dx = (s/3)(3g − 2 + 2√1.5 x̂) = √1.5 (1/3, −2/3, 1/3); dγ = (−√1.5, 0, 0), dβ = dy.
        let l = LayerNorm::<f64, 3> {
            weight: SVector::from([2.0, 5.0, -3.0]),
            bias: SVector::from([0.5, 0.0, 1.0]),
            eps: 0.0,
            ..LayerNorm::default()
        };
        let r = 1.5f64.sqrt();
        let mut tape = LayerNormTape::default();
        let mut y = [0.0; 3];
        l.record_batch(&[-1.0, 0.0, 1.0], &mut y, &mut tape, 1);
        for (y, want) in y.iter().zip([0.5 - 2.0 * r, 0.0, 1.0 - 3.0 * r]) {
            assert!((y - want).abs() < 1e-15, "{y} vs {want}");
        }
        let mut dx = [0.0; 3];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &[1.0, 0.0, 0.0], Some(&mut dx), Some(&mut g), 1);
        for (d, want) in dx.iter().zip([r / 3.0, -2.0 * r / 3.0, r / 3.0]) {
            assert!((d - want).abs() < 1e-15, "{d} vs {want}");
        }
        assert_eq!(g.bias, SVector::from([1.0, 0.0, 0.0]));
        assert!((g.weight - SVector::from([-r, 0.0, 0.0])).norm() < 1e-15);
    }

    #[test]
    fn is_batch_norm_of_the_transposed_batch() {
        // Without affine parameters, normalizing each sample's 3 features is batch
        // normalization (in training) of the 5 x 3 transpose.
        let mut rng = StdRng::seed_from_u64(81);
        let x = uniform(&mut rng, 3 * 5, -2.0, 2.0);
        let dy = uniform(&mut rng, 3 * 5, -1.0, 1.0);
        let t = |v: &[f64]| -> Vec<f64> { (0..15).map(|k| v[(k % 5) * 3 + k / 5]).collect() };
        let ln = LayerNorm::<f64, 3> {
            affine: false,
            ..LayerNorm::default()
        };
        let bn = BatchNorm::<f64, 5> {
            affine: false,
            ..BatchNorm::default()
        };
        let (mut y, mut yt) = (vec![0.0; 15], vec![0.0; 15]);
        let mut tape = LayerNormTape::default();
        ln.record_batch(&x, &mut y, &mut tape, 5);
        let mut btape = BatchNormTape::default();
        bn.record_batch(&t(&x), &mut yt, &mut btape, 3, true);
        let (mut dx, mut dxt) = (vec![0.0; 15], vec![0.0; 15]);
        ln.backward(&tape, &dy, Some(&mut dx), None, 5);
        bn.backward(&btape, &t(&dy), Some(&mut dxt), None, 3);
        for (a, b) in t(&y).iter().zip(&yt).chain(t(&dx).iter().zip(&dxt)) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    fn inference_paths_agree<T: Float>() {
        const N: usize = 5;
        let n = 6;
        let mut rng = StdRng::seed_from_u64(91);
        let l = cast::<T, N>(&random_layer::<N>(&mut rng, true));
        let x: Vec<T> = of(&uniform(&mut rng, N * n, -2.0, 2.0));
        let mut y = vec![T::zero(); N * n];
        l.forward(&x, &mut y, n);
        let mut recorded = vec![T::zero(); N * n];
        l.record_batch(&x, &mut recorded, &mut LayerNormTape::default(), n);
        assert_eq!(y, recorded);
        for j in 0..n {
            let col = SVector::<T, N>::from_column_slice(&x[j * N..(j + 1) * N]);
            assert_eq!(l.predict(&col).as_slice(), &y[j * N..(j + 1) * N]);
        }
    }

    #[test]
    fn predict_forward_and_record_agree() {
        inference_paths_agree::<f64>();
        inference_paths_agree::<f32>();
    }

    #[test]
    fn in_place_backward_equals_backward_and_overwrites_gradients() {
        const N: usize = 4;
        let n = 7;
        let mut rng = StdRng::seed_from_u64(101);
        let l = random_layer::<N>(&mut rng, true);
        let x = uniform(&mut rng, N * n, -2.0, 2.0);
        let dy = uniform(&mut rng, N * n, -1.0, 1.0);
        let mut tape = LayerNormTape::default();
        l.record_batch(&x, &mut vec![0.0; N * n], &mut tape, n);
        let mut dx = vec![0.0; N * n];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &dy, Some(&mut dx), Some(&mut g), n);
        let mut d = dy.clone();
        let mut g2 = NormGradients {
            weight: SVector::repeat(f64::NAN),
            bias: SVector::repeat(7.0),
            affine: true,
        };
        l.backward_in_place(&tape, &mut d, Some(&mut g2), n);
        assert_eq!(d, dx);
        assert_eq!(g2, g);
        let mut d = dy.clone();
        l.backward_in_place(&tape, &mut d, None, n);
        assert_eq!(d, dx);
        let mut g3 = NormGradients {
            weight: SVector::repeat(3.0),
            bias: SVector::repeat(3.0),
            affine: true,
        };
        l.backward(&tape, &dy, None, Some(&mut g3), n);
        assert_eq!(g3, g);
    }

    #[test]
    fn without_affine_gamma_is_one_and_beta_zero() {
        const N: usize = 3;
        let n = 4;
        let mut rng = StdRng::seed_from_u64(111);
        let plain = LayerNorm::<f64, N>::default();
        let fixed = LayerNorm {
            affine: false,
            weight: SVector::repeat(5.0),
            bias: SVector::repeat(-7.0),
            ..plain.clone()
        };
        let x = uniform(&mut rng, N * n, -2.0, 2.0);
        let dy = uniform(&mut rng, N * n, -1.0, 1.0);
        let (mut t1, mut t2) = (LayerNormTape::default(), LayerNormTape::default());
        let (mut y1, mut y2) = (vec![0.0; N * n], vec![0.0; N * n]);
        plain.record_batch(&x, &mut y1, &mut t1, n);
        fixed.record_batch(&x, &mut y2, &mut t2, n);
        assert_eq!(y1, y2);
        let (mut dx1, mut dx2) = (vec![0.0; N * n], vec![0.0; N * n]);
        plain.backward(&t1, &dy, Some(&mut dx1), None, n);
        fixed.backward(&t2, &dy, Some(&mut dx2), None, n);
        assert_eq!(dx1, dx2);
        let mut g = NormGradients {
            weight: SVector::repeat(1.0),
            bias: SVector::repeat(1.0),
            affine: true,
        };
        fixed.backward(&t2, &dy, Some(&mut dx2), Some(&mut g), n);
        assert_eq!(g, NormGradients::zeros(true));
        let col = SVector::<f64, N>::from_column_slice(&x[..N]);
        assert_eq!(plain.predict(&col), fixed.predict(&col));
    }

    #[test]
    fn one_feature_and_empty_batches_are_finite() {
        // N = 1: x̂ = 0, so y = β and dx = 0.
        let l = LayerNorm::<f64, 1> {
            weight: SVector::from([3.0]),
            bias: SVector::from([0.25]),
            ..LayerNorm::default()
        };
        let mut tape = LayerNormTape::default();
        let mut y = [0.0; 2];
        l.record_batch(&[4.0, -9.0], &mut y, &mut tape, 2);
        assert_eq!(y, [0.25, 0.25]);
        let mut dx = [f64::NAN; 2];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &[1.0, 2.0], Some(&mut dx), Some(&mut g), 2);
        assert_eq!(dx, [0.0, 0.0]);
        assert_eq!((g.weight[0], g.bias[0]), (0.0, 3.0));
        // No sample: nothing to write, zero gradients.
        l.record_batch(&[], &mut [], &mut tape, 0);
        l.backward(&tape, &[], Some(&mut []), Some(&mut g), 0);
        assert_eq!(g, NormGradients::zeros(true));
    }

    #[test]
    fn one_sample_is_normalized_over_its_features() {
        // Unlike batch normalization, a batch of one sample is an ordinary input: its
        // statistics are over its N features.
        const N: usize = 5;
        let mut rng = StdRng::seed_from_u64(121);
        for affine in [true, false] {
            let l = random_layer::<N>(&mut rng, affine);
            let x = uniform(&mut rng, N, -3.0, 3.0);
            let c = uniform(&mut rng, N, -1.0, 1.0);
            check_gradients_at::<f64, N>(&l, &x, &c, 1e-6, 1e-7);
            check_gradients_at::<f32, N>(&l, &x, &c, 1e-6, 1e-4);

            let mut tape = LayerNormTape::default();
            let mut y = [0.0; N];
            l.record_batch(&x, &mut y, &mut tape, 1);
            let mu = x.iter().sum::<f64>() / N as f64;
            let var = x.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / N as f64;
            let h: Vec<f64> = x.iter().map(|v| (v - mu) / (var + 1e-5).sqrt()).collect();
            // x̂ has mean 0 and (biased) variance σ²/(σ² + ε).
            assert!(h.iter().sum::<f64>().abs() < 1e-14);
            let v = h.iter().map(|h| h * h).sum::<f64>() / N as f64;
            assert!((v - var / (var + 1e-5)).abs() < 1e-14, "{v}");
            for i in 0..N {
                let (w, b) = if affine {
                    (l.weight[i], l.bias[i])
                } else {
                    (1.0, 0.0)
                };
                assert_close(y[i], w * h[i] + b, 1e-15, &format!("y[{i}]"));
            }
        }
    }

    fn constant_input<T: Float>(tol: f64) {
        // σ² = 0: s = 1/√ε, x̂ = 0 and y = β, all finite; dx = s (g − mean(g)),
        // dγ = 0 and dβ = dy.
        const N: usize = 4;
        let mut rng = StdRng::seed_from_u64(131);
        let l64 = random_layer::<N>(&mut rng, true);
        let l = cast::<T, N>(&l64);
        let x = [2.5, 2.5, 2.5, 2.5, -1.0, -1.0, -1.0, -1.0];
        let dy = uniform(&mut rng, 2 * N, -1.0, 1.0);
        let mut tape = LayerNormTape::default();
        let mut y = vec![T::nan(); 2 * N];
        l.record_batch(&of(&x), &mut y, &mut tape, 2);
        let s = 1.0 / 1e-5f64.sqrt();
        for &t in &tape.inv_std {
            assert_close(t.to_f64(), s, tol, "1/√ε");
        }
        for (k, y) in y.iter().enumerate() {
            assert_eq!(*y, l.bias[k % N], "y[{k}]");
        }
        let mut dx = vec![T::nan(); 2 * N];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &of(&dy), Some(&mut dx), Some(&mut g), 2);
        for j in 0..2 {
            let gj: Vec<f64> = (0..N).map(|i| l64.weight[i] * dy[j * N + i]).collect();
            let mean = gj.iter().sum::<f64>() / N as f64;
            for i in 0..N {
                let want = s * (gj[i] - mean);
                assert_close(dx[j * N + i].to_f64(), want, tol, &format!("dx[{j}, {i}]"));
            }
        }
        assert_eq!(g.weight, SVector::<T, N>::zeros());
        for i in 0..N {
            assert_close(g.bias[i].to_f64(), dy[i] + dy[N + i], tol, "dβ");
        }
    }

    #[test]
    fn constant_input_divides_by_the_square_root_of_eps() {
        constant_input::<f64>(1e-12);
        constant_input::<f32>(1e-5);
        // The same against finite differences: σ² of the perturbed input (~h²) stays far
        // below ε, so the loss is smooth there; a smaller step keeps the s³ h² term small.
        let mut rng = StdRng::seed_from_u64(141);
        let l = random_layer::<3>(&mut rng, true);
        let c = uniform(&mut rng, 3, -1.0, 1.0);
        check_gradients_at::<f64, 3>(&l, &[0.75; 3], &c, 1e-7, 1e-7);
    }

    #[test]
    fn the_tape_allocates_nothing_once_warmed_up() {
        const N: usize = 4;
        let l = LayerNorm::<f32, N>::default();
        let x: Vec<f32> = (0..N * 8).map(|i| i as f32).collect();
        let mut y = vec![0.0; N * 8];
        let mut tape = LayerNormTape::default();
        l.record_batch(&x, &mut y, &mut tape, 8);
        let buffers =
            |t: &LayerNormTape<f32>| [&t.x_hat, &t.inv_std].map(|b| (b.as_ptr(), b.capacity()));
        let warm = buffers(&tape);
        for n in [3, 8, 1] {
            l.record_batch(&x[..N * n], &mut y[..N * n], &mut tape, n);
            assert_eq!(buffers(&tape), warm);
        }
    }
}
