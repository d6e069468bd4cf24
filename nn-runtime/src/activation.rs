//! Activation functions and their derivatives, with PyTorch's parameters and conventions.
//!
//! Activations work on column-major batches (`rows` values per sample). Element-wise ones
//! implement [`Elementwise`]; [`Softmax`] works per column. Every one is numerically stable
//! for any finite input: no overflow at ±1000 and no NaN.

use crate::init::Init;
use crate::network::OutputActivation;
use crate::scalar::Float;
use std::fmt::Debug;

/// An activation as generated code uses it: forward over a batch, backward as a
/// vector-Jacobian product.
pub trait Activation<T: Float>: Copy + Debug + Send + Sync + 'static {
    /// The DSL name (`relu`, `softmax`, ...).
    const NAME: &'static str;
    /// Whether [`Activation::backward`] needs the pre-activation `z`; when false it needs only
    /// the output `a = f(z)`, and `z` may be overwritten in place.
    const NEEDS_Z: bool;
    /// Whether `f` works value by value, so that it may be applied to any block of a batch
    /// (a dense layer then applies it in its product's epilogue, part by part). False for
    /// [`Softmax`], which needs whole columns.
    const ELEMENTWISE: bool = false;
    /// Whether `f` is the identity, so a layer applying it has nothing to compute or to keep.
    const IS_IDENTITY: bool = false;
    /// The weight initialization a layer ending in `f` gets unless its `init` says otherwise:
    /// He for the ReLU family (it keeps the variance of `relu(z)` at the input's), Xavier
    /// (Glorot) for the rest.
    const INIT: Init;
    /// What a loss may fuse with when `f` is the network's output activation.
    const OUTPUT: OutputActivation = OutputActivation::Other(Self::NAME);

    /// `a = f(z)` over a batch whose columns have `rows` values.
    fn forward(&self, z: &[T], a: &mut [T], rows: usize);

    /// `a = f(a)` in place.
    fn forward_in_place(&self, za: &mut [T], rows: usize);

    /// Turns `grad` from `dL/da` into `dL/dz` in place: `dL/dz = J_f(z)ᵀ dL/da`.
    /// `z` is the pre-activation when [`Activation::NEEDS_Z`], else any slice of the right
    /// length (generated code passes `a`).
    fn backward(&self, z: &[T], a: &[T], grad: &mut [T], rows: usize);
}

/// An element-wise activation `a = f(z)` with derivative `f'(z)`.
pub trait Elementwise<T: Float>: Copy + Debug + Send + Sync + 'static {
    /// The DSL name.
    const NAME: &'static str;
    /// Whether [`Elementwise::derivative`] reads `z` (else it reads only `a`).
    const NEEDS_Z: bool;
    /// See [`Activation::INIT`].
    const INIT: Init;
    /// See [`Activation::IS_IDENTITY`].
    const IS_IDENTITY: bool = false;
    /// See [`Activation::OUTPUT`].
    const OUTPUT: OutputActivation = OutputActivation::Other(Self::NAME);
    /// `f(z)`.
    fn value(&self, z: T) -> T;
    /// `f'(z)`, given `z` (valid only if `NEEDS_Z`) and `a = f(z)`.
    fn derivative(&self, z: T, a: T) -> T;
}

/// Implements [`Activation`] for element-wise activations from their [`Elementwise`] impl.
macro_rules! elementwise_activation {
    ($($ty:ty),* $(,)?) => {$(
        impl<T: Float> Activation<T> for $ty {
            const NAME: &'static str = <$ty as Elementwise<T>>::NAME;
            const NEEDS_Z: bool = <$ty as Elementwise<T>>::NEEDS_Z;
            const ELEMENTWISE: bool = true;
            const IS_IDENTITY: bool = <$ty as Elementwise<T>>::IS_IDENTITY;
            const INIT: Init = <$ty as Elementwise<T>>::INIT;
            const OUTPUT: OutputActivation = <$ty as Elementwise<T>>::OUTPUT;

            #[inline]
            fn forward(&self, z: &[T], a: &mut [T], _rows: usize) {
                for (a, &z) in a.iter_mut().zip(z) {
                    *a = self.value(z);
                }
            }

            #[inline]
            fn forward_in_place(&self, za: &mut [T], _rows: usize) {
                for v in za {
                    *v = self.value(*v);
                }
            }

            #[inline]
            fn backward(&self, z: &[T], a: &[T], grad: &mut [T], _rows: usize) {
                for ((g, &z), &a) in grad.iter_mut().zip(z).zip(a) {
                    *g *= self.derivative(z, a);
                }
            }
        }
    )*};
}

