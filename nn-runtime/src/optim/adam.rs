//! Adam and its AMSGrad variant (`torch.optim.Adam`).

use super::slots::Slots;
use super::{
    non_negative, pow_step, require, unit_interval, OptimError, Optimizer, OptimizerState,
};
#[cfg(target_arch = "x86_64")]
use crate::kernel::Isa;
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
///     TensorInfo { index: 0, name: "dense0.weight", rows: 1, cols: 1, is_bias: false, trainable: true, l1: 0.0, l2: 0.0 };
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

    fn settings(&self) -> String {
        format!(
            "{}(betas=({}, {}), eps={}, weight_decay={}, amsgrad={}, maximize={}, \
             decoupled_weight_decay={})",
            self.name,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.amsgrad,
            self.maximize,
            self.decoupled
        )
    }

    fn state_into(&self, out: &mut OptimizerState<T>) {
        let header = (self.name, self.step, self.lr);
        self.slots.state_into(header, self.buffers(), out);
    }

    fn state_is_finite(&self) -> bool {
        self.slots.all_finite()
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<(), OptimError> {
        let names = self.buffers();
        self.slots
            .import(self.name, names, &["exp_avg_sq", "max_exp_avg_sq"], state)?;
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

/// The Adam update of one tensor: one pass over contiguous memory, with the weight-decay
/// choices made once per call (each combination is its own loop, free of per-element
/// branches), compiled for AVX-512F or for AVX2 with FMA when the processor has them
/// (detected at run time, see [`Isa::best`]), else for the baseline instruction set; `f32`
/// tensors skip the cost of frozen subnormal moments ([`adam_loop_f32`]). Every path computes
/// the same IEEE operations in the same order (Rust never contracts `a * b + c` into a fused
/// multiply-add), so the results are bit-identical across processors.
///
/// Large tensors are split over the kernel threads ([`crate::kernel::set_threads`]): each
/// value's update is independent of the others, so the results do not change.
fn adam_update<T: Float>(k: AdamConsts<T>, param: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    #[cfg(feature = "threads")]
    if let Some((threads, per)) = crate::kernel::elementwise_parts(param.len()) {
        let parts = param
            .chunks_mut(per)
            .zip(grad.chunks(per))
            .zip(m.chunks_mut(per))
            .zip(v.chunks_mut(per));
        crate::kernel::run_parts(threads, parts, &|_, (((p, g), m), v)| {
            adam_serial(k, p, g, m, v)
        });
        return;
    }
    adam_serial(k, param, grad, m, v);
}

/// [`adam_update`] on the calling thread.
fn adam_serial<T: Float>(k: AdamConsts<T>, param: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]) {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        let f = |x: T| x.to_f64() as f32;
        let k32 = AdamConsts {
            sign: f(k.sign),
            coupled: k.coupled,
            decoupled: k.decoupled,
            wd: f(k.wd),
            shrink: f(k.shrink),
            w1: f(k.w1),
            beta2: f(k.beta2),
            w2: f(k.w2),
            bc2_sqrt: f(k.bc2_sqrt),
            eps: f(k.eps),
            neg_step_size: f(k.neg_step_size),
        };
        // SAFETY: `T` is `f32` (same `TypeId`), so each cast is to the slice's own type.
        let (param, grad, m, v) = unsafe {
            (
                &mut *(param as *mut [T] as *mut [f32]),
                &*(grad as *const [T] as *const [f32]),
                &mut *(m as *mut [T] as *mut [f32]),
                &mut *(v as *mut [T] as *mut [f32]),
            )
        };
        match (k.coupled, k.decoupled) {
            (false, false) => adam_f32_dispatch::<false, false>(k32, param, grad, m, v),
            (true, false) => adam_f32_dispatch::<true, false>(k32, param, grad, m, v),
            (false, true) => adam_f32_dispatch::<false, true>(k32, param, grad, m, v),
            (true, true) => adam_f32_dispatch::<true, true>(k32, param, grad, m, v),
        }
        return;
    }
    match (k.coupled, k.decoupled) {
        (false, false) => adam_dispatch::<T, false, false>(k, param, grad, m, v),
        (true, false) => adam_dispatch::<T, true, false>(k, param, grad, m, v),
        (false, true) => adam_dispatch::<T, false, true>(k, param, grad, m, v),
        (true, true) => adam_dispatch::<T, true, true>(k, param, grad, m, v),
    }
}

