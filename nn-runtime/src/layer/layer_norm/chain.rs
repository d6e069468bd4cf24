//! [`LayerNorm`] as a link of the generated chain: the [`Layer`] trait on top of the passes
//! of `layer_norm/mod.rs`. The layer is not in place: it writes its input gradient into a
//! buffer of its own, so `dy` is intact for [`Layer::parameter_gradients`] afterwards. It
//! keeps no statistics across batches (the default [`Layer::update_statistics`]).

use super::{standardize, LayerNorm, LayerNormTape};
use crate::activation::{Activation, Identity};
use crate::layer::{InputGradient, Layer, NormGradients, Record, TensorPairVisitor, Tensors};
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`, nothing otherwise.
impl<T: Float, const N: usize> Tensors<T> for LayerNorm<T, N> {
    fn visit(&self, f: &mut dyn FnMut(usize, &[T])) {
        if self.affine {
            f(0, self.weight.as_slice());
            f(1, self.bias.as_slice());
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        if self.affine {
            f(0, self.weight.as_mut_slice());
            f(1, self.bias.as_mut_slice());
        }
    }
}

impl<T: Float, const N: usize> Layer<T, N, N> for LayerNorm<T, N> {
    type Tape = LayerNormTape<T>;
    type Gradients = NormGradients<T, N>;
    type Activation = Identity;

    fn zero_gradients(&self) -> NormGradients<T, N> {
        NormGradients::zeros(self.affine)
    }

    /// One sample, on the stack: `y = γ ⊙ (x − μ)/√(σ² + ε) + β` with `μ`, `σ²` the mean and
    /// biased variance of its `N` features.
    #[inline]
    fn predict(&self, x: &SVector<T, N>) -> SVector<T, N> {
        let mut y = SVector::<T, N>::zeros();
        standardize(x.as_slice(), T::of(self.eps), y.as_mut_slice());
        self.scale_shift(y.as_mut_slice());
        y
    }

    /// Each sample by [`Layer::predict`]'s formula.
    fn forward(&self, x: &[T], y: &mut [T], n: usize) {
        let eps = T::of(self.eps);
        for (x, y) in x[..N * n]
            .chunks_exact(N)
            .zip(y[..N * n].chunks_exact_mut(N))
        {
            standardize(x, eps, y);
            self.scale_shift(y);
        }
    }

    /// [`LayerNorm::record_batch`], the same in training and inference.
    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut LayerNormTape<T>,
        n: usize,
        _pass: &mut Record<'_, R>,
    ) {
        self.record_batch(x, y, tape, n);
    }

    /// `dx_j = (s_j/N)(N g_j − Σ_i g_ij − x̂_j Σ_i g_ij x̂_ij)` with `g = γ ⊙ dy`, into the
    /// buffer (`dy` is left intact), then the derivative of the layer below if asked.
    fn input_gradient<B: Activation<T>>(
        &self,
        _x: &[T],
        _y: &[T],
        tape: &mut LayerNormTape<T>,
        dy: &mut [T],
        _ready: bool,
        mut dx: InputGradient<'_, T, B>,
        n: usize,
    ) -> bool {
        let Some(buffer) = dx.buffer() else {
            return false;
        };
        tape.check(n);
        let d = &mut buffer[..N * n];
        d.copy_from_slice(&dy[..N * n]);
        for ((d, h), &s) in d
            .chunks_exact_mut(N)
            .zip(tape.x_hat[..N * n].chunks_exact(N))
            .zip(&tape.inv_std[..n])
        {
            self.input_gradient_in_place(h, s, d);
        }
        dx.finish(N, n)
    }

    /// `dγ = Σ_j dy_j ⊙ x̂_j`, `dβ = Σ_j dy_j` (zeros when not `affine`).
    fn parameter_gradients(
        &self,
        _x: &[T],
        tape: &LayerNormTape<T>,
        dy: &[T],
        grads: &mut NormGradients<T, N>,
        n: usize,
    ) {
        self.parameter_sums(tape, dy, grads, n);
    }

    fn gradient_finite(&self, _x: &[T], tape: &LayerNormTape<T>, dy: &[T], n: usize) -> bool {
        if !self.affine {
            return true;
        }
        let mut g = NormGradients::zeros(true);
        self.parameter_sums(tape, dy, &mut g, n);
        g.weight.iter().chain(g.bias.iter()).all(|v| v.is_finite())
    }

    /// `γ ← γ + scale·dγ`, `β ← β + scale·dβ` (nothing when not `affine`).
    fn sgd_step(&mut self, _x: &[T], tape: &LayerNormTape<T>, dy: &[T], n: usize, scale: T) {
        if !self.affine {
            return;
        }
        let mut g = NormGradients::zeros(true);
        self.parameter_sums(tape, dy, &mut g, n);
        for (w, &d) in self.weight.iter_mut().zip(g.weight.iter()) {
            *w += scale * d;
        }
        for (b, &d) in self.bias.iter_mut().zip(g.bias.iter()) {
            *b += scale * d;
        }
    }

    fn visit_with_gradients(
        &mut self,
        grads: &NormGradients<T, N>,
        f: &mut TensorPairVisitor<'_, T>,
    ) {
        if self.affine {
            f(0, self.weight.as_mut_slice(), grads.weight.as_slice());
            f(1, self.bias.as_mut_slice(), grads.bias.as_slice());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::dropout::NoDraws;

    #[test]
    fn the_tape_allocates_nothing_once_warmed_up_through_the_trait() {
        const N: usize = 4;
        let l = LayerNorm::<f32, N>::default();
        let x: Vec<f32> = (0..N * 8).map(|i| (i * i % 7) as f32).collect();
        let (mut y, mut dy, mut dx) = (vec![0.0; N * 8], vec![0.5; N * 8], vec![0.0; N * 8]);
        let mut tape = LayerNormTape::default();
        let mut draws = NoDraws;
        let mut pass = Record {
            training: true,
            output_layer: false,
            rng: &mut draws,
        };
        l.record(&x, &mut y, &mut tape, 8, &mut pass);
        let buffers =
            |t: &LayerNormTape<f32>| [&t.x_hat, &t.inv_std].map(|b| (b.as_ptr(), b.capacity()));
        let warm = buffers(&tape);
        for (n, training) in [(3, true), (8, false), (1, true), (8, true)] {
            pass.training = training;
            l.record(&x[..N * n], &mut y[..N * n], &mut tape, n, &mut pass);
            let plain = InputGradient::<f32, Identity>::Plain(&mut dx);
            l.input_gradient(&x, &y, &mut tape, &mut dy, false, plain, n);
            assert_eq!(buffers(&tape), warm);
        }
    }
}