elementwise_activation!(
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu<T>,
    Elu<T>,
    Gelu,
    GeluTanh,
    Softplus<T>,
    Silu,
);

/// `f(z) = z`, `f'(z) = 1`. DSL: `identity` or `linear`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Identity;

impl<T: Float> Elementwise<T> for Identity {
    const NAME: &'static str = "identity";
    const INIT: Init = Init::Xavier;
    const IS_IDENTITY: bool = true;
    const OUTPUT: OutputActivation = OutputActivation::Identity;
    const NEEDS_Z: bool = false;
    #[inline]
    fn value(&self, z: T) -> T {
        z
    }
    #[inline]
    fn derivative(&self, _z: T, _a: T) -> T {
        T::one()
    }
}

/// Logistic sigmoid `σ(z) = 1 / (1 + e^{-z})`, `σ'(z) = σ(z)(1 - σ(z))` (computed from `z` in
/// `f64`).
///
/// Computed as `e^{z} / (1 + e^{z})` for negative `z`, so `e^{-z}` never overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sigmoid;

/// The stable logistic function `σ(z)`.
#[inline]
pub fn sigmoid<T: Float>(z: T) -> T {
    if z >= T::zero() {
        T::one() / (T::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::one() + e)
    }
}

impl<T: Float> Elementwise<T> for Sigmoid {
    const NAME: &'static str = "sigmoid";
    const INIT: Init = Init::Xavier;
    const OUTPUT: OutputActivation = OutputActivation::Sigmoid;
    // From `z` in f64: `σ(z)(1 - σ(z))` from an f32 output loses digits where σ is near 1.
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        sigmoid(z)
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let s = sigmoid(z.to_f64());
        T::of(s * (1.0 - s))
    }
}

/// `tanh(z)`, derivative `1 - tanh²(z)` (computed from `z` in `f64`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tanh;

impl<T: Float> Elementwise<T> for Tanh {
    const NAME: &'static str = "tanh";
    const INIT: Init = Init::Xavier;
    // From `z` in f64: `1 - a²` from an f32 output loses digits where |a| is near 1.
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        z.tanh()
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let t = z.to_f64().tanh();
        T::of(1.0 - t * t)
    }
}

/// `relu(z) = max(z, 0)`; `relu'(z) = 1` for `z > 0`, else 0 (PyTorch: `relu'(0) = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Relu;

impl<T: Float> Elementwise<T> for Relu {
    const NAME: &'static str = "relu";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = false;
    #[inline]
    fn value(&self, z: T) -> T {
        if z > T::zero() {
            z
        } else {
            T::zero()
        }
    }
    #[inline]
    fn derivative(&self, _z: T, a: T) -> T {
        if a > T::zero() {
            T::one()
        } else {
            T::zero()
        }
    }
}

/// `leaky_relu(z) = z` for `z > 0`, else `negative_slope * z`; the derivative at 0 is
/// `negative_slope` (PyTorch). DSL: `leaky_relu` (slope 0.01) or `leaky_relu(alpha)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu<T> {
    /// Slope for negative inputs (PyTorch default 0.01).
    pub negative_slope: T,
}

impl<T: Float> Default for LeakyRelu<T> {
    /// PyTorch's default slope, 0.01.
    fn default() -> Self {
        LeakyRelu {
            negative_slope: T::of(0.01),
        }
    }
}

