//! One training step: gather a mini-batch, forward, loss, backward, penalties, clipping and
//! the optimizer's step, with every value the step writes checked for finiteness.

use super::config::Clip;
use super::TrainError;
use crate::data::{Dataset, Labels};
use crate::loss::{loss_on_output, Loss, Targets};
use crate::network::{BatchView, FusedStep, Network, Parameters, Tape};
use crate::optim::Optimizer;
use crate::regularization::Penalty;
use crate::scalar::Float;
use nalgebra::{Const, Dyn};
use rand::Rng;

/// Reusable per-batch buffers: sized once for the batch size, so a step after the first
/// allocates nothing.
pub(crate) struct Workspace<T> {
    pub(crate) inputs: Vec<T>,
    classes: Vec<usize>,
    values: Vec<T>,
    /// The network's output width: with one output, class labels are gathered as the target
    /// values 0 and 1 ([`reads_classes_as_values`]).
    outputs: usize,
}

impl<T: Float> Workspace<T> {
    pub(crate) fn new(inputs: usize, outputs: usize, batch: usize) -> Self {
        Self {
            inputs: vec![T::zero(); inputs * batch],
            classes: Vec::with_capacity(batch),
            values: vec![T::zero(); outputs * batch],
            outputs,
        }
    }

    /// Gathers samples `idx` of `data`: inputs into the input buffer, targets into the class
    /// or value buffer.
    pub(crate) fn gather<const IN: usize>(
        &mut self,
        data: &Dataset<T, IN>,
        idx: &[usize],
    ) -> Result<(), TrainError> {
        data.gather_inputs(idx, &mut self.inputs);
        match data.labels() {
            Labels::Classes { .. } if reads_classes_as_values(self.outputs) => {
                data.gather_classes(idx, &mut self.classes)?;
                if self.values.len() < idx.len() {
                    self.values.resize(idx.len(), T::zero());
                }
                for (v, &c) in self.values.iter_mut().zip(&self.classes) {
                    *v = T::of(c as f64);
                }
            }
            Labels::Classes { .. } => data.gather_classes(idx, &mut self.classes)?,
            Labels::Values { rows, .. } => {
                let need = rows * idx.len();
                if self.values.len() < need {
                    self.values.resize(need, T::zero());
                }
                data.gather_values(idx, &mut self.values)?
            }
        }
        Ok(())
    }

    /// The targets of the `n` samples gathered last.
    pub(crate) fn targets<'b>(&'b self, data_labels: &Labels<T>, n: usize) -> Targets<'b, T> {
        match data_labels {
            Labels::Classes { .. } if reads_classes_as_values(self.outputs) => {
                Targets::Values(&self.values[..n])
            }
            Labels::Classes { .. } => Targets::Classes(&self.classes[..n]),
            Labels::Values { rows, .. } => Targets::Values(&self.values[..rows * n]),
        }
    }

    /// The inputs of the `n` samples gathered last, one column per sample.
    pub(crate) fn view<const IN: usize>(&self, n: usize) -> BatchView<'_, T, IN> {
        BatchView::from_slice_generic(&self.inputs[..IN * n], Const::<IN>, Dyn(n))
    }
}

/// Whether class labels are given to the loss as target values: for a network of one output
/// (a binary classifier), class `c` (0 or 1, checked by
/// [`check_targets`](super::evaluate::check_targets)) is the target value `c`.
pub(crate) fn reads_classes_as_values(outputs: usize) -> bool {
    outputs == 1
}

/// What turned NaN or infinite in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonFinite {
    /// The loss (data loss plus penalties); no parameter changed.
    Loss,
    /// A gradient; no parameter changed.
    Gradient,
    /// A parameter after the optimizer's step (found by the trainer's checks, not by
    /// [`step`]).
    Parameters,
    /// The optimizer's state after its step (found by the trainer's checks).
    OptimizerState,
}

impl NonFinite {
    /// How [`TrainError::NonFinite`] names it.
    pub(crate) fn what(self) -> &'static str {
        match self {
            NonFinite::Loss => "loss",
            NonFinite::Gradient => "gradient",
            NonFinite::Parameters => "weights after the optimizer's step",
            NonFinite::OptimizerState => "optimizer's state after its step",
        }
    }
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum StepOutcome {
    /// The step was taken; the batch's loss (data loss plus penalties).
    Stepped(f64),
    /// The loss or a gradient is not finite; no parameter changed.
    NonFinite(NonFinite),
}

