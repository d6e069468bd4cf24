//! Loss functions on batches (one column per sample), each giving its value and gradient.
//!
//! Conventions, shared by every loss here:
//!
//! - `output`, `logits` and `grad` are column-major `rows x B` slices (`rows` values per
//!   sample, `B` samples, `N = rows · B` elements), like the network's `Z = W A + b`.
//! - Every loss is a **mean**, as PyTorch's default `reduction='mean'` (`'batchmean'` for
//!   [`KlDiv`]), so the gradient it writes already carries the `1/N` or `1/B` factor and the
//!   layers' backward passes only sum over the batch. Element-wise losses ([`Mse`], [`Huber`],
//!   [`BinaryCrossEntropy`]) divide by `N`; per-sample distributions ([`CrossEntropy`],
//!   [`KlDiv`]) by `B`. An empty batch has loss 0.
//! - A loss that [fuses](Loss::fuses_with) with the output activation takes its gradient
//!   straight with respect to the output layer's logits (`softmax(z) - y` for cross-entropy on
//!   a softmax output); [`loss_on_output`] chooses the form.
//! - Wrong targets or buffers give a [`LossError`], never a panic, and `loss_and_grad`
//!   allocates nothing on success (the trainer calls it every step).
//!
//! The formulas, their derivations and the numerics are in `docs/losses.md`; every value and
//! gradient is checked against PyTorch by `tests/fixtures_losses.rs`.

use crate::network::{GradientOf, OutputActivation, OutputParts};
use crate::scalar::Float;

/// Targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, T> {
    /// One class index per sample (`B` indices, each below `rows`).
    Classes(&'a [usize]),
    /// One target vector per sample, column-major, `rows x batch` like the output.
    Values(&'a [T]),
}

/// A loss over a batch: `rows` values per sample, column-major.
pub trait Loss<T: Float>: Send + Sync {
    /// Short name for reports (`mse`, `cross_entropy`, ...).
    fn name(&self) -> &'static str;

    /// Whether this loss can take its gradient straight with respect to the logits of an
    /// output layer with this activation (cross-entropy with softmax, BCE with sigmoid, ...).
    fn fuses_with(&self, _activation: OutputActivation) -> bool {
        false
    }

    /// The loss of `output` (`rows x batch`) against `targets`, and `grad = dL/d output`.
    ///
    /// `grad` must have the output's length; on error its contents are unspecified.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError>;

    /// The fused form: from the output layer's logits `z` and its output `a = f(z)`, the loss
    /// of `a` and `grad = dL/dz`. Only called when [`Loss::fuses_with`] is true; the default
    /// is [`LossError::NotFused`].
    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        let _ = (logits, output, rows, targets, grad);
        Err(LossError::NotFused(self.name()))
    }
}

/// Computes the loss on a tape's output and writes its gradient into the tape, fused with the
/// output activation when the loss allows it; returns the value and what the gradient is of.
pub fn loss_on_output<T: Float, L: Loss<T> + ?Sized>(
    loss: &L,
    activation: OutputActivation,
    parts: OutputParts<'_, T>,
    targets: Targets<'_, T>,
) -> Result<(T, GradientOf), LossError> {
    if loss.fuses_with(activation) {
        let v =
            loss.fused_loss_and_grad(parts.logits, parts.output, parts.rows, targets, parts.grad)?;
        Ok((v, GradientOf::Logits))
    } else {
        let v = loss.loss_and_grad(parts.output, parts.rows, targets, parts.grad)?;
        Ok((v, GradientOf::Output))
    }
}

/// Checks the buffers of a batch of `len` values, `rows` per sample, with a gradient buffer of
/// `grad` values, and returns the batch size.
fn batch_of(loss: &'static str, len: usize, rows: usize, grad: usize) -> Result<usize, LossError> {
    if rows == 0 || !len.is_multiple_of(rows) {
        return Err(LossError::Targets {
            loss,
            what: format!("{len} outputs are not whole samples of {rows} values"),
        });
    }
    if grad != len {
        return Err(LossError::Targets {
            loss,
            what: format!("a gradient buffer of {grad} values for {len} outputs"),
        });
    }
    Ok(len / rows)
}

/// Checks that the fused form's output (the activation of the logits) has the logits' length.
fn same_len(loss: &'static str, output: usize, logits: usize) -> Result<(), LossError> {
    if output == logits {
        Ok(())
    } else {
        Err(LossError::Targets {
            loss,
            what: format!("{output} output values for {logits} logits"),
        })
    }
}

/// Checks that value targets have the output's shape.
fn values<'a, T>(
    loss: &'static str,
    targets: Targets<'a, T>,
    len: usize,
) -> Result<&'a [T], LossError> {
    match targets {
        Targets::Values(y) if y.len() == len => Ok(y),
        Targets::Values(y) => Err(LossError::Targets {
            loss,
            what: format!("{} target values for {len} outputs", y.len()),
        }),
        Targets::Classes(_) => Err(LossError::Targets {
            loss,
            what: "needs target vectors, got class indices; one-hot encode them \
                   (`Dataset::one_hot`, `nn_runtime::data::one_hot`) or use a loss that \
                   takes class indices, such as `CrossEntropy`"
                .into(),
        }),
    }
}