impl<T: Float> Elementwise<T> for LeakyRelu<T> {
    const NAME: &'static str = "leaky_relu";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        if z > T::zero() {
            z
        } else {
            self.negative_slope * z
        }
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        if z > T::zero() {
            T::one()
        } else {
            self.negative_slope
        }
    }
}

/// `elu(z) = z` for `z > 0`, else `alpha (e^{z} - 1)`; derivative `alpha e^{z}` for `z <= 0`
/// (so `elu'(0) = alpha`, as PyTorch). DSL: `elu` (alpha 1) or `elu(alpha)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu<T> {
    /// Scale of the negative branch (PyTorch default 1.0).
    pub alpha: T,
}

impl<T: Float> Default for Elu<T> {
    /// PyTorch's default, `alpha = 1`.
    fn default() -> Self {
        Elu { alpha: T::one() }
    }
}

impl<T: Float> Elementwise<T> for Elu<T> {
    const NAME: &'static str = "elu";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        if z > T::zero() {
            z
        } else {
            self.alpha * z.exp_m1()
        }
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        if z > T::zero() {
            T::one()
        } else {
            self.alpha * z.exp()
        }
    }
}

/// Exact GELU, `gelu(z) = z Φ(z)`, `Φ(z) = erfc(-z/√2)/2`; `gelu'(z) = Φ(z) + z φ(z)`.
///
/// Computed in `f64` with `erfc`, which stays accurate in the far negative tail where
/// `1 + erf(z/√2)` would cancel to zero.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu;

/// `Φ(z)`, the standard normal distribution function, and `φ(z)`, its density, in `f64`.
fn normal_cdf_pdf(z: f64) -> (f64, f64) {
    let cdf = 0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2);
    let pdf = (-0.5 * z * z).exp() * 0.398_942_280_401_432_7;
    (cdf, pdf)
}

impl<T: Float> Elementwise<T> for Gelu {
    const NAME: &'static str = "gelu";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        let z = z.to_f64();
        T::of(z * normal_cdf_pdf(z).0)
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let z = z.to_f64();
        let (cdf, pdf) = normal_cdf_pdf(z);
        T::of(cdf + z * pdf)
    }
}

/// GELU, tanh approximation: `z/2 (1 + tanh(u))`, `u = √(2/π) (z + 0.044715 z³)`;
/// derivative `(1 + tanh u)/2 + z/2 (1 - tanh² u) √(2/π) (1 + 3·0.044715 z²)`, computed in `f64`.
/// DSL: `gelu_tanh`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GeluTanh;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044_715;

impl<T: Float> Elementwise<T> for GeluTanh {
    const NAME: &'static str = "gelu_tanh";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        // In f64, so that `1 + tanh u` keeps its tail in f32 networks too.
        let z = z.to_f64();
        let u = SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z);
        T::of(0.5 * z * (1.0 + u.tanh()))
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let z = z.to_f64();
        let t = (SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z)).tanh();
        T::of(
            0.5 * (1.0 + t)
                + 0.5 * z * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z * z),
        )
    }
}

/// `softplus(z) = ln(1 + e^{βz}) / β`, and exactly `z` where `βz > threshold` (PyTorch);
/// derivative `σ(βz)` (exactly 1 above the threshold). Computed as
/// `(max(βz, 0) + ln(1 + e^{-|βz|})) / β`, which never overflows.
/// DSL: `softplus` (β 1, threshold 20) or `softplus(beta)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Softplus<T> {
    /// `β` (PyTorch default 1).
    pub beta: T,
    /// Above `βz > threshold` the function is the identity (PyTorch default 20).
    pub threshold: T,
}

impl<T: Float> Default for Softplus<T> {
    /// PyTorch's defaults, `beta = 1`, `threshold = 20`.
    fn default() -> Self {
        Softplus {
            beta: T::one(),
            threshold: T::of(20.0),
        }
    }
}

