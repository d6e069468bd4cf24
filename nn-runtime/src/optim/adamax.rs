//! AdaMax (`torch.optim.Adamax`).

use super::adam::max_nan;
use super::slots::Slots;
use super::{
    non_negative, pow_step, require, unit_interval, OptimError, Optimizer, OptimizerState,
};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// AdaMax: Adam with the infinity norm in place of the second moment, `torch.optim.Adamax`
/// with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, $(\beta_1, \beta_2)$, $\epsilon$, weight decay $\lambda$, for
/// every step $t = 1, 2, \dots$:
///
/// ```text
/// g ← -g                                  if maximize
/// g ← g + λ·θ                             if λ ≠ 0
/// m ← m + (1 − β₁)·(g − m)                (= β₁·m + (1 − β₁)·g; m starts at 0)
/// u ← max(β₂·u, |g| + ε)                  (u starts at 0; ε inside the max)
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / u
/// ```
///
/// Defaults (PyTorch): `lr = 2e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
/// `weight_decay = 0`, `maximize = false`.
///
/// State: `exp_avg` ($m$) and `exp_inf` ($u$) per tensor.
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{AdaMax, Optimizer};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
/// let mut opt = AdaMax::<f64>::new(2e-3); // betas (0.9, 0.999), eps 1e-8
/// let mut w = [1.0];
/// for g in [0.5, 0.1] {
///     opt.begin_step();
///     opt.update(&W, &mut w, &[g]);
/// }
/// // t = 1: m = 0.05, u = max(0, 0.5 + ε); θ -= (2e-3 / 0.1)·m/u.
/// let u1 = 0.5 + 1e-8;
/// let step1 = 2e-3 / 0.1 * 0.05 / u1;
/// // t = 2: m = 0.055, u = max(0.999·u₁, 0.1 + ε) = 0.999·u₁; θ -= (2e-3 / 0.19)·m/u.
/// let step2 = 2e-3 / 0.19 * 0.055 / (0.999 * u1);
/// assert!((w[0] - (1.0 - step1 - step2)).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct AdaMax<T> {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    maximize: bool,
    step: u64,
    slots: Slots<T>,
}

const NAME: &str = "Adamax";
const BUFFERS: &[&str] = &["exp_avg", "exp_inf"];

impl<T: Float> AdaMax<T> {
    /// AdaMax with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
            step: 0,
            slots: Slots::new(),
        }
    }

    /// Decay rates $(\beta_1, \beta_2)$ of the moment average and the infinity norm
    /// (default `(0.9, 0.999)`), each in $[0, 1)$.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// $\epsilon$ added to $|g|$ inside the max (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Coupled weight decay $\lambda$: $g ← g + λθ$ (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }
}

impl<T: Float> Default for AdaMax<T> {
    /// PyTorch's default, `lr = 2e-3`.
    fn default() -> Self {
        Self::new(2e-3)
    }
}

impl<T: Float> Optimizer<T> for AdaMax<T> {
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
        let bias_correction = 1.0 - pow_step(self.beta1, self.step);
        let neg_clr = T::of(-(self.lr / bias_correction));
        let w1 = T::of(1.0 - self.beta1);
        let beta2 = T::of(self.beta2);
        let eps = T::of(self.eps);
        let sign = if self.maximize { -T::one() } else { T::one() };
        let decay = self.weight_decay != 0.0;
        let wd = T::of(self.weight_decay);
        let (bufs, _) = self.slots.get(tensor, param.len(), BUFFERS, &[]);
        let [m, u] = bufs else { return };
        for (((p, &g), m), u) in param
            .iter_mut()
            .zip(grad)
            .zip(m.iter_mut())
            .zip(u.iter_mut())
        {
            let mut g = g * sign;
            if decay {
                g += wd * *p;
            }
            *m += w1 * (g - *m);
            *u = max_nan(*u * beta2, g.abs() + eps);
            *p += neg_clr * *m / *u;
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
            "Adamax(betas=({}, {}), eps={}, weight_decay={}, maximize={})",
            self.beta1, self.beta2, self.eps, self.weight_decay, self.maximize
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
        self.slots.import(NAME, BUFFERS, &["exp_inf"], state)?;
        self.step = state.step;
        self.lr = state.lr;
        Ok(())
    }

    fn validate(&self) -> Result<(), OptimError> {
        let ge0 = "finite and >= 0";
        require(NAME, "lr", self.lr, non_negative(self.lr), ge0)?;
        require(NAME, "eps", self.eps, non_negative(self.eps), ge0)?;
        require(
            NAME,
            "betas[0]",
            self.beta1,
            unit_interval(self.beta1),
            "in [0, 1)",
        )?;
        require(
            NAME,
            "betas[1]",
            self.beta2,
            unit_interval(self.beta2),
            "in [0, 1)",
        )?;
        require(
            NAME,
            "weight_decay",
            self.weight_decay,
            non_negative(self.weight_decay),
            ge0,
        )
    }
}
