//! AdamW: Adam with decoupled weight decay (`torch.optim.AdamW`).

use super::{Adam, OptimError, Optimizer, OptimizerState};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// AdamW: [`Adam`] with decoupled weight decay, `torch.optim.AdamW` with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, $(\beta_1, \beta_2)$, $\epsilon$, weight decay $\lambda$, for
/// every step $t = 1, 2, \dots$:
///
/// ```text
/// g ← -g                                  if maximize
/// θ ← θ·(1 − γλ)                          decay first, outside the gradient
/// m ← β₁·m + (1 − β₁)·g
/// v ← β₂·v + (1 − β₂)·g²
/// v̂ ← max(v̂, v)                           if amsgrad (then v̂ replaces v below)
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// Unlike Adam's coupled weight decay (an L2 term $λθ$ added to $g$, which the adaptive
/// denominator then rescales), the decay here shrinks every weight by the same factor
/// $1 − γλ$ regardless of its gradient history.
///
/// Defaults (PyTorch): `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
/// `weight_decay = 1e-2`, `amsgrad = false`, `maximize = false`.
///
/// State: as [`Adam`] (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` with amsgrad).
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{AdamW, Optimizer};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
/// let mut opt = AdamW::<f64>::new(1e-3); // weight decay 1e-2, betas (0.9, 0.999), eps 1e-8
/// let mut w = [1.0];
/// for g in [0.5, 0.1] {
///     opt.begin_step();
///     opt.update(&W, &mut w, &[g]);
/// }
/// // Each step first multiplies θ by 1 - γλ = 1 - 1e-5, then takes Adam's step (see [`Adam`]).
/// let step1 = 1e-3 / 0.1 * 0.05 / ((0.00025f64).sqrt() / (0.001f64).sqrt() + 1e-8);
/// let step2 = 1e-3 / 0.19 * 0.055 / ((0.00025975f64).sqrt() / (0.001999f64).sqrt() + 1e-8);
/// let decay = 1.0 - 1e-3 * 1e-2;
/// let expected = (1.0 * decay - step1) * decay - step2;
/// assert!((w[0] - expected).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct AdamW<T>(Adam<T>);

impl<T: Float> AdamW<T> {
    /// AdamW with learning rate `lr` and PyTorch's defaults (`weight_decay = 0.01`).
    pub fn new(lr: f64) -> Self {
        let mut inner = Adam::new(lr)
            .weight_decay(1e-2)
            .decoupled_weight_decay(true);
        inner.name = "AdamW";
        Self(inner)
    }

    /// Decay rates $(\beta_1, \beta_2)$ (default `(0.9, 0.999)`), each in $[0, 1)$.
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        Self(self.0.betas(beta1, beta2))
    }

    /// $\epsilon$ added to the bias-corrected $\sqrt v$ (default 1e-8).
    pub fn eps(self, eps: f64) -> Self {
        Self(self.0.eps(eps))
    }

    /// Decoupled weight decay $\lambda$: $θ ← θ(1 − γλ)$ each step (default 0.01).
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        Self(self.0.weight_decay(weight_decay))
    }

    /// AMSGrad: normalize by the running maximum of $v$ (default false).
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        Self(self.0.amsgrad(amsgrad))
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(self, maximize: bool) -> Self {
        Self(self.0.maximize(maximize))
    }
}

impl<T: Float> Default for AdamW<T> {
    /// PyTorch's default, `lr = 1e-3`.
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn learning_rate(&self) -> f64 {
        Optimizer::<T>::learning_rate(&self.0)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.0.set_learning_rate(lr);
    }

    fn begin_step(&mut self) {
        self.0.begin_step();
    }

    #[inline]
    fn update(&mut self, tensor: &TensorInfo, param: &mut [T], grad: &[T]) {
        self.0.update(tensor, param, grad);
    }

    fn state(&self) -> OptimizerState<T> {
        self.0.state()
    }

    fn settings(&self) -> String {
        self.0.settings()
    }

    fn state_into(&self, out: &mut OptimizerState<T>) {
        self.0.state_into(out)
    }

    fn state_is_finite(&self) -> bool {
        self.0.state_is_finite()
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), OptimError> {
        self.0.load_state(state)
    }

    fn validate(&self) -> Result<(), OptimError> {
        self.0.validate()
    }
}