impl<T: Float> Elementwise<T> for Softplus<T> {
    const NAME: &'static str = "softplus";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        let bz = self.beta * z;
        if bz > self.threshold {
            z
        } else {
            (bz.max(T::zero()) + (-bz.abs()).exp().ln_1p()) / self.beta
        }
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let bz = self.beta * z;
        if bz > self.threshold {
            T::one()
        } else {
            sigmoid(bz)
        }
    }
}

/// SiLU (swish), `silu(z) = z σ(z)`, `silu'(z) = σ(z) (1 + z (1 - σ(z)))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Silu;

impl<T: Float> Elementwise<T> for Silu {
    const NAME: &'static str = "silu";
    const INIT: Init = Init::He;
    const NEEDS_Z: bool = true;
    #[inline]
    fn value(&self, z: T) -> T {
        z * sigmoid(z)
    }
    #[inline]
    fn derivative(&self, z: T, _a: T) -> T {
        let s = sigmoid(z);
        s * (T::one() + z * (T::one() - s))
    }
}

/// Softmax over each column: `s_i = e^{z_i - m} / Σ_j e^{z_j - m}` with `m = max_j z_j`,
/// so no exponent overflows. Backward is the Jacobian-vector product
/// `J(z)ᵀ v = s ⊙ (v - ⟨s, v⟩)`, never a materialized `K x K` Jacobian.
///
/// Only the output layer may use softmax (the DSL enforces it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softmax;

