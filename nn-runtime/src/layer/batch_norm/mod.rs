//! Batch normalization, PyTorch's `BatchNorm1d`; the formulas are on [`BatchNorm`], the
//! [`Layer`](super::Layer) trait in `chain.rs`.

mod chain;

use crate::network::ensure_len;
use crate::scalar::Float;
use nalgebra::SVector;

/// Batch normalization of `N` features over the samples of a batch, PyTorch's
/// `BatchNorm1d(N)`: `y = γ x̂ + β` with `x̂` the input standardized by the batch's statistics
/// in training and by the running statistics in evaluation.
///
/// For feature `i` of the `n` samples `j` of a batch (column-major, `x_ij = x[j*N + i]`):
///
/// ```text
/// μ_i = (1/n) Σ_j x_ij        σ²_i = (1/n) Σ_j (x_ij − μ_i)²   (biased)
/// s_i = 1/√(σ²_i + ε)         x̂_ij = (x_ij − μ_i) s_i          y_ij = γ_i x̂_ij + β_i
/// ```
///
/// Each training batch moves the running statistics by `momentum`, with its unbiased
/// variance, as PyTorch ([`BatchNorm::try_update_statistics`]).
///
/// The layer implements [`Layer<T, N, N>`](super::Layer) (in `batch_norm/chain.rs`), with
/// its own input-gradient buffer (not in place). Its [`Tensors`](super::Tensors) are, in
/// order, `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`, then `running_mean`,
/// `running_var` and `num_batches_tracked` (`k = 2, 3, 4`, or `0, 1, 2` without `affine`);
/// those of its [`NormGradients`] are `weight` and `bias` with the same `k` (none without
/// `affine`).
///
/// # Backward in training
/// With `g = ∂L/∂x̂ = γ ⊙ dy`, `∂μ_i/∂x_ij = 1/n`, `∂σ²_i/∂x_ij = 2(x_ij − μ_i)/n` (as
/// `Σ_k (x_ik − μ_i) = 0`) and `∂s_i/∂σ²_i = −s_i³/2`:
///
/// ```text
/// ∂x̂_ik/∂x_ij = s_i (δ_kj − 1/n) − s_i³ (x_ik − μ_i)(x_ij − μ_i)/n
///             = (s_i/n) (n δ_kj − 1 − x̂_ik x̂_ij)
/// dx_ij = Σ_k g_ik ∂x̂_ik/∂x_ij = (s_i/n) (n g_ij − Σ_k g_ik − x̂_ij Σ_k g_ik x̂_ik)
///       = (γ_i s_i/n) (n dy_ij − dβ_i − x̂_ij dγ_i),
/// dβ_i = Σ_j dy_ij,   dγ_i = Σ_j dy_ij x̂_ij.
/// ```
///
/// In evaluation the statistics are constants, so `dx = γ s_run ⊙ dy`.
///
/// # Batches of fewer than two samples
/// PyTorch refuses to train on one sample ("Expected more than 1 value per channel when
/// training"): its unbiased variance `σ²·n/(n−1)` divides by zero. Here
/// [`BatchNorm::check_batch`] gives that answer as a [`BatchTooSmall`] before a step, and
/// [`BatchNorm::try_update_statistics`] returns it and leaves the running statistics
/// untouched, so they never become NaN or infinite. The pass itself does not fail: for
/// `n = 1` it computes the formulas' finite values (`x̂ = 0`, `y = β`, `dx = 0`, `dβ = dy`,
/// `dγ = 0`), and `n = 0` is an empty batch (no output, zero gradients).
///
/// [`Layer::update_statistics`](super::Layer::update_statistics), which cannot return an
/// error, leaves the statistics untouched too for `n < 2`, silently: a trainer of a network
/// with batch normalization should refuse (or merge) training batches of one sample, as
/// PyTorch does, rather than rely on it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm<T, const N: usize> {
    /// The scale `γ` (ones by default); ignored (`γ = 1`) when `affine` is false.
    pub weight: SVector<T, N>,
    /// The shift `β` (zeros by default); ignored (`β = 0`) when `affine` is false.
    pub bias: SVector<T, N>,
    /// The running mean `μ_run` used in evaluation (zeros by default).
    pub running_mean: SVector<T, N>,
    /// The running (unbiased) variance `σ²_run` used in evaluation (ones by default).
    pub running_var: SVector<T, N>,
    /// How many training batches have moved the running statistics (`0` by default), a `T`
    /// so that it is saved with the other tensors (exact in `f32` up to 2²⁴).
    pub num_batches_tracked: T,
    /// The weight `m` of a batch in `running ← (1 − m) running + m batch` (`0.1`).
    pub momentum: f64,
    /// The `ε` added to the variance (`1e-5`).
    pub eps: f64,
    /// Whether `γ` and `β` are learned (`true`). When false they are fixed at `γ = 1`,
    /// `β = 0` whatever `weight` and `bias` hold, and their gradients are zero.
    pub affine: bool,
}

