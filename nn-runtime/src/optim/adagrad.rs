//! Adagrad (`torch.optim.Adagrad`).

use super::slots::Slots;
use super::{non_negative, require, OptimError, Optimizer, OptimizerState};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// Adagrad: per-element learning rates scaled by the root of the accumulated squared
/// gradients, `torch.optim.Adagrad` with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, learning-rate decay $\eta$, weight decay $\lambda$, initial
/// accumulator value $s_0$ and $\epsilon$, for every step $t = 1, 2, \dots$:
///
/// ```text
/// g ← -g                                  if maximize
/// g ← g + λ·θ                             if λ ≠ 0
/// γ̃ ← γ / (1 + (t − 1)·η)
/// s ← s + g²                              (s starts at s₀)
/// θ ← θ − γ̃ · g / (√s + ε)
/// ```
///
/// Defaults (PyTorch): `lr = 1e-2`, `lr_decay = 0`, `weight_decay = 0`,
/// `initial_accumulator_value = 0`, `eps = 1e-10`, `maximize = false`.
///
/// State: `sum` ($s$) per tensor.
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{Adagrad, Optimizer};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
/// let mut opt = Adagrad::<f64>::new(0.1);
/// let mut w = [1.0];
/// for g in [0.5, 0.1] {
///     opt.begin_step();
///     opt.update(&W, &mut w, &[g]);
/// }
/// // s = 0.25, θ -= 0.1·0.5/(√0.25 + ε); s = 0.25 + 0.01 = 0.26, θ -= 0.1·0.1/(√0.26 + ε).
/// let expected = 1.0 - 0.1 * 0.5 / (0.5 + 1e-10) - 0.1 * 0.1 / (0.26f64.sqrt() + 1e-10);
/// assert!((w[0] - expected).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T> {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    maximize: bool,
    step: u64,
    slots: Slots<T>,
}

const NAME: &str = "Adagrad";
const BUFFERS: &[&str] = &["sum"];

impl<T: Float> Adagrad<T> {
    /// Adagrad with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
            step: 0,
            slots: Slots::new(),
        }
    }

    /// Learning-rate decay $\eta$: step $t$ uses $γ / (1 + (t − 1) η)$ (default 0).
    pub fn lr_decay(mut self, lr_decay: f64) -> Self {
        self.lr_decay = lr_decay;
        self
    }

    /// Coupled weight decay $\lambda$: $g ← g + λθ$ (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Starting value $s_0$ of the squared-gradient sum (default 0).
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.initial_accumulator_value = value;
        self
    }

    /// $\epsilon$ added to $\sqrt{s}$ (default 1e-10).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }
}

impl<T: Float> Default for Adagrad<T> {
    /// PyTorch's default, `lr = 1e-2`.
    fn default() -> Self {
        Self::new(1e-2)
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn begin_step(&mut self) {
        // Saturating: a step count loaded from a checkpoint may be at the top of the range.
        self.step = self.step.saturating_add(1);
    }

    fn update(&mut self, tensor: &TensorInfo, param: &mut [T], grad: &[T]) {
        let t = self.step.max(1) as f64;
        let clr = self.lr / (1.0 + (t - 1.0) * self.lr_decay);
        let neg_clr = T::of(-clr);
        let eps = T::of(self.eps);
        let sign = if self.maximize { -T::one() } else { T::one() };
        let decay = self.weight_decay != 0.0;
        let wd = T::of(self.weight_decay);
        let (bufs, _) = self.slots.get(
            tensor,
            param.len(),
            BUFFERS,
            &[self.initial_accumulator_value],
        );
        let [sum] = bufs else { return };
        for ((p, &g), s) in param.iter_mut().zip(grad).zip(sum.iter_mut()) {
            let mut g = g * sign;
            if decay {
                g += wd * *p;
            }
            *s += g * g;
            let std = s.sqrt() + eps;
            *p += neg_clr * g / std;
        }
    }

    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            name: NAME.to_owned(),
            step: self.step,
            lr: self.lr,
            buffers: self.slots.export(BUFFERS),
        }
    }

    fn settings(&self) -> String {
        format!(
            "Adagrad(lr_decay={}, weight_decay={}, initial_accumulator_value={}, eps={}, \
             maximize={})",
            self.lr_decay,
            self.weight_decay,
            self.initial_accumulator_value,
            self.eps,
            self.maximize
        )
    }

    fn state_into(&self, out: &mut OptimizerState<T>) {
        let header = (NAME, self.step, self.lr);
        self.slots.state_into(header, BUFFERS, out);
    }

    fn state_is_finite(&self) -> bool {
        self.slots.all_finite()
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), OptimError> {
        self.slots.import(NAME, BUFFERS, &["sum"], state)?;
        self.step = state.step;
        self.lr = state.lr;
        Ok(())
    }

    fn validate(&self) -> Result<(), OptimError> {
        let ge0 = "finite and >= 0";
        require(NAME, "lr", self.lr, non_negative(self.lr), ge0)?;
        require(
            NAME,
            "lr_decay",
            self.lr_decay,
            non_negative(self.lr_decay),
            ge0,
        )?;
        require(
            NAME,
            "weight_decay",
            self.weight_decay,
            non_negative(self.weight_decay),
            ge0,
        )?;
        require(
            NAME,
            "initial_accumulator_value",
            self.initial_accumulator_value,
            non_negative(self.initial_accumulator_value),
            ge0,
        )?;
        require(NAME, "eps", self.eps, non_negative(self.eps), ge0)
    }
}