/// Runs [`adam_loop`] compiled for AVX-512F, else for AVX2 and FMA, when the processor has
/// them ([`Isa::best`]). On AMD Zen 4 the 512-bit loop is 1.25-1.6x as fast as the 256-bit
/// one (W1's 101,770 values, one process, interleaved; docs/performance.md); on the Intel Xeon
/// of earlier measurements, where 512-bit square roots and divisions take twice as long as
/// 256-bit ones, it gained nothing.
#[inline(always)]
fn adam_dispatch<T: Float, const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        // SAFETY: the processor supports the features `adam_avx512` is compiled for.
        Isa::Avx512 => {
            return unsafe { adam_avx512::<T, COUPLED, DECOUPLED>(k, param, grad, m, v) }
        }
        // SAFETY: the processor supports the features `adam_avx2` is compiled for.
        Isa::Avx2 => return unsafe { adam_avx2::<T, COUPLED, DECOUPLED>(k, param, grad, m, v) },
        Isa::Portable => {}
    }
    adam_loop::<T, COUPLED, DECOUPLED>(k, param, grad, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn adam_avx512<T: Float, const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    adam_loop::<T, COUPLED, DECOUPLED>(k, param, grad, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn adam_avx2<T: Float, const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    adam_loop::<T, COUPLED, DECOUPLED>(k, param, grad, m, v);
}

/// `m ← β₁ m + (1-β₁) g`, `v ← β₂ v + (1-β₂) g²`, `p ← p - lr/bc₁ · m / (√v/√bc₂ + ε)`, with
/// `g ← g + λp` when `COUPLED` and `p ← p(1 - γλ)` when `DECOUPLED`.
#[inline(always)]
fn adam_loop<T: Float, const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let n = param.len().min(grad.len()).min(m.len()).min(v.len());
    let (param, grad, m, v) = (&mut param[..n], &grad[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mut g = grad[i] * k.sign;
        let mut p = param[i];
        if COUPLED {
            g += k.wd * p;
        }
        if DECOUPLED {
            p *= k.shrink;
        }
        let mi = m[i] + k.w1 * (g - m[i]);
        let vi = v[i] * k.beta2 + k.w2 * g * g;
        let d = vi.sqrt() / k.bc2_sqrt + k.eps;
        m[i] = mi;
        v[i] = vi;
        param[i] = p + k.neg_step_size * mi / d;
    }
}

/// `|x|` of an `f32` as bits.
const ABS: u32 = 0x7fff_ffff;
/// Bits of the smallest normal `f32`, 2⁻¹²⁶.
const MIN_NORMAL: u32 = 0x0080_0000;

/// The largest `M` for which the products `(1-β₁) · M·2⁻¹⁴⁹` and `|lr/bc₁| · M·2⁻¹⁴⁹` both
/// round to zero (`w M ≤ 1/2`, exact in `f64`): a subnormal `m = ±M·2⁻¹⁴⁹` with `M` at most
/// this, meeting `g = 0`, is left unchanged by the update, and so is `p`.
fn stuck_max(k: &AdamConsts<f32>) -> u32 {
    let w = f64::from(k.w1).max(f64::from(k.neg_step_size.abs()));
    if w.is_nan() || w <= 0.0 {
        return 0;
    }
    let mut top = (0.5 / w).floor().min(f64::from(MIN_NORMAL - 1)) as u32;
    while top > 0 && f64::from(top) * w > 0.5 {
        top -= 1;
    }
    top
}

/// [`adam_loop_f32`] compiled for AVX-512F, else for AVX2 and FMA, when the processor has
/// them ([`Isa::best`]).
#[inline(always)]
fn adam_f32_dispatch<const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<f32>,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let stuck = if COUPLED { 0 } else { stuck_max(&k) };
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        // SAFETY: the processor supports the features `adam_f32_avx512` is compiled for.
        Isa::Avx512 => {
            return unsafe { adam_f32_avx512::<COUPLED, DECOUPLED>(k, stuck, param, grad, m, v) }
        }
        // SAFETY: the processor supports the features `adam_f32_avx2` is compiled for.
        Isa::Avx2 => {
            return unsafe { adam_f32_avx2::<COUPLED, DECOUPLED>(k, stuck, param, grad, m, v) }
        }
        Isa::Portable => {}
    }
    adam_loop_f32::<COUPLED, DECOUPLED>(k, stuck, param, grad, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn adam_f32_avx512<const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<f32>,
    stuck: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    adam_loop_f32::<COUPLED, DECOUPLED>(k, stuck, param, grad, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn adam_f32_avx2<const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<f32>,
    stuck: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    adam_loop_f32::<COUPLED, DECOUPLED>(k, stuck, param, grad, m, v);
}

/// [`adam_loop`] for `f32`, without the cost of subnormal first moments that no longer move.
///
/// A weight whose input is zero in most batches gets `g = 0` on most steps, so its `m` decays
/// into the subnormal range and stops at `M·2⁻¹⁴⁹` for a small `M`, where `(1-β₁)·m` rounds to
/// zero; every multiplication or division with such an `m` takes a slow microcode path on x86
/// processors (one subnormal lane slows the whole vector). For a lane with `g = ±0`, a
/// subnormal `m` with `M ≤ stuck` ([`stuck_max`]) and a normal `p`, the exact results are `m`
/// unchanged, `p + (±0) = p` and the usual `v`: the loop computes that lane with `m` replaced
/// by zero (no subnormal operand) and keeps the old `m`, so every bit equals [`adam_loop`]'s.
#[inline(always)]
fn adam_loop_f32<const COUPLED: bool, const DECOUPLED: bool>(
    k: AdamConsts<f32>,
    stuck: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let n = param.len().min(grad.len()).min(m.len()).min(v.len());
    let (param, grad, m, v) = (&mut param[..n], &grad[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mut g = grad[i] * k.sign;
        let mut p = param[i];
        if COUPLED {
            g += k.wd * p;
        }
        if DECOUPLED {
            p *= k.shrink;
        }
        let m0 = m[i];
        // 1 <= M <= stuck, g = ±0, p normal (or infinite or NaN).
        let frozen = ((m0.to_bits() & ABS).wrapping_sub(1) < stuck)
            & (g.to_bits() & ABS == 0)
            & (p.to_bits() & ABS >= MIN_NORMAL);
        let mm = if frozen { 0.0 } else { m0 };
        let mi = mm + k.w1 * (g - mm);
        let vi = v[i] * k.beta2 + k.w2 * g * g;
        let d = vi.sqrt() / k.bc2_sqrt + k.eps;
        // A frozen lane has `mi = +0` (`0 + w1·(±0 − 0)`): OR-ing the old bits into it keeps
        // `m`. Written as a select, the compiler stored `m` with a masked store (`vmaskmovps`),
        // which on AMD Zen 4 made the whole loop about twice as slow (docs/performance.md).
        let keep = 0u32.wrapping_sub(u32::from(frozen));
        m[i] = f32::from_bits(mi.to_bits() | (m0.to_bits() & keep));
        v[i] = vi;
        param[i] = p + k.neg_step_size * mi / d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-combination loops (and the `f32` loop) give exactly the bits of the formula
    /// computed by hand, for every weight-decay mode.
    #[test]
    fn update_is_the_formula_to_the_bit() {
        let n = (1 << 15) + 37;
        let grad: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 1e-2).collect();
        let start: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (coupled, decoupled) in [(false, false), (true, false), (false, true)] {
            let k = AdamConsts {
                sign: 1.0,
                coupled,
                decoupled,
                wd: 0.01,
                shrink: 1.0 - 1e-5,
                w1: 0.1,
                beta2: 0.999,
                w2: 0.001,
                bc2_sqrt: 0.001f64.sqrt() as f32,
                eps: 1e-8,
                neg_step_size: -1e-2,
            };
            let run = || {
                let (mut p, mut m, mut v) = (start.clone(), vec![0.0; n], vec![0.0; n]);
                for _ in 0..3 {
                    adam_update(k, &mut p, &grad, &mut m, &mut v);
                }
                (p, m, v)
            };
            let one = run();
            // Split over two threads (the tensor is above `ELEMENTWISE_PARALLEL_MIN`): the
            // same bits.
            #[cfg(feature = "threads")]
            {
                let before = crate::kernel::threads();
                crate::kernel::set_threads(2);
                let two = run();
                crate::kernel::set_threads(before);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert!(n >= crate::kernel::ELEMENTWISE_PARALLEL_MIN);
                assert_eq!(bits(&one.0), bits(&two.0), "param, {coupled} {decoupled}");
                assert_eq!(bits(&one.1), bits(&two.1), "exp_avg, {coupled} {decoupled}");
                assert_eq!(
                    bits(&one.2),
                    bits(&two.2),
                    "exp_avg_sq, {coupled} {decoupled}"
                );
            }
            // And the loop is the formula: check one value by hand.
            let i = 12345;
            let mut g = grad[i];
            let mut p = start[i];
            let (mut m, mut v) = (0.0f32, 0.0f32);
            for _ in 0..3 {
                if coupled {
                    g = grad[i] + k.wd * p;
                }
                if decoupled {
                    p *= k.shrink;
                }
                m += k.w1 * (g - m);
                v = v * k.beta2 + k.w2 * g * g;
                p += k.neg_step_size * m / (v.sqrt() / k.bc2_sqrt + k.eps);
            }
            assert_eq!(one.0[i].to_bits(), p.to_bits(), "{coupled} {decoupled}");
        }
    }

    /// The `f32` loop that skips frozen subnormal moments gives exactly the bits of the plain
    /// loop, on values mixing zeros, small and large subnormals, tiny and ordinary numbers,
    /// infinities and NaN, under random hyperparameters and every weight-decay mode. Any NaN
    /// equals any NaN: which operand's sign and payload an operation on two NaNs returns is
    /// left open by IEEE 754 and differs between compiled forms of the same expression (on
    /// an Intel Xeon the scalar and vector loops returned NaNs of opposite sign here).
    #[test]
    fn frozen_subnormal_moments_change_no_bit() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let value = |next: &mut dyn FnMut() -> u64| -> f32 {
            let sign = ((next() & 1) as u32) << 31;
            let bits = match next() % 9 {
                0 => 0,
                1 => (next() % 8) as u32,
                2 => (next() as u32) & 0x007f_ffff,
                3 => (next() as u32) & 0x0fff_ffff,
                4 => 0x7f80_0000,
                5 => 0x7fc0_0001,
                _ => ((next() % 20_000) as f32 * 1e-4).to_bits(),
            };
            f32::from_bits(bits | sign)
        };
        let constant = |next: &mut dyn FnMut() -> u64| (next() % 1_000_000) as f32 * 1e-6;
        let same = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        };
        for trial in 0..400 {
            let k = AdamConsts {
                sign: if trial % 2 == 0 { 1.0 } else { -1.0 },
                coupled: false,
                decoupled: false,
                wd: constant(&mut next),
                shrink: 1.0 - constant(&mut next) * 1e-3,
                w1: constant(&mut next).max(1e-6),
                beta2: 1.0 - constant(&mut next) * 1e-2,
                w2: constant(&mut next) * 1e-2,
                bc2_sqrt: constant(&mut next).max(1e-3),
                eps: constant(&mut next) * 1e-6,
                neg_step_size: -constant(&mut next) * 1e-2,
            };
            let n = 64;
            let p0: Vec<f32> = (0..n).map(|_| value(&mut next)).collect();
            let g: Vec<f32> = (0..n).map(|_| value(&mut next)).collect();
            let m0: Vec<f32> = (0..n).map(|_| value(&mut next)).collect();
            let v0: Vec<f32> = (0..n).map(|_| value(&mut next).abs()).collect();
            macro_rules! check {
                ($c:literal, $d:literal) => {{
                    let (mut p1, mut m1, mut v1) = (p0.clone(), m0.clone(), v0.clone());
                    let (mut p2, mut m2, mut v2) = (p0.clone(), m0.clone(), v0.clone());
                    adam_loop::<f32, $c, $d>(k, &mut p1, &g, &mut m1, &mut v1);
                    adam_f32_dispatch::<$c, $d>(k, &mut p2, &g, &mut m2, &mut v2);
                    assert!(
                        same(&p1, &p2) && same(&m1, &m2) && same(&v1, &v2),
                        "trial {trial}"
                    );
                }};
            }
            check!(false, false);
            check!(true, false);
            check!(false, true);
            check!(true, true);
        }
        // The case it is for: m = 3·2⁻¹⁴⁹ and g = 0 stay, p stays, v decays.
        let k = AdamConsts {
            sign: 1.0,
            coupled: false,
            decoupled: false,
            wd: 0.0,
            shrink: 1.0,
            w1: 0.1,
            beta2: 0.999,
            w2: 0.001,
            bc2_sqrt: 0.5,
            eps: 1e-8,
            neg_step_size: -1e-3,
        };
        // (1-β₁) = 0.1f32 is a little above 0.1: 4 · 0.1 rounds to zero, 5 · 0.1 to one.
        assert_eq!(stuck_max(&k), 4);
        let (mut p, mut m, mut v) = (
            vec![0.5f32; 20],
            vec![f32::from_bits(3); 20],
            vec![1e-6; 20],
        );
        adam_f32_dispatch::<false, false>(k, &mut p, &[0.0; 20], &mut m, &mut v);
        assert!(p.iter().all(|&x| x == 0.5));
        assert!(m.iter().all(|&x| x.to_bits() == 3));
        assert!(v.iter().all(|&x| x == 1e-6f32 * 0.999));
    }
}