impl<T: Float, const N: usize> Default for BatchNorm<T, N> {
    /// PyTorch's defaults: `γ = 1`, `β = 0`, `μ_run = 0`, `σ²_run = 1`, `momentum = 0.1`,
    /// `eps = 1e-5`, affine.
    fn default() -> Self {
        Self {
            weight: SVector::repeat(T::one()),
            bias: SVector::zeros(),
            running_mean: SVector::zeros(),
            running_var: SVector::repeat(T::one()),
            num_batches_tracked: T::zero(),
            momentum: 0.1,
            eps: 1e-5,
            affine: true,
        }
    }
}

/// What [`BatchNorm::record_batch`] (and [`Layer::record`](super::Layer::record)) keeps for the backward pass and the statistics update. Its
/// buffers grow to the largest batch recorded and are reused: once warmed up, recording
/// allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct BatchNormTape<T> {
    /// `x̂`, `N x n` column-major.
    x_hat: Vec<T>,
    /// `s_i = 1/√(σ²_i + ε)` of the statistics used, `N` values.
    inv_std: Vec<T>,
    /// The mean used: `μ_B` in training, `μ_run` in evaluation.
    mean: Vec<T>,
    /// The variance used: the biased `σ²_B` in training, `σ²_run` in evaluation.
    var: Vec<T>,
    /// The batch size recorded.
    samples: usize,
    /// Whether the batch's statistics were used.
    training: bool,
}

/// The gradients of a normalization layer's parameters ([`BatchNorm`],
/// [`LayerNorm`](super::LayerNorm)): `dγ` and `dβ`, one per feature.
///
/// As [`Tensors`](super::Tensors), `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`,
/// nothing otherwise (the layer has no trainable tensor; both stay zero).
#[derive(Clone, Debug, PartialEq)]
pub struct NormGradients<T, const N: usize> {
    /// `dL/dγ`.
    pub weight: SVector<T, N>,
    /// `dL/dβ`.
    pub bias: SVector<T, N>,
    /// Whether the layer's `γ` and `β` are learned, so that these are tensors to visit.
    pub affine: bool,
}

impl<T: Float, const N: usize> NormGradients<T, N> {
    /// Zero gradients, of a layer whose `γ` and `β` are learned if `affine`.
    pub fn zeros(affine: bool) -> Self {
        Self {
            weight: SVector::zeros(),
            bias: SVector::zeros(),
            affine,
        }
    }
}

impl<T: Float, const N: usize> Default for NormGradients<T, N> {
    /// `zeros(true)`.
    fn default() -> Self {
        Self::zeros(true)
    }
}

/// A training batch too small for batch normalization: its unbiased variance needs at least
/// two samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "batch normalization needs more than 1 sample per feature in training, but the batch has \
     {samples}"
)]
pub struct BatchTooSmall {
    /// The batch size given.
    pub samples: usize,
}

impl<T: Float, const N: usize> BatchNorm<T, N> {
    /// `Ok` if a batch of `n` samples can train the layer (`n ≥ 2`), else [`BatchTooSmall`]
    /// (PyTorch's error). A trainer checks it before a step, and may drop or merge a last
    /// batch of one sample.
    pub const fn check_batch(n: usize) -> Result<(), BatchTooSmall> {
        if n < 2 {
            Err(BatchTooSmall { samples: n })
        } else {
            Ok(())
        }
    }

