//! Stochastic gradient descent with momentum (`torch.optim.SGD`).

use super::slots::Slots;
use super::{non_negative, require, OptimError, Optimizer, OptimizerState};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
/// (coupled) weight decay: `torch.optim.SGD` with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, momentum $\mu$, dampening $\tau$, weight decay $\lambda$, for
/// every step $t = 1, 2, \dots$ and every parameter $\theta$ with gradient $g_t$:
///
/// ```text
/// g ← -g                                  if maximize
/// g ← g + λ·θ                             if λ ≠ 0
/// if μ ≠ 0:
///     b ← g                               the first time the tensor is seen (no dampening)
///     b ← μ·b + (1 − τ)·g                 afterwards
///     g ← g + μ·b   if nesterov   else   g ← b
/// θ ← θ − γ·g
/// ```
///
/// Defaults (PyTorch): `lr = 1e-3`, `momentum = 0`, `dampening = 0`, `weight_decay = 0`,
/// `nesterov = false`, `maximize = false`. Nesterov requires `momentum > 0` and
/// `dampening = 0` ([`Optimizer::validate`]).
///
/// State: `momentum_buffer` per tensor when `momentum != 0`.
///
/// ```
/// use nn_runtime::optim::{Optimizer, Sgd};
/// let sgd = Sgd::new(0.1).momentum(0.9).nesterov(true);
/// assert!(Optimizer::<f32>::validate(&sgd).is_ok());
/// ```
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{Optimizer, Sgd};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
/// let run = |mut sgd: Sgd<f64>| {
///     let mut w = [1.0];
///     for g in [0.5, 0.1] {
///         sgd.begin_step();
///         sgd.update(&W, &mut w, &[g]);
///     }
///     w[0]
/// };
/// // Momentum 0.9: b = 0.5, θ = 1 - 0.1·0.5 = 0.95; b = 0.9·0.5 + 0.1 = 0.55, θ = 0.95 - 0.055.
/// assert!((run(Sgd::new(0.1).momentum(0.9)) - 0.895).abs() < 1e-12);
/// // Nesterov: steps g + μb = 0.5 + 0.45 = 0.95, then 0.1 + 0.9·0.55 = 0.595.
/// assert!((run(Sgd::new(0.1).momentum(0.9).nesterov(true)) - (1.0 - 0.095 - 0.0595)).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
    step: u64,
    slots: Slots<T>,
}

const NAME: &str = "SGD";
const WITH_MOMENTUM: &[&str] = &["momentum_buffer"];

impl<T: Float> Sgd<T> {
    /// SGD with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
            step: 0,
            slots: Slots::new(),
        }
    }

    /// Momentum factor $\mu$ (default 0: plain SGD).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening $\tau$ of the momentum: $b ← μ b + (1 − τ) g$ (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Coupled weight decay $\lambda$: $g ← g + λθ$ (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Nesterov momentum: the step uses $g + μ b$ instead of $b$ (default false).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            WITH_MOMENTUM
        } else {
            &[]
        }
    }
}

impl<T: Float> Default for Sgd<T> {
    /// PyTorch's default, `lr = 1e-3`.
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
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

    fn linear_step(&self) -> Option<f64> {
        let plain = self.momentum == 0.0 && self.weight_decay == 0.0;
        plain.then_some(if self.maximize { self.lr } else { -self.lr })
    }

    fn update(&mut self, tensor: &TensorInfo, param: &mut [T], grad: &[T]) {
        let neg_lr = T::of(-self.lr);
        let sign = if self.maximize { -T::one() } else { T::one() };
        let decay = self.weight_decay != 0.0;
        let wd = T::of(self.weight_decay);
        if self.momentum == 0.0 {
            for (p, &g) in param.iter_mut().zip(grad) {
                let mut g = g * sign;
                if decay {
                    g += wd * *p;
                }
                *p += neg_lr * g;
            }
            return;
        }
        let mu = T::of(self.momentum);
        let keep = T::of(1.0 - self.dampening);
        let nesterov = self.nesterov;
        let names = self.buffers();
        let (bufs, fresh) = self.slots.get(tensor, param.len(), names, &[0.0]);
        let [buf] = bufs else { return };
        for ((p, &g), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
            let mut g = g * sign;
            if decay {
                g += wd * *p;
            }
            *b = if fresh { g } else { *b * mu + keep * g };
            let d = if nesterov { g + mu * *b } else { *b };
            *p += neg_lr * d;
        }
    }

    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            name: NAME.to_owned(),
            step: self.step,
            lr: self.lr,
            buffers: self.slots.export(self.buffers()),
        }
    }

    fn settings(&self) -> String {
        format!(
            "SGD(momentum={}, dampening={}, weight_decay={}, nesterov={}, maximize={})",
            self.momentum, self.dampening, self.weight_decay, self.nesterov, self.maximize
        )
    }

    fn state_into(&self, out: &mut OptimizerState<T>) {
        let header = (NAME, self.step, self.lr);
        self.slots.state_into(header, self.buffers(), out);
    }

    fn state_is_finite(&self) -> bool {
        self.slots.all_finite()
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), OptimError> {
        let names = self.buffers();
        self.slots.import(NAME, names, &[], state)?;
        self.step = state.step;
        self.lr = state.lr;
        Ok(())
    }

    fn validate(&self) -> Result<(), OptimError> {
        require(
            NAME,
            "lr",
            self.lr,
            non_negative(self.lr),
            "finite and >= 0",
        )?;
        require(
            NAME,
            "momentum",
            self.momentum,
            non_negative(self.momentum),
            "finite and >= 0",
        )?;
        require(
            NAME,
            "dampening",
            self.dampening,
            self.dampening.is_finite(),
            "finite",
        )?;
        require(
            NAME,
            "weight_decay",
            self.weight_decay,
            non_negative(self.weight_decay),
            "finite and >= 0",
        )?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::Combination {
                optimizer: NAME,
                message: "Nesterov momentum requires a momentum and zero dampening",
            });
        }
        Ok(())
    }
}
