//! Loss functions on batches (one column per sample), each giving its value and gradient.

use crate::network::{GradientOf, OutputActivation, OutputParts};
use crate::scalar::Float;

/// Targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, T> {
    /// One class index per sample.
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
    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError>;

    /// The fused form: from the output layer's logits `z` and its output `a = f(z)`, the loss
    /// of `a` and `grad = dL/dz`. Only called when [`Loss::fuses_with`] is true.
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
            what: "needs target vectors, got class indices".into(),
        }),
    }
}

/// Checks class indices against the batch and the number of classes.
fn classes(
    loss: &'static str,
    labels: &[usize],
    rows: usize,
    batch: usize,
) -> Result<(), LossError> {
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

/// Mean squared error, PyTorch `F.mse_loss(pred, target)` (mean over all `n` elements):
/// `L = (1/n) Σ (o - y)²`, `∂L/∂o = 2 (o - y) / n`.
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

    fn loss_and_grad(
        &self,
        output: &[T],
        _rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
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

/// Huber loss, PyTorch `F.huber_loss(pred, target, delta)` (mean over all `n` elements): with
/// `d = o - y`, `ℓ(d) = d²/2` for `|d| ≤ δ`, else `δ (|d| - δ/2)`; `∂ℓ/∂o = d` for `|d| ≤ δ`,
/// else `δ sign(d)`. Quadratic near zero, linear for outliers.
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
    /// Huber loss with this `delta` (> 0).
    pub fn new(delta: f64) -> Self {
        Self { delta }
    }
}

impl Default for Huber {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl<T: Float> Loss<T> for Huber {
    fn name(&self) -> &'static str {
        "huber"
    }

    fn loss_and_grad(
        &self,
        output: &[T],
        _rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(LossError::Targets {
                loss: "huber",
                what: format!("delta must be positive and finite, got {}", self.delta),
            });
        }
        let y = values("huber", targets, output.len())?;
        let n = T::of(output.len().max(1) as f64);
        let delta = T::of(self.delta);
        let half = T::of(0.5);
        let mut sum = T::zero();
        for ((g, &o), &t) in grad.iter_mut().zip(output).zip(y) {
            let d = o - t;
            if d.abs() <= delta {
                sum += half * d * d;
                *g = d / n;
            } else {
                sum += delta * (d.abs() - half * delta);
                *g = delta * d.signum() / n;
            }
        }
        Ok(sum / n)
    }
}

/// Cross-entropy from logits, PyTorch `F.cross_entropy(logits, target)` (mean over the batch
/// of `B` samples). With class indices, `L = (1/B) Σ_b (lse(z_b) - z_{b,y_b})`; with target
/// distributions `p`, `L = -(1/B) Σ_b Σ_k p_{bk} log_softmax(z_b)_k`. The gradient is
/// `∂L/∂z = (softmax(z) Σ_k p_k - p) / B`, i.e. `(softmax(z) - onehot(y)) / B`.
///
/// On a softmax output it fuses: the loss is computed from the output layer's logits by
/// log-sum-exp (`lse(z) = m + ln Σ e^{z - m}`, `m = max z`), so `log 0` never happens, and the
/// gradient goes straight to the logits. On any other output the output is taken as the logits.
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
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
        softmax: Option<&[T]>,
    ) -> Result<T, LossError> {
        let batch = z.len() / rows.max(1);
        let inv_b = T::one() / T::of(batch.max(1) as f64);
        let mut total = T::zero();
        if let Targets::Classes(labels) = targets {
            classes("cross_entropy", labels, rows, batch)?;
        } else {
            values("cross_entropy", targets, z.len())?;
        }
        for b in 0..batch {
            let zb = &z[b * rows..(b + 1) * rows];
            let lse = crate::activation::log_sum_exp(zb);
            let g = &mut grad[b * rows..(b + 1) * rows];
            match softmax {
                Some(s) => g.copy_from_slice(&s[b * rows..(b + 1) * rows]),
                None => {
                    for (gk, &zk) in g.iter_mut().zip(zb) {
                        *gk = (zk - lse).exp();
                    }
                }
            }
            match targets {
                Targets::Classes(labels) => {
                    let y = labels[b];
                    total += lse - zb[y];
                    for gk in g.iter_mut() {
                        *gk *= inv_b;
                    }
                    g[y] -= inv_b;
                }
                Targets::Values(p) => {
                    let pb = &p[b * rows..(b + 1) * rows];
                    let mass: T = pb.iter().copied().sum();
                    for ((gk, &pk), &zk) in g.iter_mut().zip(pb).zip(zb) {
                        total -= pk * (zk - lse);
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

    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Softmax
    }

    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(output, rows, targets, grad, None)
    }

    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::from_logits(logits, rows, targets, grad, Some(output))
    }
}

/// Binary cross-entropy from logits, PyTorch `F.binary_cross_entropy_with_logits` (mean over
/// all `n` elements): `ℓ = max(z, 0) - z y + ln(1 + e^{-|z|})` (the stable form of
/// `-[y ln σ(z) + (1 - y) ln(1 - σ(z))]`), `∂L/∂z = (σ(z) - y) / n`.
///
/// On a sigmoid output it fuses: computed from the logits, gradient straight to them. On any
/// other output the output is taken as the logits.
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
    fn compute<T: Float>(
        z: &[T],
        sig: Option<&[T]>,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        let y = values("binary_cross_entropy", targets, z.len())?;
        let n = T::of(z.len().max(1) as f64);
        let mut total = T::zero();
        for (k, ((g, &zk), &t)) in grad.iter_mut().zip(z).zip(y).enumerate() {
            total += zk.max(T::zero()) - zk * t + (-zk.abs()).exp().ln_1p();
            let s = match sig {
                Some(s) => s[k],
                None => crate::activation::sigmoid(zk),
            };
            *g = (s - t) / n;
        }
        Ok(total / n)
    }
}