/// Checks class indices against the batch and the number of classes, or value targets
/// against the output's length.
fn distribution_targets<T>(
    loss: &'static str,
    targets: Targets<'_, T>,
    rows: usize,
    batch: usize,
) -> Result<(), LossError> {
    let labels = match targets {
        Targets::Classes(labels) => labels,
        Targets::Values(_) => return values(loss, targets, rows * batch).map(|_| ()),
    };
    if labels.len() != batch {
        return Err(LossError::Targets {
            loss,
            what: format!("{} class labels for a batch of {batch}", labels.len()),
        });
    }
    match labels.iter().enumerate().find(|(_, &c)| c >= rows) {
        Some((sample, &class)) => Err(LossError::ClassOutOfRange {
            sample,
            class,
            classes: rows,
        }),
        None => Ok(()),
    }
}

/// `(m, ln Σ_k e^{z_k - m})` with `m = max_k z_k`, the two parts of log-sum-exp kept apart so
/// that `log_softmax(z)_k = (z_k - m) - ln Σ` (PyTorch's order of operations): `z_k - m` is
/// exact for nearby logits and `ln Σ` is of a number in `[1, K]`, so no exponent overflows, no
/// `ln 0` occurs, and large logits (±1000) lose no digits to a rounded `lse`.
#[inline]
fn max_and_log_sum<T: Float>(z: &[T]) -> (T, T) {
    let m = z.iter().copied().fold(T::neg_infinity(), T::max);
    if !m.is_finite() {
        // Empty, all -inf, or +inf/NaN logits: let the IEEE rules propagate.
        return (m, T::zero());
    }
    let sum: T = z.iter().map(|&zk| (zk - m).exp()).sum();
    (m, sum.ln())
}

/// Mean squared error, PyTorch `F.mse_loss(o, y)` (`reduction='mean'`: over all `N` elements).
///
/// `L = (1/N) Σ_i (o_i - y_i)²` and `∂L/∂o_i = 2 (o_i - y_i) / N`. Needs
/// [`Targets::Values`]; fuses with nothing (on a softmax or sigmoid output its gradient goes
/// through the activation's backward).
///
/// ```
/// use nn_runtime::loss::{Loss, Mse, Targets};
/// let mut grad = [0.0; 2];
/// let loss = Mse.loss_and_grad(&[1.0, 2.0], 2, Targets::Values(&[0.0, 2.0]), &mut grad).unwrap();
/// assert_eq!((loss, grad), (0.5, [1.0, 0.0]));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mse;

impl<T: Float> Loss<T> for Mse {
    fn name(&self) -> &'static str {
        "mse"
    }

    /// `L = (1/N) Σ (o - y)²`, `∂L/∂o = 2 (o - y) / N`.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        batch_of("mse", output.len(), rows, grad.len())?;
        let y = values("mse", targets, output.len())?;
        let n = T::of(output.len().max(1) as f64);
        let two_over_n = T::of(2.0) / n;
        let mut sum = T::zero();
        for ((g, &o), &t) in grad.iter_mut().zip(output).zip(y) {
            let d = o - t;
            sum += d * d;
            *g = two_over_n * d;
        }
        Ok(sum / n)
    }
}

/// Huber loss, PyTorch `F.huber_loss(o, y, delta=δ)` (`reduction='mean'`: over all `N`
/// elements). Quadratic near zero, linear for outliers.
///
/// With `d = o - y`: `ℓ(d) = d²/2` for `|d| ≤ δ`, else `δ (|d| - δ/2)`;
/// `L = (1/N) Σ_i ℓ(d_i)` and `∂L/∂o_i = clamp(d_i, -δ, δ) / N` (`d` inside, `δ sign(d)`
/// outside; both branches agree at `|d| = δ`, so PyTorch's `<` and this `≤` give the same
/// numbers). `δ` must be positive and finite, else [`LossError::Targets`].
///
/// ```
/// use nn_runtime::loss::{Huber, Loss, Targets};
/// let mut grad = [0.0; 2];
/// // Residuals 0.5 (quadratic) and 3 (linear): (0.125 + 2.5) / 2.
/// let loss = Huber::new(1.0).loss_and_grad(&[0.5, 3.0], 1, Targets::Values(&[0.0, 0.0]), &mut grad).unwrap();
/// assert_eq!((loss, grad), (1.3125, [0.25, 0.5]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    /// Where the loss turns from quadratic to linear (PyTorch default 1).
    pub delta: f64,
}

impl Huber {
    /// Huber loss with this `delta` (> 0; PyTorch's default is 1, [`Huber::default`]).
    pub fn new(delta: f64) -> Self {
        Self { delta }
    }
}

impl Default for Huber {
    /// `delta = 1`, PyTorch's default.
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl<T: Float> Loss<T> for Huber {
    fn name(&self) -> &'static str {
        "huber"
    }

    /// `L = (1/N) Σ ℓ(o - y)`, `∂L/∂o = clamp(o - y, -δ, δ) / N`.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(LossError::Targets {
                loss: "huber",
                what: format!("delta must be positive and finite, got {}", self.delta),
            });
        }
        batch_of("huber", output.len(), rows, grad.len())?;
        let y = values("huber", targets, output.len())?;
        let n = T::of(output.len().max(1) as f64);
        let inv_n = T::one() / n;
        let delta = T::of(self.delta);
        let half = T::of(0.5);
        let mut sum = T::zero();
        for ((g, &o), &t) in grad.iter_mut().zip(output).zip(y) {
            let d = o - t;
            if d.abs() <= delta {
                sum += half * d * d;
                *g = d * inv_n;
            } else {
                sum += delta * (d.abs() - half * delta);
                *g = delta.copysign(d) * inv_n;
            }
        }
        Ok(sum / n)
    }
}