/// Softmax of one column, `out_i = e^{z_i - m} / Σ_j e^{z_j - m}` with `m = max z`.
pub fn softmax_column<T: Float>(z: &[T], out: &mut [T]) {
    let m = z.iter().copied().fold(T::neg_infinity(), T::max);
    let mut sum = T::zero();
    for (o, &zi) in out.iter_mut().zip(z) {
        *o = (zi - m).exp();
        sum += *o;
    }
    let inv = T::one() / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// Log-softmax of one column, `out_i = (z_i - m) - ln Σ_j e^{z_j - m}` (stable: `m = max z`).
///
/// In this order (PyTorch's), `z_i - m` is exact for nearby logits: subtracting a rounded
/// `lse = m + ln Σ` instead would lose the digits of a log-probability near 0 when `|z|` is
/// large (±1000).
pub fn log_softmax_column<T: Float>(z: &[T], out: &mut [T]) {
    let m = z.iter().copied().fold(T::neg_infinity(), T::max);
    let log_sum = z.iter().map(|&zi| (zi - m).exp()).sum::<T>().ln();
    for (o, &zi) in out.iter_mut().zip(z) {
        *o = (zi - m) - log_sum;
    }
}

/// `ln Σ_i e^{z_i}`, computed as `m + ln Σ_i e^{z_i - m}` with `m = max z`.
pub fn log_sum_exp<T: Float>(z: &[T]) -> T {
    let m = z.iter().copied().fold(T::neg_infinity(), T::max);
    if m == T::neg_infinity() {
        return m;
    }
    m + z.iter().map(|&zi| (zi - m).exp()).sum::<T>().ln()
}

/// Softmax's vector-Jacobian product for one column in place: `v ← s ⊙ (v - ⟨s, v⟩)`.
/// (The softmax Jacobian is symmetric, so this is also `J v`.)
pub fn softmax_vjp_column<T: Float>(s: &[T], v: &mut [T]) {
    let dot: T = s.iter().zip(v.iter()).map(|(&s, &v)| s * v).sum();
    for (vi, &si) in v.iter_mut().zip(s) {
        *vi = si * (*vi - dot);
    }
}

/// Log-softmax's vector-Jacobian product for one column in place, given `s = softmax(z)`:
/// `v ← v - s Σ_j v_j`.
pub fn log_softmax_vjp_column<T: Float>(s: &[T], v: &mut [T]) {
    let total: T = v.iter().copied().sum();
    for (vi, &si) in v.iter_mut().zip(s) {
        *vi -= si * total;
    }
}

impl<T: Float> Activation<T> for Softmax {
    const NAME: &'static str = "softmax";
    const NEEDS_Z: bool = false;
    const INIT: Init = Init::Xavier;
    const OUTPUT: OutputActivation = OutputActivation::Softmax;

    fn forward(&self, z: &[T], a: &mut [T], rows: usize) {
        for (z, a) in z.chunks_exact(rows).zip(a.chunks_exact_mut(rows)) {
            softmax_column(z, a);
        }
    }

    fn forward_in_place(&self, za: &mut [T], rows: usize) {
        for col in za.chunks_exact_mut(rows) {
            let m = col.iter().copied().fold(T::neg_infinity(), T::max);
            let mut sum = T::zero();
            for v in col.iter_mut() {
                *v = (*v - m).exp();
                sum += *v;
            }
            let inv = T::one() / sum;
            for v in col.iter_mut() {
                *v *= inv;
            }
        }
    }

    fn backward(&self, _z: &[T], a: &[T], grad: &mut [T], rows: usize) {
        for (s, g) in a.chunks_exact(rows).zip(grad.chunks_exact_mut(rows)) {
            softmax_vjp_column(s, g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite_diff<E: Elementwise<f64>>(e: E, x: f64) -> f64 {
        let h = 1e-6;
        (e.value(x + h) - e.value(x - h)) / (2.0 * h)
    }

    fn check<E: Elementwise<f64>>(e: E) {
        for &x in &[-3.1, -0.7, -0.01, 0.02, 0.5, 2.3, 7.0] {
            let a = e.value(x);
            let want = finite_diff(e, x);
            let got = e.derivative(x, a);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{}: f'({x}) = {got}, finite differences {want}",
                E::NAME
            );
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        check(Identity);
        check(Sigmoid);
        check(Tanh);
        check(Relu);
        check(LeakyRelu {
            negative_slope: 0.1,
        });
        check(Elu { alpha: 1.5 });
        check(Gelu);
        check(GeluTanh);
        check(Softplus {
            beta: 2.0,
            threshold: 20.0,
        });
        check(Silu);
    }

    #[test]
    fn stable_for_extreme_inputs() {
        let sp = Softplus {
            beta: 1.0,
            threshold: 1e9,
        };
        for &x in &[-1000.0f64, -100.0, 100.0, 1000.0] {
            for v in [
                Sigmoid.value(x),
                sp.value(x),
                sp.derivative(x, 0.0),
                Silu.value(x),
                Silu.derivative(x, 0.0),
                Gelu.value(x),
                Gelu.derivative(x, 0.0),
                GeluTanh.derivative(x, 0.0),
                Elu { alpha: 1.0 }.value(x),
            ] {
                assert!(v.is_finite(), "non-finite at {x}");
            }
        }
        assert_eq!(sp.value(1000.0), 1000.0);
        let z = [1000.0f32, -1000.0, 999.0];
        let mut s = [0.0f32; 3];
        softmax_column(&z, &mut s);
        assert!(s.iter().all(|v| v.is_finite()) && (s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut l = [0.0f32; 3];
        log_softmax_column(&z, &mut l);
        assert!(l.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn softmax_vjp_matches_finite_differences() {
        let z = [0.3, -1.2, 2.0, 0.0];
        let v = [0.5, -0.25, 1.0, 2.0];
        let mut s = [0.0; 4];
        softmax_column(&z, &mut s);
        let mut g = v;
        softmax_vjp_column(&s, &mut g);
        for k in 0..4 {
            let h = 1e-6;
            let (mut zp, mut zm) = (z, z);
            zp[k] += h;
            zm[k] -= h;
            let (mut sp, mut sm) = ([0.0; 4], [0.0; 4]);
            softmax_column(&zp, &mut sp);
            softmax_column(&zm, &mut sm);
            let fd: f64 = (0..4).map(|i| v[i] * (sp[i] - sm[i]) / (2.0 * h)).sum();
            assert!((g[k] - fd).abs() < 1e-8, "{k}: {} vs {fd}", g[k]);
        }
    }
}