    /// The forward pass of a batch of `n` samples recorded for [`BatchNorm::backward`]
    /// (`x` and `y` are `N x n`); [`Layer::record`](super::Layer::record) with `training`
    /// the pass's mode.
    ///
    /// With `training`, the batch's statistics: `μ_B = (1/n) Σ_j x_j`,
    /// `σ²_B = (1/n) Σ_j (x_j − μ_B)²` (biased), `x̂ = (x − μ_B)/√(σ²_B + ε)`, `y = γ x̂ + β`;
    /// the tape keeps `x̂`, `1/√(σ²_B + ε)`, `μ_B` and `σ²_B` for the backward pass and
    /// [`BatchNorm::try_update_statistics`]. Without, the running statistics, as
    /// [`Layer::forward`](super::Layer::forward) (the same values), keeping what the backward pass needs.
    /// See [`BatchNorm`] for batches of fewer than two samples.
    pub fn record_batch(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut BatchNormTape<T>,
        n: usize,
        training: bool,
    ) {
        let (x, y) = (&x[..N * n], &mut y[..N * n]);
        for buf in [&mut tape.inv_std, &mut tape.mean, &mut tape.var] {
            ensure_len(buf, N);
        }
        ensure_len(&mut tape.x_hat, N * n);
        tape.samples = n;
        tape.training = training;
        let (mean, var) = (&mut tape.mean[..N], &mut tape.var[..N]);
        if training {
            batch_moments(x, mean, var);
        } else {
            mean.copy_from_slice(self.running_mean.as_slice());
            var.copy_from_slice(self.running_var.as_slice());
        }
        let eps = T::of(self.eps);
        let s = &mut tape.inv_std[..N];
        for (s, &v) in s.iter_mut().zip(var.iter()) {
            *s = inv_std(v, eps);
        }
        let x_hat = &mut tape.x_hat[..N * n];
        for ((x, h), y) in x
            .chunks_exact(N)
            .zip(x_hat.chunks_exact_mut(N))
            .zip(y.chunks_exact_mut(N))
        {
            standardize(x, mean, s, h);
            y.copy_from_slice(h);
            self.scale_shift(y);
        }
    }

    /// Moves the running statistics towards those of the batch of `n` samples recorded in
    /// training on `tape`:
    /// `μ_run ← (1 − m) μ_run + m μ_B`, `σ²_run ← (1 − m) σ²_run + m σ²_B · n/(n − 1)`
    /// (unbiased), `num_batches_tracked += 1`.
    ///
    /// Does nothing (and returns `Ok`) if the tape was recorded in evaluation. Returns
    /// [`BatchTooSmall`] and changes nothing if `n < 2`. Each call applies one update.
    /// [`Layer::update_statistics`](super::Layer::update_statistics) is this, the error
    /// dropped.
    ///
    /// # Panics
    /// If a training tape recorded another batch size than `n`.
    pub fn try_update_statistics(
        &mut self,
        tape: &BatchNormTape<T>,
        n: usize,
    ) -> Result<(), BatchTooSmall> {
        if !tape.training {
            return Ok(());
        }
        tape.check(n);
        Self::check_batch(n)?;
        let take = T::of(self.momentum);
        let keep = T::of(1.0 - self.momentum);
        let bessel = T::of(n as f64) / T::of((n - 1) as f64);
        for (r, &m) in self.running_mean.iter_mut().zip(&tape.mean[..N]) {
            *r = take * m + keep * *r;
        }
        for (r, &v) in self.running_var.iter_mut().zip(&tape.var[..N]) {
            *r = take * (v * bessel) + keep * *r;
        }
        self.num_batches_tracked += T::one();
        Ok(())
    }

    /// Backward through the pass recorded on `tape` for a batch of `n`, given `dy = dL/dy`
    /// (`N x n`). In training: `dβ = Σ_j dy_j`, `dγ = Σ_j dy_j ⊙ x̂_j` and
    /// `dx = (γ s/n) ⊙ (n dy − dβ − x̂ ⊙ dγ)` (derived on [`BatchNorm`]); in
    /// evaluation: `dx = γ s_run ⊙ dy`, the same `dγ` (of `x̂` by the running statistics)
    /// and `dβ`.
    ///
    /// `grads`, if given, is overwritten (zeros when not `affine`); `dx`, if given, receives
    /// `dL/dx`. For `dx` in the buffer of `dy` use [`BatchNorm::backward_in_place`].
    ///
    /// # Panics
    /// If the tape recorded another batch size than `n`.
    pub fn backward(
        &self,
        tape: &BatchNormTape<T>,
        dy: &[T],
        dx: Option<&mut [T]>,
        grads: Option<&mut NormGradients<T, N>>,
        n: usize,
    ) {
        let dy = &dy[..N * n];
        tape.check(n);
        let sums =
            (grads.is_some() || tape.training && dx.is_some()).then(|| self.sums(tape, dy, n));
        if let Some(g) = grads {
            self.write_gradients(sums.as_ref(), g);
        }
        if let Some(dx) = dx {
            let dx = &mut dx[..N * n];
            dx.copy_from_slice(dy);
            self.input_gradient_in_place(tape, sums.as_ref(), dx, n);
        }
    }

