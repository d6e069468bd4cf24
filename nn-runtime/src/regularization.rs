//! Regularization: L1/L2 penalties and gradient clipping.
//!
//! # Penalty convention
//!
//! For a penalized tensor $W$ with coefficients $\lambda_1$ (L1) and $\lambda_2$ (L2):
//!
//! $$ R(W) = \lambda_1 \sum |w| + \tfrac{1}{2} \lambda_2 \sum w^2, \qquad
//!    \frac{\partial R}{\partial w} = \lambda_1 \operatorname{sign}(w) + \lambda_2 w $$
//!
//! with $\operatorname{sign}(0) = 0$ (the subgradient PyTorch's `torch.abs` backward gives).
//! The L2 term carries the factor $\tfrac12$ so that its gradient is exactly $\lambda_2 w$,
//! the same as coupled `weight_decay = λ₂` in SGD; this is the convention of the PyTorch
//! fixture `mlp_end_to_end.json` (`+ 0.5*λ*Σ W²`, gradient `+ λ*W`; `+ λ*Σ|W|`, gradient
//! `+ λ*sign(W)`). $R$ is added to the reported loss (the data loss plus $R$) and its
//! gradient to the parameter gradient, before clipping and the optimizer step.
//!
//! Coefficients per tensor are the global ones of a [`Penalty`] (set on the trainer) plus
//! the layer's own from the DSL ([`TensorInfo::l1`], [`TensorInfo::l2`]):
//! $\lambda_1 = $ `penalty.l1 + tensor.l1`, $\lambda_2 = $ `penalty.l2 + tensor.l2`.
//! Only weights are penalized, unless [`Penalty::include_bias`] is set, in which case
//! biases are too (with the same sums).
//!
//! # Gradient clipping
//!
//! [`clip_grad_norm`] is PyTorch's `clip_grad_norm_` (2-norm): with
//! $n = \sqrt{\sum_{\text{tensors}} \sum g^2}$ over all tensors together, every gradient is
//! multiplied by $c = \text{max\_norm} / (n + 10^{-6})$ when $c < 1$. [`clip_grad_value`] is
//! `clip_grad_value_`: every value clamped to $[-v, v]$.
//!
//! Everything works on any [`Parameters`] (a network or its gradients) through
//! `for_each_tensor`/`for_each_tensor_mut`, and on plain slices (the `*_slice(s)` functions).
//! Nothing allocates.

use crate::network::{Parameters, TensorInfo};
use crate::optim::OptimError;
use crate::scalar::Float;

/// Global L1/L2 penalties, combined with each layer's own coefficients from the DSL (see the
/// [module docs](self) for the convention: $\lambda_1 \sum|w| + \frac12 \lambda_2 \sum w^2$).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalty {
    /// Global L1 coefficient $\lambda_1 \ge 0$ added to every penalized tensor's own.
    pub l1: f64,
    /// Global L2 coefficient $\lambda_2 \ge 0$ added to every penalized tensor's own.
    pub l2: f64,
    /// Whether biases are penalized too (default: weights only).
    pub include_bias: bool,
}

impl Penalty {
    /// Global coefficients `l1`, `l2` on weights only.
    pub fn new(l1: f64, l2: f64) -> Self {
        Self {
            l1,
            l2,
            include_bias: false,
        }
    }

    /// Checks that both coefficients are finite and non-negative.
    pub fn validate(&self) -> Result<(), OptimError> {
        let ok = crate::optim::non_negative;
        crate::optim::require("Penalty", "l1", self.l1, ok(self.l1), "finite and >= 0")?;
        crate::optim::require("Penalty", "l2", self.l2, ok(self.l2), "finite and >= 0")
    }

    /// The coefficients $(\lambda_1, \lambda_2)$ for `tensor` (global plus the tensor's own), or
    /// `None` when it is not penalized (a bias without `include_bias`, or both zero).
    pub fn coefficients(&self, tensor: &TensorInfo) -> Option<(f64, f64)> {
        if !tensor.trainable || (tensor.is_bias && !self.include_bias) {
            return None;
        }
        let (l1, l2) = (self.l1 + tensor.l1, self.l2 + tensor.l2);
        (l1 != 0.0 || l2 != 0.0).then_some((l1, l2))
    }

    /// The penalty $R$ of all of `params`' tensors: $\sum_W \lambda_1 \sum|w| + \frac12 \lambda_2 \sum w^2$.
    pub fn value<T: Float, P: Parameters<T> + ?Sized>(&self, params: &P) -> f64 {
        let mut total = 0.0;
        params.for_each_tensor(&mut |t, w| {
            if let Some((l1, l2)) = self.coefficients(t) {
                total += penalty_slice(w, l1, l2);
            }
        });
        total
    }

