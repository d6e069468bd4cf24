//! Adam and its AMSGrad variant (`torch.optim.Adam`).

use super::slots::Slots;
use super::{
    non_negative, pow_step, require, unit_interval, OptimError, Optimizer, OptimizerState,
};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// Adam: bias-corrected moving averages of the gradient and its square, optionally AMSGrad,
/// `torch.optim.Adam` with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, $(\beta_1, \beta_2)$, $\epsilon$, weight decay $\lambda$, for
/// every step $t = 1, 2, \dots$:
///
/// ```text
/// g ← -g                                  if maximize
/// if λ ≠ 0:
///     θ ← θ·(1 − γλ)                      if decoupled_weight_decay (= AdamW)
///     g ← g + λ·θ                         otherwise (coupled, an L2 term in the gradient)
/// m ← m + (1 − β₁)·(g − m)                (= β₁·m + (1 − β₁)·g; m starts at 0)
/// v ← β₂·v + (1 − β₂)·g²                  (v starts at 0)
/// if amsgrad:
///     v̂ ← max(v̂, v)                       (v̂ starts at 0)
///     d ← √v̂ / √(1 − β₂ᵗ) + ε
/// else:
///     d ← √v / √(1 − β₂ᵗ) + ε
/// θ ← θ − (γ / (1 − β₁ᵗ)) · m / d
/// ```
///
/// Note $\epsilon$ is added after bias-correcting $\sqrt v$, as PyTorch does. The step sizes
/// $\gamma / (1 − β_1^t)$ and $\sqrt{1 − β_2^t}$ are computed once per tensor update, not per
/// element.
///
/// Defaults (PyTorch): `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
/// `weight_decay = 0`, `amsgrad = false`, `maximize = false`,
/// `decoupled_weight_decay = false`.
///
/// State: `exp_avg` ($m$), `exp_avg_sq` ($v$), plus `max_exp_avg_sq` ($\hat v$) with
/// amsgrad, per tensor.
///
/// ```
/// use nn_runtime::optim::{Adam, Optimizer};
/// let adam = Adam::new(1e-3).betas(0.9, 0.999).amsgrad(true);
/// assert!(Optimizer::<f64>::validate(&adam).is_ok());
/// ```
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{Adam, Optimizer};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, l1: 0.0, l2: 0.0 };
/// let mut opt = Adam::<f64>::new(1e-3); // betas (0.9, 0.999), eps 1e-8
/// let mut w = [1.0];
/// for g in [0.5, 0.1] {
///     opt.begin_step();
///     opt.update(&W, &mut w, &[g]);
/// }
/// // t = 1: m = 0.05, v = 0.00025; bias-corrected they are 0.5 and 0.25, so the step is
/// // 1e-3 · 0.5 / (0.5 + ε).
/// let step1 = 1e-3 / 0.1 * 0.05 / ((0.00025f64).sqrt() / (0.001f64).sqrt() + 1e-8);
/// // t = 2: m = 0.9·0.05 + 0.1·0.1 = 0.055, v = 0.999·0.00025 + 0.001·0.01 = 0.00025975,
/// // 1 - β₁² = 0.19, 1 - β₂² = 0.001999.
/// let step2 = 1e-3 / 0.19 * 0.055 / ((0.00025975f64).sqrt() / (0.001999f64).sqrt() + 1e-8);
/// assert!((step1 - 1e-3).abs() < 1e-10);
/// assert!((w[0] - (1.0 - step1 - step2)).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T> {
    pub(crate) name: &'static str,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
    step: u64,
    slots: Slots<T>,
}

const PLAIN: &[&str] = &["exp_avg", "exp_avg_sq"];
const AMSGRAD: &[&str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Self {
            name: "Adam",
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled: false,
            step: 0,
            slots: Slots::new(),
        }
    }

    /// Decay rates $(\beta_1, \beta_2)$ of the first and second moment averages
    /// (default `(0.9, 0.999)`), each in $[0, 1)$.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// $\epsilon$ added to the bias-corrected $\sqrt v$ (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay $\lambda$, coupled ($g ← g + λθ$) unless
    /// [`Adam::decoupled_weight_decay`] (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// AMSGrad: normalize by the running maximum of $v$ (default false).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }

    /// Decoupled weight decay $θ ← θ(1 − γλ)$ as in [`super::AdamW`] (PyTorch's
    /// `decoupled_weight_decay`, default false).
    pub fn decoupled_weight_decay(mut self, decoupled: bool) -> Self {
        self.decoupled = decoupled;
        self
    }

    fn buffers(&self) -> &'static [&'static str] {
        if self.amsgrad {
            AMSGRAD
        } else {
            PLAIN
        }
    }
}