    /// [`BatchNorm::backward`] with `dL/dx` written over `dy` (the gradient passed down the
    /// chain in the same buffer).
    ///
    /// # Panics
    /// If the tape recorded another batch size than `n`.
    pub fn backward_in_place(
        &self,
        tape: &BatchNormTape<T>,
        dy: &mut [T],
        grads: Option<&mut NormGradients<T, N>>,
        n: usize,
    ) {
        let d = &mut dy[..N * n];
        tape.check(n);
        let sums = (grads.is_some() || tape.training).then(|| self.sums(tape, d, n));
        if let Some(g) = grads {
            self.write_gradients(sums.as_ref(), g);
        }
        self.input_gradient_in_place(tape, sums.as_ref(), d, n);
    }

    /// The sums `(dγ, dβ)` = `(Σ_j dy_j ⊙ x̂_j, Σ_j dy_j)` of the batch of `n` recorded on
    /// `tape` (column by column into `N` sums, on the stack), whether or not the layer is
    /// `affine`: `dx` in training needs them.
    fn sums(&self, tape: &BatchNormTape<T>, dy: &[T], n: usize) -> (SVector<T, N>, SVector<T, N>) {
        let (mut dg, mut db) = (SVector::<T, N>::zeros(), SVector::<T, N>::zeros());
        let (g, b) = (dg.as_mut_slice(), db.as_mut_slice());
        for (dy, h) in dy[..N * n]
            .chunks_exact(N)
            .zip(tape.x_hat[..N * n].chunks_exact(N))
        {
            for (((g, b), &d), &h) in g.iter_mut().zip(b.iter_mut()).zip(dy).zip(h) {
                *b += d;
                *g += d * h;
            }
        }
        (dg, db)
    }

    /// `grads ← (dγ, dβ)` from [`Self::sums`], zeros when not `affine` (`sums` is given
    /// when `affine`).
    fn write_gradients(
        &self,
        sums: Option<&(SVector<T, N>, SVector<T, N>)>,
        grads: &mut NormGradients<T, N>,
    ) {
        match sums {
            Some((dg, db)) if self.affine => {
                grads.weight = *dg;
                grads.bias = *db;
            }
            _ => {
                grads.weight.fill(T::zero());
                grads.bias.fill(T::zero());
            }
        }
    }

    /// `d ← dx` from `d = dy` and the parameter sums of [`Self::sums`] (needed in
    /// training only): `dx = (γ s/n) (n dy − dβ − x̂ dγ)` in training, `dx = γ s dy` in
    /// evaluation.
    fn input_gradient_in_place(
        &self,
        tape: &BatchNormTape<T>,
        sums: Option<&(SVector<T, N>, SVector<T, N>)>,
        d: &mut [T],
        n: usize,
    ) {
        let s = &tape.inv_std[..N];
        let mut coef = SVector::<T, N>::zeros();
        let per = if tape.training {
            T::of(n.max(1) as f64)
        } else {
            T::one()
        };
        for (i, (c, &s)) in coef.iter_mut().zip(s).enumerate() {
            *c = self.gamma(i) * s / per;
        }
        let coef = coef.as_slice();
        if !tape.training {
            for col in d.chunks_exact_mut(N) {
                for (d, &c) in col.iter_mut().zip(coef) {
                    *d *= c;
                }
            }
            return;
        }
        let (dg, db) = sums.expect("the parameter sums of a training batch");
        let (dg, db) = (dg.as_slice(), db.as_slice());
        for (col, h) in d
            .chunks_exact_mut(N)
            .zip(tape.x_hat[..N * n].chunks_exact(N))
        {
            for ((((d, &h), &c), &dg), &db) in col.iter_mut().zip(h).zip(coef).zip(dg).zip(db) {
                *d = c * (per * *d - db - h * dg);
            }
        }
    }

    /// `γ_i`, or `1` when not `affine`.
    #[inline]
    fn gamma(&self, i: usize) -> T {
        if self.affine {
            self.weight[i]
        } else {
            T::one()
        }
    }

    /// `1/√(σ²_run + ε)` per feature.
    fn running_inv_std(&self) -> SVector<T, N> {
        let eps = T::of(self.eps);
        self.running_var.map(|v| inv_std(v, eps))
    }

    /// `y ← γ ⊙ y + β` on one column (nothing when not `affine`).
    #[inline]
    fn scale_shift(&self, y: &mut [T]) {
        if self.affine {
            scale_shift(y, self.weight.as_slice(), self.bias.as_slice());
        }
    }
}

impl<T> BatchNormTape<T> {
    /// Asserts the tape recorded a batch of `n`.
    fn check(&self, n: usize) {
        assert_eq!(
            self.samples, n,
            "the batch-norm tape recorded {} samples, not {n}",
            self.samples
        );
    }
}

/// `1/√(v + ε)`.
#[inline]
pub(crate) fn inv_std<T: Float>(v: T, eps: T) -> T {
    T::one() / (v + eps).sqrt()
}

