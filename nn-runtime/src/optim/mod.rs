//! Optimizers with PyTorch's update rules and defaults.

use crate::network::{Network, TensorInfo};
use crate::scalar::Float;

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