    /// Adds the penalty's gradient $\lambda_1 \operatorname{sign}(w) + \lambda_2 w$ to `grads`
    /// (same layout as `params`) and returns the penalty $R$ to add to the loss.
    pub fn apply<T, P, G>(&self, params: &P, grads: &mut G) -> f64
    where
        T: Float,
        P: Parameters<T> + ?Sized,
        G: Parameters<T> + ?Sized,
    {
        let mut total = 0.0;
        grads.for_each_tensor_mut(&mut |gt, g| {
            let Some((l1, l2)) = self.coefficients(gt) else {
                return;
            };
            // Find the parameter tensor of the same index (a few tensors: no allocation).
            params.for_each_tensor(&mut |pt, w| {
                if pt.index == gt.index {
                    total += penalty_slice(w, l1, l2);
                    add_penalty_grad_slice(w, g, l1, l2);
                }
            });
        });
        total
    }
}

/// $\lambda_1 \sum|w| + \frac12 \lambda_2 \sum w^2$ of one slice, accumulated in `f64`.
pub fn penalty_slice<T: Float>(w: &[T], l1: f64, l2: f64) -> f64 {
    let (mut abs, mut sq) = (0.0, 0.0);
    for &x in w {
        let x = x.to_f64();
        abs += x.abs();
        sq += x * x;
    }
    let mut r = 0.0;
    if l1 != 0.0 {
        r += l1 * abs;
    }
    if l2 != 0.0 {
        r += 0.5 * l2 * sq;
    }
    r
}

/// `grad += λ₁·sign(w) + λ₂·w` element-wise, with sign(0) = 0.
pub fn add_penalty_grad_slice<T: Float>(w: &[T], grad: &mut [T], l1: f64, l2: f64) {
    let (a, b) = (T::of(l1), T::of(l2));
    let zero = T::zero();
    for (g, &x) in grad.iter_mut().zip(w) {
        let s = if x > zero {
            a
        } else if x < zero {
            -a
        } else {
            zero
        };
        if l2 != 0.0 {
            *g += b * x;
        }
        if l1 != 0.0 {
            *g += s;
        }
    }
}

/// $\sum x^2$ of a slice, accumulated in `f64`.
pub fn sum_sq_slice<T: Float>(x: &[T]) -> f64 {
    x.iter()
        .map(|&v| {
            let v = v.to_f64();
            v * v
        })
        .sum()
}

/// The global 2-norm $\sqrt{\sum g^2}$ over all of `grads`' tensors together.
pub fn global_norm<T: Float, P: Parameters<T> + ?Sized>(grads: &P) -> f64 {
    let mut sq = 0.0;
    grads.for_each_tensor(&mut |_, g| sq += sum_sq_slice(g));
    sq.sqrt()
}

/// The global 2-norm $\sqrt{\sum_s \sum_{g \in s} g^2}$ over several slices together.
pub fn global_norm_slices<T: Float>(slices: &[&[T]]) -> f64 {
    slices.iter().map(|s| sum_sq_slice(s)).sum::<f64>().sqrt()
}

/// The factor PyTorch's `clip_grad_norm_` scales by for total norm `total`:
/// $c = \text{max\_norm} / (\text{total} + 10^{-6})$ when $c < 1$, else `None` (no change).
/// `None` too when `total` is not finite (the caller should stop on a non-finite gradient).
pub fn clip_factor(total: f64, max_norm: f64) -> Option<f64> {
    if !total.is_finite() {
        return None;
    }
    let c = max_norm / (total + 1e-6);
    (c < 1.0).then_some(c)
}

/// PyTorch's `clip_grad_norm_` over all of `grads`' tensors: scales every gradient by
/// [`clip_factor`] when the global norm exceeds `max_norm`. Returns the norm before clipping.
pub fn clip_grad_norm<T: Float, P: Parameters<T> + ?Sized>(grads: &mut P, max_norm: f64) -> f64 {
    let total = global_norm(grads);
    if let Some(c) = clip_factor(total, max_norm) {
        let c = T::of(c);
        grads.for_each_tensor_mut(&mut |_, g| scale_slice(g, c));
    }
    total
}

/// [`clip_grad_norm`] over slices taken together. Returns the norm before clipping.
pub fn clip_grad_norm_slices<T: Float>(slices: &mut [&mut [T]], max_norm: f64) -> f64 {
    let total = slices.iter().map(|s| sum_sq_slice(s)).sum::<f64>().sqrt();
    if let Some(c) = clip_factor(total, max_norm) {
        let c = T::of(c);
        for s in slices.iter_mut() {
            scale_slice(s, c);
        }
    }
    total
}

fn scale_slice<T: Float>(x: &mut [T], c: T) {
    for v in x {
        *v *= c;
    }
}

/// PyTorch's `clip_grad_value_` over all of `grads`' tensors: every value to
/// $\min(\max(g, -v), v)$ (NaN stays NaN; `v` should be non-negative).
pub fn clip_grad_value<T: Float, P: Parameters<T> + ?Sized>(grads: &mut P, v: f64) {
    grads.for_each_tensor_mut(&mut |_, g| clip_grad_value_slice(g, v));
}