/// `out = (x − mean) ⊙ s` on one column.
#[inline]
fn standardize<T: Float>(x: &[T], mean: &[T], s: &[T], out: &mut [T]) {
    for (((o, &x), &m), &s) in out.iter_mut().zip(x).zip(mean).zip(s) {
        *o = (x - m) * s;
    }
}

/// `y ← γ ⊙ y + β` on one column.
#[inline]
pub(crate) fn scale_shift<T: Float>(y: &mut [T], gamma: &[T], beta: &[T]) {
    for ((y, &g), &b) in y.iter_mut().zip(gamma).zip(beta) {
        *y = g * *y + b;
    }
}

/// The batch's per-feature mean and biased variance, by two passes over the columns of `x`
/// (`mean.len()` rows), each accumulating into the `N` sums. An empty batch gives zeros.
fn batch_moments<T: Float>(x: &[T], mean: &mut [T], var: &mut [T]) {
    let rows = mean.len();
    let count = T::of((x.len() / rows.max(1)).max(1) as f64);
    mean.fill(T::zero());
    for col in x.chunks_exact(rows) {
        for (m, &v) in mean.iter_mut().zip(col) {
            *m += v;
        }
    }
    for m in mean.iter_mut() {
        *m /= count;
    }
    var.fill(T::zero());
    for col in x.chunks_exact(rows) {
        for ((s, &m), &v) in var.iter_mut().zip(mean.iter()).zip(col) {
            let d = v - m;
            *s += d * d;
        }
    }
    for s in var.iter_mut() {
        *s /= count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// `len` values uniform in `[lo, hi)`, each representable in `f32` (so that `f32` and
    /// `f64` layers see the same numbers).
    fn uniform(rng: &mut StdRng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..len)
            .map(|_| rng.random_range(lo..hi) as f32 as f64)
            .collect()
    }

    /// A layer with random `γ`, `β` and running statistics.
    fn random_layer<const N: usize>(rng: &mut StdRng, affine: bool) -> BatchNorm<f64, N> {
        let v = |rng: &mut StdRng, lo, hi| SVector::from_column_slice(&uniform(rng, N, lo, hi));
        BatchNorm {
            weight: v(rng, 0.5, 2.0),
            bias: v(rng, -1.0, 1.0),
            running_mean: v(rng, -1.0, 1.0),
            running_var: v(rng, 0.2, 3.0),
            affine,
            ..BatchNorm::default()
        }
    }

    fn cast<T: Float, const N: usize>(l: &BatchNorm<f64, N>) -> BatchNorm<T, N> {
        BatchNorm {
            weight: l.weight.map(T::of),
            bias: l.bias.map(T::of),
            running_mean: l.running_mean.map(T::of),
            running_var: l.running_var.map(T::of),
            num_batches_tracked: T::of(l.num_batches_tracked),
            momentum: l.momentum,
            eps: l.eps,
            affine: l.affine,
        }
    }

    fn of<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&v| T::of(v)).collect()
    }

    /// `L = Σ c ⊙ y` of a recorded pass, in `f64`.
    fn loss<const N: usize>(l: &BatchNorm<f64, N>, x: &[f64], c: &[f64], training: bool) -> f64 {
        let n = x.len() / N;
        let mut y = vec![0.0; x.len()];
        l.record_batch(x, &mut y, &mut BatchNormTape::default(), n, training);
        y.iter().zip(c).map(|(y, c)| y * c).sum()
    }

    /// `|a − f| ≤ tol · max(1, |f|)`.
    fn assert_close(a: f64, f: f64, tol: f64, what: &str) {
        assert!(
            (a - f).abs() <= tol * f.abs().max(1.0),
            "{what}: analytic {a}, reference {f}"
        );
    }

    /// The gradients by `backward` in `T` against central finite differences (`h = 1e-6`)
    /// of `L = Σ c ⊙ y` in `f64`, with respect to `x`, `γ` and `β`.
    fn check_gradients<T: Float>(training: bool, affine: bool, tol: f64) {
        const N: usize = 3;
        let n = 5;
        let mut rng = StdRng::seed_from_u64(11 + training as u64 + 2 * affine as u64);
        let l64 = random_layer::<N>(&mut rng, affine);
        let x = uniform(&mut rng, N * n, -2.0, 3.0);
        let c = uniform(&mut rng, N * n, -1.0, 1.0);

        let l = cast::<T, N>(&l64);
        let mut tape = BatchNormTape::default();
        let mut y = vec![T::zero(); N * n];
        l.record_batch(&of(&x), &mut y, &mut tape, n, training);
        let mut dx = vec![T::nan(); N * n];
        let mut g = NormGradients {
            weight: SVector::repeat(T::nan()),
            bias: SVector::repeat(T::nan()),
            affine: true,
        };
        l.backward(&tape, &of(&c), Some(&mut dx), Some(&mut g), n);

        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        let mode = if training { "training" } else { "eval" };
        for k in 0..N * n {
            let f = fd(&|d| {
                let mut x = x.clone();
                x[k] += d;
                loss(&l64, &x, &c, training)
            });
            assert_close(dx[k].to_f64(), f, tol, &format!("{mode} dx[{k}]"));
        }
        for i in 0..N {
            let f = fd(&|d| {
                let mut l = l64.clone();
                l.weight[i] += d;
                loss(&l, &x, &c, training)
            });
            assert_close(g.weight[i].to_f64(), f, tol, &format!("{mode} dγ[{i}]"));
            let f = fd(&|d| {
                let mut l = l64.clone();
                l.bias[i] += d;
                loss(&l, &x, &c, training)
            });
            assert_close(g.bias[i].to_f64(), f, tol, &format!("{mode} dβ[{i}]"));
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for training in [true, false] {
            for affine in [true, false] {
                check_gradients::<f64>(training, affine, 1e-7);
                check_gradients::<f32>(training, affine, 1e-4);
            }
        }
    }

    #[test]
    fn two_samples_by_hand() {
        // Features (1, 3) and (10, 14): μ = (2, 12), σ² = (1, 4); with ε = 0, x̂ = ∓1 exactly.
        let mut l = BatchNorm::<f64, 2> {
            weight: SVector::from([2.0, 0.5]),
            bias: SVector::from([1.0, -1.0]),
            eps: 0.0,
            ..BatchNorm::default()
        };
        let x = [1.0, 10.0, 3.0, 14.0];
        let mut tape = BatchNormTape::default();
        let mut y = [0.0; 4];
        l.record_batch(&x, &mut y, &mut tape, 2, true);
        assert_eq!(y, [-1.0, -1.5, 3.0, -0.5]);
        assert_eq!(tape.mean, [2.0, 12.0]);
        assert_eq!(tape.var, [1.0, 4.0]);
        assert_eq!(tape.inv_std, [1.0, 0.5]);

        // Two samples always standardize to ∓1, so y does not depend on x: dx = 0.
        let mut dx = [f64::NAN; 4];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &[1.0, 0.0, 0.0, 0.0], Some(&mut dx), Some(&mut g), 2);
        assert_eq!(dx, [0.0; 4]);
        assert_eq!(g.bias, SVector::from([1.0, 0.0]));
        assert_eq!(g.weight, SVector::from([-1.0, 0.0]));

        // Unbiased variances 2 and 8; momentum 0.1.
        assert_eq!(l.try_update_statistics(&tape, 2), Ok(()));
        let close = |a: SVector<f64, 2>, b: [f64; 2]| (a - SVector::from(b)).norm() < 1e-15;
        assert!(close(l.running_mean, [0.2, 1.2]), "{}", l.running_mean);
        assert!(close(l.running_var, [1.1, 1.7]), "{}", l.running_var);
        assert_eq!(l.num_batches_tracked, 1.0);

        // Evaluation with running statistics equal to this batch's: the same y, and
        // dx = γ dy/√σ²_run.
        l.running_mean = SVector::from([2.0, 12.0]);
        l.running_var = SVector::from([1.0, 4.0]);
        l.record_batch(&x, &mut y, &mut tape, 2, false);
        assert_eq!(y, [-1.0, -1.5, 3.0, -0.5]);
        l.backward(&tape, &[1.0; 4], Some(&mut dx), Some(&mut g), 2);
        assert_eq!(dx, [2.0, 0.25, 2.0, 0.25]);
        assert_eq!(g.bias, SVector::from([2.0, 2.0]));
        assert_eq!(g.weight, SVector::from([0.0, 0.0]));
    }

    #[test]
    fn three_samples_by_hand() {
        // One feature (−1, 0, 1): μ = 0, σ² = 2/3, s = √1.5, x̂ = (−√1.5, 0, √1.5).
        // With γ = 2 and dy = (1, 0, 0): dβ = 1, dγ = −√1.5 and
        // dx = (2s/3)(3 dy − 1 + √1.5 x̂) = 2√1.5 (1/6, −1/3, 1/6).
        let l = BatchNorm::<f64, 1> {
            weight: SVector::from([2.0]),
            bias: SVector::from([0.5]),
            eps: 0.0,
            ..BatchNorm::default()
        };
        let r = 1.5f64.sqrt();
        let mut tape = BatchNormTape::default();
        let mut y = [0.0; 3];
        l.record_batch(&[-1.0, 0.0, 1.0], &mut y, &mut tape, 3, true);
        for (y, want) in y.iter().zip([0.5 - 2.0 * r, 0.5, 0.5 + 2.0 * r]) {
            assert!((y - want).abs() < 1e-15, "{y} vs {want}");
        }
        let mut dx = [0.0; 3];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &[1.0, 0.0, 0.0], Some(&mut dx), Some(&mut g), 3);
        for (d, want) in dx.iter().zip([r / 3.0, -2.0 * r / 3.0, r / 3.0]) {
            assert!((d - want).abs() < 1e-15, "{d} vs {want}");
        }
        assert_eq!(g.bias[0], 1.0);
        assert!((g.weight[0] + r).abs() < 1e-15);
    }

    fn running_statistics_follow_a_reference<T: Float>(tol: f64) {
        const N: usize = 4;
        let momentum = 0.3;
        let mut rng = StdRng::seed_from_u64(21);
        let mut l = BatchNorm::<T, N> {
            momentum,
            ..BatchNorm::default()
        };
        let (mut mean, mut var) = ([0.0f64; N], [1.0f64; N]);
        let mut tape = BatchNormTape::default();
        for n in [4, 7, 2, 5] {
            let x = uniform(&mut rng, N * n, -3.0, 5.0);
            let mut y = vec![T::zero(); N * n];
            l.record_batch(&of(&x), &mut y, &mut tape, n, true);
            assert_eq!(l.try_update_statistics(&tape, n), Ok(()));
            // An evaluation pass between batches does not move the statistics.
            l.record_batch(&of(&x), &mut y, &mut tape, n, false);
            assert_eq!(l.try_update_statistics(&tape, n), Ok(()));
            for i in 0..N {
                let v: Vec<f64> = (0..n).map(|j| x[j * N + i]).collect();
                let mu = v.iter().sum::<f64>() / n as f64;
                let unbiased = v.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (n - 1) as f64;
                mean[i] = (1.0 - momentum) * mean[i] + momentum * mu;
                var[i] = (1.0 - momentum) * var[i] + momentum * unbiased;
            }
        }
        for i in 0..N {
            assert_close(l.running_mean[i].to_f64(), mean[i], tol, "running mean");
            assert_close(l.running_var[i].to_f64(), var[i], tol, "running var");
        }
        assert_eq!(l.num_batches_tracked, T::of(4.0));
    }

    #[test]
    fn running_statistics_use_momentum_and_the_unbiased_variance() {
        running_statistics_follow_a_reference::<f64>(1e-13);
        running_statistics_follow_a_reference::<f32>(1e-5);
    }

    fn inference_paths_agree<T: Float>() {
        const N: usize = 5;
        let n = 6;
        let mut rng = StdRng::seed_from_u64(31);
        let l = cast::<T, N>(&random_layer::<N>(&mut rng, true));
        let x: Vec<T> = of(&uniform(&mut rng, N * n, -2.0, 2.0));
        let mut y = vec![T::zero(); N * n];
        l.forward(&x, &mut y, n);
        let mut recorded = vec![T::zero(); N * n];
        l.record_batch(&x, &mut recorded, &mut BatchNormTape::default(), n, false);
        assert_eq!(y, recorded);
        for j in 0..n {
            let col = SVector::<T, N>::from_column_slice(&x[j * N..(j + 1) * N]);
            assert_eq!(l.predict(&col).as_slice(), &y[j * N..(j + 1) * N]);
        }
        // One column: predict is forward with n = 1.
        let mut one = [T::zero(); N];
        l.forward(&x[..N], &mut one, 1);
        assert_eq!(one, &y[..N]);
    }

    #[test]
    fn predict_forward_and_eval_record_agree() {
        inference_paths_agree::<f64>();
        inference_paths_agree::<f32>();
    }

    #[test]
    fn in_place_backward_equals_backward_and_overwrites_gradients() {
        const N: usize = 4;
        let n = 7;
        let mut rng = StdRng::seed_from_u64(41);
        let l = random_layer::<N>(&mut rng, true);
        let x = uniform(&mut rng, N * n, -2.0, 2.0);
        let dy = uniform(&mut rng, N * n, -1.0, 1.0);
        for training in [true, false] {
            let mut tape = BatchNormTape::default();
            l.record_batch(&x, &mut vec![0.0; N * n], &mut tape, n, training);
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
            // The input gradient alone, and the parameter gradients alone.
            let mut d = dy.clone();
            l.backward_in_place(&tape, &mut d, None, n);
            assert_eq!(d, dx);
            let mut g3 = NormGradients::zeros(true);
            l.backward(&tape, &dy, None, Some(&mut g3), n);
            assert_eq!(g3, g);
        }
    }

    #[test]
    fn without_affine_gamma_is_one_and_beta_zero() {
        const N: usize = 3;
        let n = 4;
        let mut rng = StdRng::seed_from_u64(51);
        let mut plain = random_layer::<N>(&mut rng, true);
        plain.weight = SVector::repeat(1.0);
        plain.bias = SVector::zeros();
        let fixed = BatchNorm {
            affine: false,
            weight: SVector::repeat(5.0),
            bias: SVector::repeat(-7.0),
            ..plain.clone()
        };
        let x = uniform(&mut rng, N * n, -2.0, 2.0);
        let dy = uniform(&mut rng, N * n, -1.0, 1.0);
        for training in [true, false] {
            let (mut t1, mut t2) = (BatchNormTape::default(), BatchNormTape::default());
            let (mut y1, mut y2) = (vec![0.0; N * n], vec![0.0; N * n]);
            plain.record_batch(&x, &mut y1, &mut t1, n, training);
            fixed.record_batch(&x, &mut y2, &mut t2, n, training);
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
            fixed.backward(&t2, &dy, None, Some(&mut g), n);
            assert_eq!(g, NormGradients::zeros(true));
        }
        let col = SVector::<f64, N>::from_column_slice(&x[..N]);
        assert_eq!(plain.predict(&col), fixed.predict(&col));
    }

    #[test]
    fn batches_of_fewer_than_two_samples_leave_the_statistics_alone() {
        type Bn = BatchNorm<f64, 3>;
        assert_eq!(Bn::check_batch(0), Err(BatchTooSmall { samples: 0 }));
        assert_eq!(Bn::check_batch(1), Err(BatchTooSmall { samples: 1 }));
        assert_eq!(Bn::check_batch(2), Ok(()));
        assert!(BatchTooSmall { samples: 1 }
            .to_string()
            .contains("more than 1 sample"));

        let mut rng = StdRng::seed_from_u64(61);
        let mut l = random_layer::<3>(&mut rng, true);
        let before = l.clone();
        let mut tape = BatchNormTape::default();

        // One sample: x̂ = 0, so y = β, dx = 0, dβ = dy, dγ = 0, all finite.
        let mut y = [f64::NAN; 3];
        l.record_batch(&[0.3, -2.0, 9.0], &mut y, &mut tape, 1, true);
        assert_eq!(y, before.bias.as_slice());
        assert_eq!(
            l.try_update_statistics(&tape, 1),
            Err(BatchTooSmall { samples: 1 })
        );
        assert_eq!(l, before);
        let dy = [0.5, -1.0, 2.0];
        let mut dx = [f64::NAN; 3];
        let mut g = NormGradients::zeros(true);
        l.backward(&tape, &dy, Some(&mut dx), Some(&mut g), 1);
        assert_eq!(dx, [0.0; 3]);
        assert_eq!(g.bias.as_slice(), dy);
        assert_eq!(g.weight, SVector::<f64, 3>::zeros());

        // No sample: nothing to write, zero gradients.
        l.record_batch(&[], &mut [], &mut tape, 0, true);
        assert_eq!(
            l.try_update_statistics(&tape, 0),
            Err(BatchTooSmall { samples: 0 })
        );
        assert_eq!(l, before);
        l.backward(&tape, &[], Some(&mut []), Some(&mut g), 0);
        assert_eq!(g, NormGradients::zeros(true));
        assert!(tape.mean.iter().chain(&tape.var).all(|v| v.is_finite()));
    }

    #[test]
    fn the_tape_allocates_nothing_once_warmed_up() {
        const N: usize = 4;
        let l = BatchNorm::<f32, N>::default();
        let x = vec![0.5f32; N * 8];
        let mut y = vec![0.0; N * 8];
        let mut tape = BatchNormTape::default();
        l.record_batch(&x, &mut y, &mut tape, 8, true);
        let buffers = |t: &BatchNormTape<f32>| {
            [&t.x_hat, &t.inv_std, &t.mean, &t.var].map(|b| (b.as_ptr(), b.capacity()))
        };
        let warm = buffers(&tape);
        for (n, training) in [(3, true), (8, false), (1, true), (8, true)] {
            l.record_batch(&x[..N * n], &mut y[..N * n], &mut tape, n, training);
            assert_eq!(buffers(&tape), warm);
        }
    }
}
