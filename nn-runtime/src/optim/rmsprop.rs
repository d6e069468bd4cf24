//! RMSprop (`torch.optim.RMSprop`).

use super::slots::Slots;
use super::{non_negative, require, OptimError, Optimizer, OptimizerState};
use crate::network::TensorInfo;
use crate::scalar::Float;

/// RMSprop: gradients divided by a running root-mean-square, optionally centered and with
/// momentum, `torch.optim.RMSprop` with `foreach=False`.
///
/// # Algorithm
///
/// With learning rate $\gamma$, smoothing $\alpha$, $\epsilon$, weight decay $\lambda$,
/// momentum $\mu$, for every step $t = 1, 2, \dots$:
///
/// ```text
/// g ← -g                                  if maximize
/// g ← g + λ·θ                             if λ ≠ 0
/// v ← α·v + (1 − α)·g²                    (v starts at 0)
/// if centered:
///     ḡ ← ḡ + (1 − α)·(g − ḡ)             (lerp; ḡ starts at 0)
///     d ← √(v − ḡ²) + ε
/// else:
///     d ← √v + ε
/// if μ > 0:
///     b ← μ·b + g / d                     (b starts at 0)
///     θ ← θ − γ·b
/// else:
///     θ ← θ − γ·g / d
/// ```
///
/// Defaults (PyTorch): `lr = 1e-2`, `alpha = 0.99`, `eps = 1e-8`, `weight_decay = 0`,
/// `momentum = 0`, `centered = false`, `maximize = false`.
///
/// State: `square_avg` ($v$), plus `momentum_buffer` ($b$) when `momentum > 0` and
/// `grad_avg` ($\bar g$) when centered, per tensor.
///
/// Two steps on one weight $\theta_0 = 1$ with gradients $0.5$ then $0.1$, checked against
/// the rule by hand (PyTorch gives the same values):
///
/// ```
/// use nn_runtime::optim::{Optimizer, RmsProp};
/// use nn_runtime::TensorInfo;
/// const W: TensorInfo =
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
/// let mut opt = RmsProp::<f64>::new(0.01); // alpha 0.99, eps 1e-8
/// let mut w = [1.0];
/// for g in [0.5, 0.1] {
///     opt.begin_step();
///     opt.update(&W, &mut w, &[g]);
/// }
/// // v = 0.01·0.25 = 0.0025, θ -= 0.01·0.5/(√0.0025 + ε);
/// // v = 0.99·0.0025 + 0.01·0.01 = 0.002575, θ -= 0.01·0.1/(√0.002575 + ε).
/// let expected = 1.0 - 0.01 * 0.5 / (0.05 + 1e-8) - 0.01 * 0.1 / (0.002575f64.sqrt() + 1e-8);
/// assert!((w[0] - expected).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp<T> {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
    step: u64,
    slots: Slots<T>,
}

const NAME: &str = "RMSprop";

impl<T: Float> RmsProp<T> {
    /// RMSprop with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
            step: 0,
            slots: Slots::new(),
        }
    }

    /// Smoothing constant $\alpha$ of the squared-gradient average (default 0.99).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// $\epsilon$ added to the root mean square (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Coupled weight decay $\lambda$: $g ← g + λθ$ (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Momentum $\mu$ of the normalized step (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Centered RMSprop: normalize by the estimated variance $v − \bar g^2$ (default false).
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Maximize the objective instead of minimizing it: $g ← −g$ (default false).
    pub fn maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }

    fn buffers(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }
}

impl<T: Float> Default for RmsProp<T> {
    /// PyTorch's default, `lr = 1e-2`.
    fn default() -> Self {
        Self::new(1e-2)
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
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
        let neg_lr = T::of(-self.lr);
        let alpha = T::of(self.alpha);
        let one_m_alpha = T::of(1.0 - self.alpha);
        let eps = T::of(self.eps);
        let mu = T::of(self.momentum);
        let sign = if self.maximize { -T::one() } else { T::one() };
        let decay = self.weight_decay != 0.0;
        let wd = T::of(self.weight_decay);
        let names = self.buffers();
        let (bufs, _) = self.slots.get(tensor, param.len(), names, &[]);
        let effective = |p: &T, g: T| {
            let mut g = g * sign;
            if decay {
                g += wd * *p;
            }
            g
        };
        match bufs {
            [v] => {
                for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                    let g = effective(p, g);
                    *v = *v * alpha + one_m_alpha * g * g;
                    let d = v.sqrt() + eps;
                    *p += neg_lr * g / d;
                }
            }
            [v, b] if names[1] == "momentum_buffer" => {
                for (((p, &g), v), b) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(v.iter_mut())
                    .zip(b.iter_mut())
                {
                    let g = effective(p, g);
                    *v = *v * alpha + one_m_alpha * g * g;
                    let d = v.sqrt() + eps;
                    *b = *b * mu + g / d;
                    *p += neg_lr * *b;
                }
            }
            [v, ga] => {
                for (((p, &g), v), ga) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(v.iter_mut())
                    .zip(ga.iter_mut())
                {
                    let g = effective(p, g);
                    *v = *v * alpha + one_m_alpha * g * g;
                    *ga += one_m_alpha * (g - *ga);
                    let d = (*v - *ga * *ga).sqrt() + eps;
                    *p += neg_lr * g / d;
                }
            }
            [v, b, ga] => {
                for ((((p, &g), v), b), ga) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(v.iter_mut())
                    .zip(b.iter_mut())
                    .zip(ga.iter_mut())
                {
                    let g = effective(p, g);
                    *v = *v * alpha + one_m_alpha * g * g;
                    *ga += one_m_alpha * (g - *ga);
                    let d = (*v - *ga * *ga).sqrt() + eps;
                    *b = *b * mu + g / d;
                    *p += neg_lr * *b;
                }
            }
            _ => {}
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
            "RMSprop(alpha={}, eps={}, weight_decay={}, momentum={}, centered={}, maximize={})",
            self.alpha, self.eps, self.weight_decay, self.momentum, self.centered, self.maximize
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
        self.slots.import(NAME, names, &["square_avg"], state)?;
        self.step = state.step;
        self.lr = state.lr;
        Ok(())
    }

    fn validate(&self) -> Result<(), OptimError> {
        let ge0 = "finite and >= 0";
        require(NAME, "lr", self.lr, non_negative(self.lr), ge0)?;
        require(
            NAME,
            "alpha",
            self.alpha,
            (0.0..=1.0).contains(&self.alpha),
            "in [0, 1]",
        )?;
        require(NAME, "eps", self.eps, non_negative(self.eps), ge0)?;
        require(
            NAME,
            "weight_decay",
            self.weight_decay,
            non_negative(self.weight_decay),
            ge0,
        )?;
        require(
            NAME,
            "momentum",
            self.momentum,
            non_negative(self.momentum),
            ge0,
        )
    }
}