/// `clip_grad_value_` on one slice: $g ← \min(\max(g, -v), v)$, NaN preserved.
pub fn clip_grad_value_slice<T: Float>(grad: &mut [T], v: f64) {
    let (lo, hi) = (T::of(-v), T::of(v));
    for g in grad {
        let c = if *g < lo { lo } else { *g };
        *g = if c > hi { hi } else { c };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: TensorInfo = TensorInfo {
        index: 0,
        name: "dense0.weight",
        rows: 2,
        cols: 2,
        is_bias: false,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    };
    const B: TensorInfo = TensorInfo {
        index: 1,
        name: "dense0.bias",
        rows: 2,
        cols: 1,
        is_bias: true,
        trainable: true,
        l1: 0.5,
        l2: 0.0,
    };

    /// A two-tensor parameter set for tests.
    #[derive(Clone, Debug, PartialEq)]
    struct Two {
        w: [f64; 4],
        b: [f64; 2],
    }

    impl Parameters<f64> for Two {
        const TENSORS: &'static [TensorInfo] = &[W, B];
        fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[f64])) {
            f(&Self::TENSORS[0], &self.w);
            f(&Self::TENSORS[1], &self.b);
        }
        fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [f64])) {
            f(&Self::TENSORS[0], &mut self.w);
            f(&Self::TENSORS[1], &mut self.b);
        }
    }

    #[test]
    fn penalty_convention_and_sign_at_zero() {
        let p = Two {
            w: [0.0, 2.0, -1.0, 0.5],
            b: [3.0, -3.0],
        };
        let mut g = Two {
            w: [0.0; 4],
            b: [0.0; 2],
        };
        let pen = Penalty::new(0.1, 0.2);
        let r = pen.apply(&p, &mut g);
        // 0.1*(0+2+1+0.5) + 0.5*0.2*(0+4+1+0.25) = 0.35 + 0.525
        assert!((r - 0.875).abs() < 1e-15);
        assert!((pen.value(&p) - r).abs() < 1e-15);
        let want = [0.0, 0.1 + 0.4, -0.1 - 0.2, 0.1 + 0.1];
        for (a, b) in g.w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        assert_eq!(g.b, [0.0, 0.0], "biases are not penalized by default");
    }

    #[test]
    fn bias_penalized_with_include_bias_and_dsl_coefficients() {
        let p = Two {
            w: [0.0; 4],
            b: [3.0, -3.0],
        };
        let mut g = Two {
            w: [1.0; 4],
            b: [1.0; 2],
        };
        let pen = Penalty {
            l1: 0.0,
            l2: 0.0,
            include_bias: true,
        };
        // The bias tensor has its own l1 = 0.5 from the DSL.
        let r = pen.apply(&p, &mut g);
        assert!((r - 3.0).abs() < 1e-15);
        assert_eq!(g.b, [1.5, 0.5]);
        assert_eq!(g.w, [1.0; 4]);
        assert!(Penalty::new(-1.0, 0.0).validate().is_err());
        assert!(Penalty::new(0.0, f64::NAN).validate().is_err());
    }

    #[test]
    fn clip_norm_like_torch() {
        let mut g = Two {
            w: [3.0, 0.0, 0.0, 0.0],
            b: [4.0, 0.0],
        };
        let n = clip_grad_norm(&mut g, 1.0);
        assert_eq!(n, 5.0);
        let c = 1.0 / (5.0 + 1e-6);
        assert_eq!(g.w[0], 3.0 * c);
        assert_eq!(g.b[0], 4.0 * c);
        // Below the threshold: untouched.
        let mut h = Two {
            w: [0.3, 0.0, 0.0, 0.0],
            b: [0.4, 0.0],
        };
        let before = h.clone();
        assert!((clip_grad_norm(&mut h, 1.0) - 0.5).abs() < 1e-15);
        assert_eq!(h, before);
        // Non-finite: untouched, norm reported.
        let mut k = Two {
            w: [f64::INFINITY, 1.0, 0.0, 0.0],
            b: [0.0; 2],
        };
        assert!(clip_grad_norm(&mut k, 1.0).is_infinite());
        assert_eq!(k.w[1], 1.0);
    }

    #[test]
    fn clip_value_like_torch() {
        let mut g = [-3.0f32, -0.5, 0.0, 0.5, 3.0, f32::NAN];
        clip_grad_value_slice(&mut g, 1.0);
        assert_eq!(&g[..5], &[-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert!(g[5].is_nan());
        let mut t = Two {
            w: [5.0, -5.0, 0.1, 0.0],
            b: [2.0, -0.2],
        };
        clip_grad_value(&mut t, 0.5);
        assert_eq!(t.w, [0.5, -0.5, 0.1, 0.0]);
        assert_eq!(t.b, [0.5, -0.2]);
    }

    #[test]
    fn slice_norm_clipping() {
        let mut a = [3.0f64, 0.0];
        let mut b = [0.0f64, 4.0];
        let n = clip_grad_norm_slices(&mut [&mut a[..], &mut b[..]], 2.5);
        assert_eq!(n, 5.0);
        assert!((global_norm_slices(&[&a[..], &b[..]]) - 2.5).abs() < 1e-6);
    }
}