/// Cross-entropy from logits, PyTorch `F.cross_entropy(z, target)` (`reduction='mean'`: over
/// the `B` samples).
///
/// Per sample `b`, with `log_softmax(z)_k = z_k - lse(z)` and `lse(z) = ln Σ_k e^{z_k}`:
///
/// - class indices ([`Targets::Classes`], `y_b`): `L = (1/B) Σ_b (lse(z_b) - z_{b,y_b})`,
///   `∂L/∂z_b = (softmax(z_b) - onehot(y_b)) / B`;
/// - distributions ([`Targets::Values`], `p_b`, PyTorch's probability targets):
///   `L = -(1/B) Σ_b Σ_k p_{bk} log_softmax(z_b)_k`,
///   `∂L/∂z_b = (softmax(z_b) Σ_k p_{bk} - p_b) / B`, which is `(softmax(z_b) - p_b) / B`
///   when `p_b` sums to 1.
///
/// Numerics: `lse(z) = m + ln Σ_k e^{z_k - m}` with `m = max z`, and the log-probability is
/// formed as `(z_k - m) - ln Σ` (see `max_and_log_sum`), so nothing overflows, `ln 0` never
/// happens, and logits of ±1000 are exact.
///
/// Fusion: on a softmax output the loss reads the output layer's logits and the gradient
/// `(softmax(z) - y)/B` goes straight to them, using the softmax the network computed. On any
/// other output (an identity output in particular) the output itself is taken as the logits
/// and the softmax is computed here, into the gradient buffer.
///
/// ```
/// use nn_runtime::loss::{CrossEntropy, Loss, Targets};
/// // One sample, three equal logits, class 2: the loss is ln 3.
/// let mut grad = [0.0; 3];
/// let loss = CrossEntropy.loss_and_grad(&[0.0, 0.0, 0.0], 3, Targets::Classes(&[2]), &mut grad).unwrap();
/// assert!((loss - 3f64.ln()).abs() < 1e-12);
/// assert!((grad[2] - (1.0 / 3.0 - 1.0)).abs() < 1e-12); // softmax(z) - y
/// // Logits of ±1000 are fine: no overflow, no log 0.
/// let loss = CrossEntropy.loss_and_grad(&[1000.0, -1000.0], 2, Targets::Classes(&[1]), &mut [0.0; 2]).unwrap();
/// assert_eq!(loss, 2000.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropy;

impl CrossEntropy {
    /// Value and `∂L/∂z` from logits `z`; `softmax` is `softmax(z)` when the network already
    /// computed it (else it is computed here, into `grad`).
    fn from_logits<T: Float>(
        z: &[T],
        softmax: Option<&[T]>,
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        const NAME: &str = "cross_entropy";
        let batch = batch_of(NAME, z.len(), rows, grad.len())?;
        if let Some(s) = softmax {
            same_len(NAME, s.len(), z.len())?;
        }
        distribution_targets(NAME, targets, rows, batch)?;
        let inv_b = T::one() / T::of(batch.max(1) as f64);
        let mut total = T::zero();
        for b in 0..batch {
            let col = b * rows..(b + 1) * rows;
            let zb = &z[col.clone()];
            let g = &mut grad[col.clone()];
            let (m, log_sum) = max_and_log_sum(zb);
            match softmax {
                Some(s) => g.copy_from_slice(&s[col.clone()]),
                None => {
                    for (gk, &zk) in g.iter_mut().zip(zb) {
                        *gk = ((zk - m) - log_sum).exp();
                    }
                }
            }
            match targets {
                Targets::Classes(labels) => {
                    let y = labels[b];
                    // lse(z) - z_y = (m - z_y) + ln Σ.
                    total += (m - zb[y]) + log_sum;
                    for gk in g.iter_mut() {
                        *gk *= inv_b;
                    }
                    g[y] -= inv_b;
                }
                Targets::Values(p) => {
                    let pb = &p[col];
                    let mass: T = pb.iter().copied().sum();
                    for ((gk, &pk), &zk) in g.iter_mut().zip(pb).zip(zb) {
                        total -= pk * ((zk - m) - log_sum);
                        *gk = (*gk * mass - pk) * inv_b;
                    }
                }
            }
        }
        Ok(total * inv_b)
    }
}

impl<T: Float> Loss<T> for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    /// Fuses with a softmax output.
    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Softmax
    }

    /// `output` is taken as the logits `z`; `grad = ∂L/∂z`.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(output, None, rows, targets, grad)
    }

    /// From the logits; `output` is `softmax(logits)`; `grad = ∂L/∂z = (softmax(z) - y) / B`.
    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(logits, Some(output), rows, targets, grad)
    }
}

