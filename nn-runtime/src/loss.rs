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