/// What stays the same for every step of a run.
pub(crate) struct StepRules<'r> {
    pub(crate) penalty: &'r Penalty,
    pub(crate) clip: Option<Clip>,
    /// Whether a plain SGD step may be fused into the backward pass (no penalty, no clipping).
    pub(crate) fusable: bool,
}

/// The buffers a step works in, reused from step to step.
pub(crate) struct StepBuffers<'b, N: Network<IN, OUT>, const IN: usize, const OUT: usize> {
    pub(crate) ws: &'b mut Workspace<N::Scalar>,
    pub(crate) tape: &'b mut N::Tape,
    pub(crate) grads: &'b mut N::Gradients,
}

/// One training step on the samples `idx` of `data`.
///
/// The loss and, on the checked path, every gradient are checked before the optimizer
/// steps. With plain SGD and no penalty or clipping the step is fused into the backward pass
/// ([`Network::backward_sgd`]), which steps only when its factors prove every gradient
/// finite. The step itself may still overflow a weight or the optimizer's state: the trainer
/// checks both at the end of the epoch (a non-finite value stays non-finite under every
/// update) and, if one is not finite, finds the step that made it so by replaying the epoch
/// ([`parameters_finite`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step<N, T, L, O, R, const IN: usize, const OUT: usize>(
    net: &mut N,
    loss: &L,
    optimizer: &mut O,
    rules: &StepRules<'_>,
    buf: &mut StepBuffers<'_, N, IN, OUT>,
    data: &Dataset<T, IN>,
    idx: &[usize],
    rng: &mut R,
    (epoch, batch): (usize, usize),
) -> Result<StepOutcome, TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T>,
    O: Optimizer<T>,
    R: Rng + ?Sized,
{
    let n = idx.len();
    buf.ws.gather(data, idx)?;
    let x = buf.ws.view::<IN>(n);
    net.forward_train(x, buf.tape, rng);
    let targets = buf.ws.targets(data.labels(), n);
    let (value, wrt) = loss_on_output(loss, N::OUTPUT_ACTIVATION, buf.tape.output_parts(), targets)
        .map_err(|source| TrainError::Loss {
            epoch,
            batch,
            source,
        })?;
    let scale = optimizer.linear_step().filter(|_| rules.fusable);
    // `Some(..)` when the fused path ran: if it could not step, it wrote the gradients for
    // the checked path. A non-finite loss takes the checked path, which reports it.
    let fused = match scale {
        Some(s) if value.is_finite() => {
            Some(net.backward_sgd(x, buf.tape, wrt, T::of(s), buf.grads))
        }
        _ => None,
    };
    let value = if fused == Some(FusedStep::Stepped) {
        optimizer.begin_step();
        value.to_f64()
    } else {
        if fused.is_none() {
            net.backward(x, buf.tape, wrt, buf.grads);
        }
        let value = value.to_f64() + rules.penalty.apply(&*net, buf.grads);
        if !value.is_finite() {
            return Ok(StepOutcome::NonFinite(NonFinite::Loss));
        }
        let mut finite = true;
        buf.grads
            .for_each_tensor(&mut |_, g| finite &= crate::kernel::all_finite(g));
        if !finite {
            return Ok(StepOutcome::NonFinite(NonFinite::Gradient));
        }
        match rules.clip {
            Some(Clip::Norm(max)) => {
                crate::regularization::clip_grad_norm(buf.grads, max);
            }
            Some(Clip::Value(v)) => crate::regularization::clip_grad_value(buf.grads, v),
            None => {}
        }
        optimizer.step(net, buf.grads);
        value
    };
    Ok(StepOutcome::Stepped(value))
}

/// Whether every parameter is finite.
pub(crate) fn parameters_finite<T: Float, P: Parameters<T>>(params: &P) -> bool {
    let mut finite = true;
    params.for_each_tensor(&mut |_, p| finite &= crate::kernel::all_finite(p));
    finite
}

/// What of the trained state is not finite: the weights, else the optimizer's state.
pub(crate) fn state_not_finite<T: Float, P: Parameters<T>, O: Optimizer<T>>(
    params: &P,
    optimizer: &O,
) -> Option<NonFinite> {
    if !parameters_finite(params) {
        Some(NonFinite::Parameters)
    } else if !optimizer.state_is_finite() {
        Some(NonFinite::OptimizerState)
    } else {
        None
    }
}