/// Binary cross-entropy from logits, PyTorch `F.binary_cross_entropy_with_logits(z, y)`
/// (`reduction='mean'`: over all `N` elements), for targets `y ∈ [0, 1]`
/// ([`Targets::Values`]; class indices are refused).
///
/// `ℓ = -[y ln σ(z) + (1 - y) ln(1 - σ(z))] = max(z, 0) - z y + ln(1 + e^{-|z|})`,
/// `L = (1/N) Σ_i ℓ_i` and `∂L/∂z_i = (σ(z_i) - y_i) / N`.
///
/// Numerics: the right-hand form never exponentiates a positive number and never takes `ln 0`
/// (`ln_1p` keeps the digits of a tiny `e^{-|z|}`), so logits of ±100 or ±1000 are fine.
///
/// Fusion: on a sigmoid output it reads the logits and the gradient goes straight to them
/// (using the network's `σ(z)`). On any other output the output is taken as the logits.
///
/// ```
/// use nn_runtime::loss::{BinaryCrossEntropy, Loss, Targets};
/// let mut grad = [0.0; 1];
/// let loss = BinaryCrossEntropy.loss_and_grad(&[0.0], 1, Targets::Values(&[1.0]), &mut grad).unwrap();
/// assert!((loss - 2f64.ln()).abs() < 1e-12 && (grad[0] + 0.5).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BinaryCrossEntropy;

impl BinaryCrossEntropy {
    /// Value and `∂L/∂z` from logits `z`; `sig` is `σ(z)` when the network computed it.
    fn from_logits<T: Float>(
        z: &[T],
        sig: Option<&[T]>,
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        const NAME: &str = "binary_cross_entropy";
        batch_of(NAME, z.len(), rows, grad.len())?;
        if let Some(s) = sig {
            same_len(NAME, s.len(), z.len())?;
        }
        let y = values(NAME, targets, z.len())?;
        let inv_n = T::one() / T::of(z.len().max(1) as f64);
        let mut total = T::zero();
        for (k, ((g, &zk), &t)) in grad.iter_mut().zip(z).zip(y).enumerate() {
            total += zk.max(T::zero()) - zk * t + (-zk.abs()).exp().ln_1p();
            let s = match sig {
                Some(s) => s[k],
                None => crate::activation::sigmoid(zk),
            };
            *g = (s - t) * inv_n;
        }
        Ok(total * inv_n)
    }
}

impl<T: Float> Loss<T> for BinaryCrossEntropy {
    fn name(&self) -> &'static str {
        "binary_cross_entropy"
    }

    /// Fuses with a sigmoid output.
    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Sigmoid
    }

    /// `output` is taken as the logits `z`; `grad = ∂L/∂z = (σ(z) - y) / N`.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(output, None, rows, targets, grad)
    }

    /// From the logits; `output` is `σ(logits)`; `grad = ∂L/∂z = (σ(z) - y) / N`.
    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(logits, Some(output), rows, targets, grad)
    }
}

/// Kullback-Leibler divergence with PyTorch's convention
/// `F.kl_div(input = ln q, target = p, reduction = 'batchmean')`: the model gives
/// log-probabilities, the target plain probabilities.
///
/// `L = (1/B) Σ_b Σ_k p_{bk} (ln p_{bk} - ln q_{bk})`, divided by the batch size `B` (not by
/// `N`: PyTorch's plain `'mean'` would divide by `N` and is not the divergence); terms with
/// `p = 0` contribute 0 (the limit of `p ln p`), a negative `p` gives NaN as in PyTorch.
/// Class indices are taken as one-hot `p`.
///
/// - Plain form: the output is `ln q` and `∂L/∂ln q = -p / B`.
/// - Fused with a softmax output: `ln q = log_softmax(z) = (z - m) - ln Σ e^{z - m}` from the
///   logits (stable), and `∂L/∂z = (softmax(z) Σ_k p_k - p) / B`, which is the gradient of
///   soft-target cross-entropy (`Σ p ln p` does not depend on `z`).
///
/// ```
/// use nn_runtime::loss::{KlDiv, Loss, Targets};
/// // ln q = ln p: no divergence, gradient -p / batch.
/// let p = [0.25, 0.75];
/// let log_q = [0.25f64.ln(), 0.75f64.ln()];
/// let mut grad = [0.0; 2];
/// let loss = KlDiv.loss_and_grad(&log_q, 2, Targets::Values(&p), &mut grad).unwrap();
/// assert!(loss.abs() < 1e-15 && grad == [-0.25, -0.75]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KlDiv;

impl KlDiv {
    /// Value and gradient: with `softmax = None`, `input` is `ln q` and the gradient is with
    /// respect to it; with `Some(softmax(z))`, `input` is the logits `z` and the gradient is
    /// with respect to them.
    fn compute<T: Float>(
        input: &[T],
        softmax: Option<&[T]>,
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        const NAME: &str = "kl_div";
        let batch = batch_of(NAME, input.len(), rows, grad.len())?;
        if let Some(s) = softmax {
            same_len(NAME, s.len(), input.len())?;
        }
        distribution_targets(NAME, targets, rows, batch)?;
        let inv_b = T::one() / T::of(batch.max(1) as f64);
        let mut total = T::zero();
        for b in 0..batch {
            let col = b * rows..(b + 1) * rows;
            let x = &input[col.clone()];
            let g = &mut grad[col.clone()];
            // ln q_k = (z_k - m) - ln Σ from logits, or the input itself.
            let (m, log_sum) = match softmax {
                Some(_) => max_and_log_sum(x),
                None => (T::zero(), T::zero()),
            };
            let p_of = |k: usize| -> T {
                match targets {
                    Targets::Classes(labels) if labels[b] == k => T::one(),
                    Targets::Classes(_) => T::zero(),
                    Targets::Values(p) => p[col.start + k],
                }
            };
            let mass: T = (0..rows).map(p_of).sum();
            for (k, (gk, &xk)) in g.iter_mut().zip(x).enumerate() {
                let p = p_of(k);
                if p != T::zero() {
                    let log_q = (xk - m) - log_sum;
                    total += p * (p.ln() - log_q);
                }
                *gk = match softmax {
                    Some(s) => (s[col.start + k] * mass - p) * inv_b,
                    None => -p * inv_b,
                };
            }
        }
        Ok(total * inv_b)
    }
}

