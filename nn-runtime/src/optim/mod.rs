//! Optimizers with PyTorch's update rules and defaults.
//!
//! Every optimizer follows `torch.optim`'s single-tensor (`foreach=False`) algorithm
//! operation by operation, with the same hyperparameter names and defaults:
//!
//! | type | PyTorch | state buffers per tensor |
//! | --- | --- | --- |
//! | [`Sgd`] | `torch.optim.SGD` | `momentum_buffer` (when `momentum != 0`) |
//! | [`Adagrad`] | `torch.optim.Adagrad` | `sum` |
//! | [`RmsProp`] | `torch.optim.RMSprop` | `square_avg`, `momentum_buffer` (momentum > 0), `grad_avg` (centered) |
//! | [`Adam`] | `torch.optim.Adam` | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (amsgrad) |
//! | [`AdaMax`] | `torch.optim.Adamax` | `exp_avg`, `exp_inf` |
//! | [`AdamW`] | `torch.optim.AdamW` | as [`Adam`] |
//!
//! # Construction and validation
//!
//! Optimizers are built with a constructor taking the learning rate and builder methods for
//! the other hyperparameters (`Sgd::new(0.1).momentum(0.9).nesterov(true)`), or
//! `Default` for PyTorch's default learning rate. Builders never panic and never clamp: they
//! store what they are given, and [`Optimizer::validate`] checks every hyperparameter against
//! PyTorch's constraints, returning an [`OptimError`] naming the offending value. The trainer
//! calls `validate` before the first step; [`Optimizer::checked`] validates at construction
//! (`Adam::new(1e-3).betas(0.9, 0.999).checked()?`). An invalid optimizer that is stepped
//! anyway never panics (it may produce non-finite values).
//!
//! # State
//!
//! The step count is global (one [`Optimizer::begin_step`] per step); buffers live per tensor,
//! keyed by [`TensorInfo::index`], allocated the first time a tensor is seen. An update after
//! that allocates nothing and is one pass over contiguous memory. [`Optimizer::state`] names
//! each buffer `<tensor name>.<buffer>` (e.g. `dense0.weight.exp_avg`) with PyTorch's buffer
//! names; [`Optimizer::load_state`] restores it exactly (all or nothing) and rejects a state
//! of another optimizer, unknown or missing buffers, and names or lengths that do not match
//! tensors already seen. Loaded buffers attach to tensors by name on their first update;
//! [`Optimizer::load_state_for`] also checks names and lengths against a network's layout
//! up front.

use crate::network::{Network, TensorInfo};
use crate::scalar::Float;

mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod error;
mod rmsprop;
mod sgd;
mod slots;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::AdaMax;
pub use adamw::AdamW;
pub use error::OptimError;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

/// An optimizer's state, for checkpoints: the step count and named per-tensor buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Optimizer name, e.g. `Adam`.
    pub name: String,
    /// Steps taken.
    pub step: u64,
    /// Current learning rate.
    pub lr: f64,
    /// Buffers, named `<tensor>.<buffer>` (e.g. `dense0.weight.exp_avg`), column-major.
    pub buffers: Vec<(String, Vec<T>)>,
}

/// An optimizer over the parameter tensors of any network.
///
/// State lives per tensor (keyed by [`TensorInfo::index`]), is allocated the first time a
/// tensor is seen, and an update after that allocates nothing.
pub trait Optimizer<T: Float>: Send {
    /// Name, e.g. `Adam`.
    fn name(&self) -> &'static str;
    /// The learning rate in force.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this before each step).
    fn set_learning_rate(&mut self, lr: f64);
    /// Starts a step: called once before the step's [`Optimizer::update`] calls.
    fn begin_step(&mut self);
    /// Updates one tensor in place from its gradient.
    fn update(&mut self, tensor: &TensorInfo, param: &mut [T], grad: &[T]);
    /// The state, for a checkpoint.
    fn state(&self) -> OptimizerState<T>;
    /// Restores a state saved by [`Optimizer::state`].
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), String>;

    /// Checks every hyperparameter (including the learning rate in force) against PyTorch's
    /// constraints. The default accepts everything.
    fn validate(&self) -> Result<(), OptimError> {
        Ok(())
    }

    /// The optimizer itself if [`Optimizer::validate`] accepts it.
    fn checked(self) -> Result<Self, OptimError>
    where
        Self: Sized,
    {
        self.validate()?;
        Ok(self)
    }

    /// [`Optimizer::load_state`] after checking that every buffer belongs to one of `tensors`
    /// (by name: `<tensor name>.<buffer>`) and has that tensor's length, e.g. with a network's
    /// `N::TENSORS`. Nothing changes on error.
    fn load_state_for(
        &mut self,
        state: &OptimizerState<T>,
        tensors: &[TensorInfo],
    ) -> Result<(), String> {
        for (name, values) in &state.buffers {
            let tensor = tensors.iter().find(|t| {
                name.strip_prefix(t.name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|buffer| !buffer.is_empty() && !buffer.contains('.'))
            });
            match tensor {
                None => {
                    return Err(format!(
                        "optimizer state: buffer `{name}` names no tensor of the network"
                    ))
                }
                Some(t) if t.len() != values.len() => {
                    return Err(format!(
                        "optimizer state: buffer `{name}` has {} values, tensor `{}` has {}",
                        values.len(),
                        t.name,
                        t.len()
                    ))
                }
                Some(_) => {}
            }
        }
        self.load_state(state)
    }

    /// One step over a whole network: every parameter from its gradient.
    fn step<N, const IN: usize, const OUT: usize>(&mut self, net: &mut N, grads: &N::Gradients)
    where
        N: Network<IN, OUT, Scalar = T>,
        Self: Sized,
    {
        self.begin_step();
        net.for_each_param_grad(grads, &mut |t, p, g| self.update(t, p, g));
    }
}

/// Checks `value` against a predicate, naming it in the error.
pub(crate) fn require(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    requirement: &'static str,
) -> Result<(), OptimError> {
    if ok {
        Ok(())
    } else {
        Err(OptimError::Hyperparameter {
            optimizer,
            name,
            value,
            requirement,
        })
    }
}

/// `value >= 0` and finite (false for NaN).
pub(crate) fn non_negative(value: f64) -> bool {
    value >= 0.0 && value.is_finite()
}

/// `0 <= value < 1` (false for NaN).
pub(crate) fn unit_interval(value: f64) -> bool {
    (0.0..1.0).contains(&value)
}

/// `base^step` for bias corrections, as Python's `beta ** step` (C `pow`).
#[inline]
pub(crate) fn pow_step(base: f64, step: u64) -> f64 {
    base.powf(step.max(1) as f64)
}