impl<T: Float> Loss<T> for BinaryCrossEntropy {
    fn name(&self) -> &'static str {
        "binary_cross_entropy"
    }

    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Sigmoid
    }

    fn loss_and_grad(
        &self,
        output: &[T],
        _rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::compute(output, None, targets, grad)
    }

    fn fused_loss_and_grad(
        &self,
        logits: &[T],
        output: &[T],
        _rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::compute(logits, Some(output), targets, grad)
    }
}

/// Kullback-Leibler divergence with PyTorch's convention
/// `F.kl_div(input = log q, target = p, reduction = 'batchmean')`:
/// `L = (1/B) Σ_{b,k} p (ln p - ln q)`, terms with `p = 0` contributing 0. The network's output
/// is `ln q`, so `∂L/∂ln q = -p / B`.
///
/// On a softmax output it fuses: `ln q = log_softmax(z)` from the logits, and
/// `∂L/∂z = (softmax(z) Σ_k p_k - p) / B`. Class indices are taken as one-hot `p`.
///
/// ```
/// use nn_runtime::loss::{KlDiv, Loss, Targets};
/// // log q = log p: no divergence, gradient -p / batch.
/// let p = [0.25, 0.75];
/// let log_q = [0.25f64.ln(), 0.75f64.ln()];
/// let mut grad = [0.0; 2];
/// let loss = KlDiv.loss_and_grad(&log_q, 2, Targets::Values(&p), &mut grad).unwrap();
/// assert!(loss.abs() < 1e-15 && grad == [-0.25, -0.75]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KlDiv;

impl KlDiv {
    fn compute<T: Float>(
        log_q: &[T],
        softmax: Option<&[T]>,
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        let batch = log_q.len() / rows.max(1);
        let inv_b = T::one() / T::of(batch.max(1) as f64);
        if let Targets::Classes(labels) = targets {
            classes("kl_div", labels, rows, batch)?;
        } else {
            values("kl_div", targets, log_q.len())?;
        }
        let mut total = T::zero();
        for b in 0..batch {
            let range = b * rows..(b + 1) * rows;
            let lq = &log_q[range.clone()];
            // With logits, ln q = z - lse(z).
            let lse = if softmax.is_some() {
                crate::activation::log_sum_exp(lq)
            } else {
                T::zero()
            };
            let g = &mut grad[range.clone()];
            let p_of = |k: usize| -> T {
                match targets {
                    Targets::Classes(labels) => T::of(f64::from(u8::from(labels[b] == k))),
                    Targets::Values(p) => p[b * rows + k],
                }
            };
            let mass: T = (0..rows).map(p_of).sum();
            for k in 0..rows {
                let p = p_of(k);
                let lqk = lq[k] - lse;
                if p > T::zero() {
                    total += p * (p.ln() - lqk);
                }
                g[k] = match softmax {
                    Some(s) => (s[range.start + k] * mass - p) * inv_b,
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

    fn fuses_with(&self, activation: OutputActivation) -> bool {
        activation == OutputActivation::Softmax
    }

    fn loss_and_grad(
        &self,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
        grad: &mut [T],
    ) -> Result<T, LossError> {
        Self::compute(output, None, rows, targets, grad)
    }

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