impl<T: Float> Default for Adam<T> {
    /// PyTorch's default, `lr = 1e-3`.
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn name(&self) -> &'static str {
        self.name
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
        let bias_correction1 = 1.0 - pow_step(self.beta1, self.step);
        let bias_correction2 = 1.0 - pow_step(self.beta2, self.step);
        let neg_step_size = T::of(-(self.lr / bias_correction1));
        let bc2_sqrt = T::of(bias_correction2.sqrt());
        let w1 = T::of(1.0 - self.beta1);
        let beta2 = T::of(self.beta2);
        let w2 = T::of(1.0 - self.beta2);
        let eps = T::of(self.eps);
        let sign = if self.maximize { -T::one() } else { T::one() };
        let has_decay = self.weight_decay != 0.0;
        let coupled = has_decay && !self.decoupled;
        let decoupled = has_decay && self.decoupled;
        let wd = T::of(self.weight_decay);
        let shrink = T::of(1.0 - self.lr * self.weight_decay);
        let names = self.buffers();
        let (bufs, _) = self.slots.get(tensor, param.len(), names, &[]);
        match bufs {
            [m, v] => {
                let k = AdamConsts {
                    sign,
                    coupled,
                    decoupled,
                    wd,
                    shrink,
                    w1,
                    beta2,
                    w2,
                    bc2_sqrt,
                    eps,
                    neg_step_size,
                };
                adam_update(k, param, grad, m, v);
            }
            [m, v, vmax] => {
                for ((((p, &g), m), v), vmax) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(vmax.iter_mut())
                {
                    let mut g = g * sign;
                    if coupled {
                        g += wd * *p;
                    }
                    if decoupled {
                        *p *= shrink;
                    }
                    *m += w1 * (g - *m);
                    *v = *v * beta2 + w2 * g * g;
                    *vmax = max_nan(*vmax, *v);
                    let d = vmax.sqrt() / bc2_sqrt + eps;
                    *p += neg_step_size * *m / d;
                }
            }
            _ => {}
        }
    }

    fn state(&self) -> OptimizerState<T> {
        OptimizerState {
            name: self.name.to_owned(),
            step: self.step,
            lr: self.lr,
            buffers: self.slots.export(self.buffers()),
        }
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), String> {
        let names = self.buffers();
        self.slots
            .import(self.name, names, state)
            .map_err(|e| e.to_string())?;
        self.step = state.step;
        self.lr = state.lr;
        Ok(())
    }

    fn validate(&self) -> Result<(), OptimError> {
        let name = self.name;
        let ge0 = "finite and >= 0";
        require(name, "lr", self.lr, non_negative(self.lr), ge0)?;
        require(name, "eps", self.eps, non_negative(self.eps), ge0)?;
        require(
            name,
            "betas[0]",
            self.beta1,
            unit_interval(self.beta1),
            "in [0, 1)",
        )?;
        require(
            name,
            "betas[1]",
            self.beta2,
            unit_interval(self.beta2),
            "in [0, 1)",
        )?;
        require(
            name,
            "weight_decay",
            self.weight_decay,
            non_negative(self.weight_decay),
            ge0,
        )
    }
}

/// `max(a, b)` propagating NaN from either side, like `torch.maximum`.
#[inline]
pub(crate) fn max_nan<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || a > b {
        a
    } else {
        b
    }
}

/// The per-step constants of the Adam update.
#[derive(Clone, Copy)]
struct AdamConsts<T> {
    sign: T,
    coupled: bool,
    decoupled: bool,
    wd: T,
    shrink: T,
    w1: T,
    beta2: T,
    w2: T,
    bc2_sqrt: T,
    eps: T,
    neg_step_size: T,
}

/// The Adam update of one tensor, compiled for AVX2 and FMA when the processor has them
/// (detected at run time), else for the baseline instruction set.
fn adam_update<T: Float>(k: AdamConsts<T>, param: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the processor supports the features `adam_avx2` is compiled for.
            unsafe { adam_avx2(k, param, grad, m, v) };
            return;
        }
    }
    adam_loop(k, param, grad, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn adam_avx2<T: Float>(
    k: AdamConsts<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    adam_loop(k, param, grad, m, v);
}

/// `m ← β₁ m + (1-β₁) g`, `v ← β₂ v + (1-β₂) g²`, `p ← p - lr/bc₁ · m / (√v/√bc₂ + ε)`.
#[inline(always)]
fn adam_loop<T: Float>(k: AdamConsts<T>, param: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    for (((p, &g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let mut g = g * k.sign;
        if k.coupled {
            g += k.wd * *p;
        }
        if k.decoupled {
            *p *= k.shrink;
        }
        *m += k.w1 * (g - *m);
        *v = *v * k.beta2 + k.w2 * g * g;
        let d = v.sqrt() / k.bc2_sqrt + k.eps;
        *p += k.neg_step_size * *m / d;
    }
}