impl<T: Float> Loss<T> for KlDiv {
    fn name(&self) -> &'static str {
        "kl_div"
    }

    /// Fuses with a softmax output.
    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Softmax
    }

    /// `output` is taken as `ln q`; `grad = ∂L/∂ln q = -p / B`.
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::compute(output, None, rows, targets, grad)
    }

    /// From the logits (`ln q = log_softmax(z)`); `output` is `softmax(z)`;
    /// `grad = ∂L/∂z = (softmax(z) Σ p - p) / B`.
    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::compute(logits, Some(output), rows, targets, grad)
    }
}

/// Why a loss could not be computed.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum LossError {
    /// A class index is not below the number of outputs.
    #[error("sample {sample}: class {class} is out of range for {classes} outputs")]
    ClassOutOfRange {
        /// Sample position in the batch.
        sample: usize,
        /// The class index given.
        class: usize,
        /// Number of outputs.
        classes: usize,
    },
    /// The targets do not match the output's shape or kind.
    #[error("{loss}: {what}")]
    Targets {
        /// The loss.
        loss: &'static str,
        /// What is wrong.
        what: String,
    },
    /// The fused form was called on a loss that has none.
    #[error("{0} has no fused form")]
    NotFused(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{
        log_softmax_column, log_softmax_vjp_column, sigmoid, softmax_column, Activation, Softmax,
    };

    const ROWS: usize = 3;
    /// Three samples of three logits, one with huge values.
    const Z: [f64; 9] = [0.3, -1.2, 2.0, 0.5, 0.5, -0.25, 4.0, -3.0, 1.5];
    /// Three target distributions (one with a zero).
    const P: [f64; 9] = [0.2, 0.3, 0.5, 0.0, 1.0, 0.0, 0.6, 0.1, 0.3];
    const CLASSES: [usize; 3] = [2, 0, 1];

    fn softmax_all(z: &[f64]) -> Vec<f64> {
        let mut s = vec![0.0; z.len()];
        for (zc, sc) in z.chunks(ROWS).zip(s.chunks_mut(ROWS)) {
            softmax_column(zc, sc);
        }
        s
    }

    fn sigmoid_all(z: &[f64]) -> Vec<f64> {
        z.iter().map(|&v| sigmoid(v)).collect()
    }

    /// Largest |analytic - central difference| / max(1, |central difference|) of `f`, whose
    /// second value is the analytic gradient.
    fn fd_error(x: &[f64], f: impl Fn(&[f64]) -> (f64, Vec<f64>)) -> f64 {
        let (_, grad) = f(x);
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for i in 0..x.len() {
            let (mut p, mut m) = (x.to_vec(), x.to_vec());
            p[i] += h;
            m[i] -= h;
            let numeric = (f(&p).0 - f(&m).0) / (2.0 * h);
            worst = worst.max((grad[i] - numeric).abs() / numeric.abs().max(1.0));
        }
        worst
    }

    fn plain<'a>(
        loss: &'a dyn Loss<f64>,
        targets: Targets<'a, f64>,
    ) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + 'a {
        move |x| {
            let mut g = vec![0.0; x.len()];
            let v = loss.loss_and_grad(x, ROWS, targets, &mut g).unwrap();
            (v, g)
        }
    }

    fn fused<'a>(
        loss: &'a dyn Loss<f64>,
        targets: Targets<'a, f64>,
        act: fn(&[f64]) -> Vec<f64>,
    ) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + 'a {
        move |z| {
            let mut g = vec![0.0; z.len()];
            let v = loss
                .fused_loss_and_grad(z, &act(z), ROWS, targets, &mut g)
                .unwrap();
            (v, g)
        }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn mse_and_huber_by_hand() {
        let (o, y) = ([1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]);
        let mut g = [0.0; 4];
        let v = Mse
            .loss_and_grad(&o, 2, Targets::Values(&y), &mut g)
            .unwrap();
        assert_eq!(v, (1.0 + 4.0 + 0.25 + 9.0) / 4.0);
        assert_eq!(g, [0.5, -1.0, 0.25, 1.5]);
        // δ = 1: 0.5, 1.5, 0.125, 2.5 over 4; gradient clamp(d, -1, 1) / 4.
        let v = Huber::default()
            .loss_and_grad(&o, 2, Targets::Values(&y), &mut g)
            .unwrap();
        assert_eq!(v, (0.5 + 1.5 + 0.125 + 2.5) / 4.0);
        assert_eq!(g, [0.25, -0.25, 0.125, 0.25]);
        assert_eq!(Huber::default(), Huber::new(1.0));
    }

    #[test]
    fn huber_inside_delta_is_half_mse() {
        let o = [0.3, -0.2, 0.1, 0.45];
        let y = [0.0, 0.1, -0.2, 0.0];
        let (mut gm, mut gh) = ([0.0; 4], [0.0; 4]);
        let m = Mse
            .loss_and_grad(&o, 4, Targets::Values(&y), &mut gm)
            .unwrap();
        let h = Huber::new(0.5)
            .loss_and_grad(&o, 4, Targets::Values(&y), &mut gh)
            .unwrap();
        assert!(close(h, m / 2.0, 1e-15), "{h} vs {m}");
        for (a, b) in gh.iter().zip(&gm) {
            assert!(close(*a, b / 2.0, 1e-15));
        }
    }

    #[test]
    fn cross_entropy_and_kl_by_hand() {
        // Equal logits: CE is ln K, gradient (1/K - onehot) / B.
        let z = [0.0; 6];
        let mut g = [0.0; 6];
        let v = CrossEntropy
            .loss_and_grad(&z, ROWS, Targets::Classes(&[0, 2]), &mut g)
            .unwrap();
        assert!(close(v, 3f64.ln(), 1e-15));
        let third = 1.0 / 3.0 / 2.0;
        let want = [third - 0.5, third, third, third, third, third - 0.5];
        assert!(
            g.iter().zip(&want).all(|(a, b)| close(*a, *b, 1e-15)),
            "{g:?}"
        );
        // KL of the uniform q against p = (1/2, 1/2, 0): ln(3/2) per sample.
        let p = [0.5, 0.5, 0.0, 0.5, 0.5, 0.0];
        let v = KlDiv
            .fused_loss_and_grad(&z, &softmax_all(&z), ROWS, Targets::Values(&p), &mut g)
            .unwrap();
        assert!(close(v, 1.5f64.ln(), 1e-15), "{v}");
        // Soft-target CE is KL plus the entropy of p.
        let ce = CrossEntropy
            .loss_and_grad(&z, ROWS, Targets::Values(&p), &mut g)
            .unwrap();
        assert!(close(ce, v + 2f64.ln(), 1e-15));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let y: Vec<f64> = P.iter().map(|p| p * 2.0 - 0.4).collect();
        let bits: Vec<f64> = P
            .iter()
            .map(|p| if *p > 0.25 { 1.0 } else { 0.0 })
            .collect();
        let cases: Vec<(&str, f64)> = vec![
            ("mse", fd_error(&Z, plain(&Mse, Targets::Values(&y)))),
            (
                "huber",
                fd_error(&Z, plain(&Huber::new(0.7), Targets::Values(&y))),
            ),
            (
                "ce classes",
                fd_error(&Z, plain(&CrossEntropy, Targets::Classes(&CLASSES))),
            ),
            (
                "ce values",
                fd_error(&Z, plain(&CrossEntropy, Targets::Values(&P))),
            ),
            (
                "ce fused",
                fd_error(
                    &Z,
                    fused(&CrossEntropy, Targets::Classes(&CLASSES), softmax_all),
                ),
            ),
            (
                "bce",
                fd_error(&Z, plain(&BinaryCrossEntropy, Targets::Values(&bits))),
            ),
            (
                "bce fused",
                fd_error(
                    &Z,
                    fused(&BinaryCrossEntropy, Targets::Values(&P), sigmoid_all),
                ),
            ),
            ("kl", fd_error(&Z, plain(&KlDiv, Targets::Values(&P)))),
            (
                "kl fused",
                fd_error(&Z, fused(&KlDiv, Targets::Values(&P), softmax_all)),
            ),
            (
                "kl fused classes",
                fd_error(&Z, fused(&KlDiv, Targets::Classes(&CLASSES), softmax_all)),
            ),
        ];
        for (name, err) in cases {
            assert!(err < 1e-7, "{name}: {err}");
        }
    }

    #[test]
    fn fused_forms_equal_their_unfused_composition() {
        let s = softmax_all(&Z);
        let (mut gf, mut gp) = ([0.0; 9], [0.0; 9]);
        // Cross-entropy: the fused gradient (from the network's softmax) is the plain one
        // (softmax computed inside the loss).
        for t in [Targets::Classes(&CLASSES), Targets::Values(&P)] {
            let vf = CrossEntropy
                .fused_loss_and_grad(&Z, &s, ROWS, t, &mut gf)
                .unwrap();
            let vp = CrossEntropy.loss_and_grad(&Z, ROWS, t, &mut gp).unwrap();
            assert!(close(vf, vp, 1e-15));
            assert!(gf.iter().zip(&gp).all(|(a, b)| close(*a, *b, 1e-15)));
        }
        // BCE likewise, with σ(z).
        let bits = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let vf = BinaryCrossEntropy
            .fused_loss_and_grad(&Z, &sigmoid_all(&Z), ROWS, Targets::Values(&bits), &mut gf)
            .unwrap();
        let vp = BinaryCrossEntropy
            .loss_and_grad(&Z, ROWS, Targets::Values(&bits), &mut gp)
            .unwrap();
        assert!(close(vf, vp, 1e-15) && gf == gp);
        // KL: plain on ln q = log_softmax(z), then log-softmax's VJP, is the fused form.
        let mut log_q = [0.0; 9];
        for (zc, lc) in Z.chunks(ROWS).zip(log_q.chunks_mut(ROWS)) {
            log_softmax_column(zc, lc);
        }
        let vf = KlDiv
            .fused_loss_and_grad(&Z, &s, ROWS, Targets::Values(&P), &mut gf)
            .unwrap();
        let vp = KlDiv
            .loss_and_grad(&log_q, ROWS, Targets::Values(&P), &mut gp)
            .unwrap();
        for (sc, gc) in s.chunks(ROWS).zip(gp.chunks_mut(ROWS)) {
            log_softmax_vjp_column(sc, gc);
        }
        assert!(close(vf, vp, 1e-14), "{vf} vs {vp}");
        assert!(gf.iter().zip(&gp).all(|(a, b)| close(*a, *b, 1e-15)));
    }

    #[test]
    fn unfused_mse_on_a_softmax_output_is_exact() {
        let y = [0.0, 1.0, 0.0, 0.2, 0.3, 0.5, 1.0, 0.0, 0.0];
        let a = softmax_all(&Z);
        let mut grad = [0.0; 9];
        let parts = OutputParts {
            rows: ROWS,
            batch: 3,
            logits: &Z,
            output: &a,
            grad: &mut grad,
        };
        let (v, wrt) =
            loss_on_output(&Mse, OutputActivation::Softmax, parts, Targets::Values(&y)).unwrap();
        assert_eq!(wrt, GradientOf::Output);
        // What backward does next: softmax's vector-Jacobian product.
        Activation::<f64>::backward(&Softmax, &Z, &a, &mut grad, ROWS);
        let composed = |z: &[f64]| {
            let mut g = vec![0.0; z.len()];
            let v = Mse
                .loss_and_grad(&softmax_all(z), ROWS, Targets::Values(&y), &mut g)
                .unwrap();
            (v, grad.to_vec())
        };
        assert_eq!(composed(&Z).0, v);
        let err = fd_error(&Z, composed);
        assert!(err < 1e-8, "{err}");
    }

    #[test]
    fn loss_on_output_fuses_exactly_the_right_pairs() {
        use OutputActivation::*;
        let losses: [(&dyn Loss<f64>, &[OutputActivation]); 5] = [
            (&Mse, &[]),
            (&Huber::default(), &[]),
            (&CrossEntropy, &[Softmax]),
            (&BinaryCrossEntropy, &[Sigmoid]),
            (&KlDiv, &[Softmax]),
        ];
        let y = [0.0, 1.0, 0.0];
        for (loss, fusing) in losses {
            for act in [Identity, Sigmoid, Softmax, Other("tanh")] {
                let mut grad = [0.0; 3];
                let z = [0.1, 0.2, 0.3];
                let out = softmax_all(&z);
                let parts = OutputParts {
                    rows: 3,
                    batch: 1,
                    logits: &z,
                    output: &out,
                    grad: &mut grad,
                };
                let (_, wrt) = loss_on_output(loss, act, parts, Targets::Values(&y)).unwrap();
                let want = if fusing.contains(&act) {
                    GradientOf::Logits
                } else {
                    GradientOf::Output
                };
                assert_eq!(wrt, want, "{} on {act:?}", loss.name());
                assert_eq!(loss.fuses_with(act), fusing.contains(&act));
            }
        }
        let err = Loss::<f64>::fused_loss_and_grad(
            &Mse,
            &[0.0],
            &[0.0],
            1,
            Targets::Values(&[0.0]),
            &mut [0.0],
        );
        assert_eq!(err, Err(LossError::NotFused("mse")));
    }

    #[test]
    fn huge_logits_stay_finite_and_exact() {
        // Class 1 of (1000, -1000, 0): loss 2000 exactly; gradient (1, -1, 0) / 1.
        let z = [1000.0, -1000.0, 0.0];
        let mut g = [0.0; 3];
        let v = CrossEntropy
            .loss_and_grad(&z, 3, Targets::Classes(&[1]), &mut g)
            .unwrap();
        assert_eq!((v, g), (2000.0, [1.0, -1.0, 0.0]));
        let v32 = CrossEntropy
            .loss_and_grad(
                &[1000.0f32, -1000.0, 0.0],
                3,
                Targets::Classes(&[1]),
                &mut [0.0f32; 3],
            )
            .unwrap();
        assert_eq!(v32, 2000.0);
        // All logits shifted by 1000: the same loss as unshifted.
        let shifted = [1000.3, 998.8, 1002.0];
        let base = [0.3, -1.2, 2.0];
        let a = CrossEntropy
            .loss_and_grad(&shifted, 3, Targets::Classes(&[0]), &mut g)
            .unwrap();
        let b = CrossEntropy
            .loss_and_grad(&base, 3, Targets::Classes(&[0]), &mut g)
            .unwrap();
        assert!(close(a, b, 1e-12), "{a} vs {b}");
        // KL fused and BCE at ±1000.
        let p = [0.0, 1.0, 0.0];
        let v = KlDiv
            .fused_loss_and_grad(&z, &softmax_all(&z), 3, Targets::Values(&p), &mut g)
            .unwrap();
        assert_eq!(v, 2000.0);
        let v = BinaryCrossEntropy
            .loss_and_grad(&z, 3, Targets::Values(&[0.0, 1.0, 1.0]), &mut g)
            .unwrap();
        assert!(close(v, (1000.0 + 1000.0 + 2f64.ln()) / 3.0, 1e-15), "{v}");
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn kl_terms_with_zero_probability_contribute_nothing() {
        // ln q = -inf where p = 0 (PyTorch's limit p ln p -> 0): still finite.
        let log_q = [f64::NEG_INFINITY, 0.5f64.ln(), 0.5f64.ln()];
        let p = [0.0, 0.25, 0.75];
        let mut g = [0.0; 3];
        let v = KlDiv
            .loss_and_grad(&log_q, 3, Targets::Values(&p), &mut g)
            .unwrap();
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert!(close(v, want, 1e-15), "{v} vs {want}");
        assert_eq!(g, [0.0, -0.25, -0.75]);
        // A negative probability is no distribution: NaN, as PyTorch.
        let v = KlDiv
            .loss_and_grad(&[0.0; 3], 3, Targets::Values(&[-0.5, 1.0, 0.5]), &mut g)
            .unwrap();
        assert!(v.is_nan());
    }

    #[test]
    fn f32_agrees_with_f64() {
        let z32: Vec<f32> = Z.iter().map(|&v| v as f32).collect();
        let p32: Vec<f32> = P.iter().map(|&v| v as f32).collect();
        let z64: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
        let p64: Vec<f64> = p32.iter().map(|&v| f64::from(v)).collect();
        let l32: [&dyn Loss<f32>; 5] = [
            &Mse,
            &Huber::default(),
            &CrossEntropy,
            &BinaryCrossEntropy,
            &KlDiv,
        ];
        let l64: [&dyn Loss<f64>; 5] = [
            &Mse,
            &Huber::default(),
            &CrossEntropy,
            &BinaryCrossEntropy,
            &KlDiv,
        ];
        for (a, b) in l32.iter().zip(l64) {
            let (mut g32, mut g64) = ([0.0f32; 9], [0.0f64; 9]);
            let v32 = a
                .loss_and_grad(&z32, ROWS, Targets::Values(&p32), &mut g32)
                .unwrap();
            let v64 = b
                .loss_and_grad(&z64, ROWS, Targets::Values(&p64), &mut g64)
                .unwrap();
            assert!(
                close(f64::from(v32), v64, 1e-6),
                "{}: {v32} vs {v64}",
                b.name()
            );
            for (x, y) in g32.iter().zip(&g64) {
                assert!(
                    (f64::from(*x) - y).abs() <= 1e-6 * y.abs().max(1e-3),
                    "{}",
                    b.name()
                );
            }
        }
    }

    #[test]
    fn bad_targets_and_buffers_are_errors() {
        let z = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let mut g = [0.0; 6];
        for loss in [&CrossEntropy as &dyn Loss<f64>, &KlDiv] {
            let err = loss.loss_and_grad(&z, 3, Targets::Classes(&[0, 3]), &mut g);
            assert_eq!(
                err,
                Err(LossError::ClassOutOfRange {
                    sample: 1,
                    class: 3,
                    classes: 3
                }),
                "{}",
                loss.name()
            );
            let s = softmax_all(&z);
            let err = loss.fused_loss_and_grad(&z, &s, 3, Targets::Classes(&[7, 0]), &mut g);
            assert!(matches!(
                err,
                Err(LossError::ClassOutOfRange {
                    sample: 0,
                    class: 7,
                    ..
                })
            ));
            // One label for two samples.
            let err = loss.loss_and_grad(&z, 3, Targets::Classes(&[0]), &mut g);
            assert!(matches!(err, Err(LossError::Targets { .. })), "{err:?}");
            // The fused output must have the logits' length.
            let err = loss.fused_loss_and_grad(&z, &s[..3], 3, Targets::Classes(&[0, 0]), &mut g);
            assert!(matches!(err, Err(LossError::Targets { .. })), "{err:?}");
        }
        let all: [&dyn Loss<f64>; 5] = [
            &Mse,
            &Huber::default(),
            &CrossEntropy,
            &BinaryCrossEntropy,
            &KlDiv,
        ];
        let y = [0.0; 6];
        for loss in all {
            let name = loss.name();
            let bad = |r: Result<f64, LossError>, what: &str| match r {
                Err(LossError::Targets { loss, what: w }) => {
                    assert_eq!(loss, name);
                    assert!(w.contains(what), "{name}: `{w}` should say `{what}`");
                }
                other => panic!("{name}: expected a target error, got {other:?}"),
            };
            bad(
                loss.loss_and_grad(&z, 3, Targets::Values(&y[..5]), &mut g),
                "5 target values",
            );
            bad(
                loss.loss_and_grad(&z, 4, Targets::Values(&y), &mut g),
                "not whole samples",
            );
            bad(
                loss.loss_and_grad(&z, 0, Targets::Values(&y), &mut g),
                "not whole samples",
            );
            bad(
                loss.loss_and_grad(&z, 3, Targets::Values(&y), &mut g[..5]),
                "gradient buffer",
            );
        }
        for loss in [
            &Mse as &dyn Loss<f64>,
            &Huber::default(),
            &BinaryCrossEntropy,
        ] {
            let err = loss.loss_and_grad(&z, 3, Targets::Classes(&[0, 1]), &mut g);
            assert!(
                matches!(err, Err(LossError::Targets { .. })),
                "{}",
                loss.name()
            );
        }
        for delta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = Huber::new(delta).loss_and_grad(&z, 3, Targets::Values(&y), &mut g);
            assert!(
                matches!(err, Err(LossError::Targets { .. })),
                "delta {delta}"
            );
        }
    }
}
