//! [`BatchNorm`] as a link of the generated chain: the [`Layer`] trait on top of the passes
//! of `batch_norm/mod.rs`. The layer is not in place: it writes its input gradient into a
//! buffer of its own, so `dy` is intact for [`Layer::parameter_gradients`] afterwards.

use super::{standardize, BatchNorm, BatchNormTape, NormGradients};
use crate::activation::{Activation, Identity};
use crate::layer::{InputGradient, Layer, Record, TensorPairVisitor, Tensors};
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`, then the statistics
/// `running_mean`, `running_var` and `num_batches_tracked` (one value): the trainable
/// tensors first, so that a tensor's `k` is the same here and in [`NormGradients`].
impl<T: Float, const N: usize> Tensors<T> for BatchNorm<T, N> {
    fn visit(&self, f: &mut dyn FnMut(usize, &[T])) {
        let mut k = 0;
        if self.affine {
            f(0, self.weight.as_slice());
            f(1, self.bias.as_slice());
            k = 2;
        }
        f(k, self.running_mean.as_slice());
        f(k + 1, self.running_var.as_slice());
        f(k + 2, std::slice::from_ref(&self.num_batches_tracked));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        let mut k = 0;
        if self.affine {
            f(0, self.weight.as_mut_slice());
            f(1, self.bias.as_mut_slice());
            k = 2;
        }
        f(k, self.running_mean.as_mut_slice());
        f(k + 1, self.running_var.as_mut_slice());
        f(k + 2, std::slice::from_mut(&mut self.num_batches_tracked));
    }
}

/// `weight` (`k = 0`) and `bias` (`k = 1`) when `affine`, nothing otherwise.
impl<T: Float, const N: usize> Tensors<T> for NormGradients<T, N> {
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

impl<T: Float, const N: usize> Layer<T, N, N> for BatchNorm<T, N> {
    type Tape = BatchNormTape<T>;
    type Gradients = NormGradients<T, N>;
    type Activation = Identity;

    fn zero_gradients(&self) -> NormGradients<T, N> {
        NormGradients::zeros(self.affine)
    }

    /// Inference with the running statistics, on the stack:
    /// `y = γ (x − μ_run)/√(σ²_run + ε) + β`.
    #[inline]
    fn predict(&self, x: &SVector<T, N>) -> SVector<T, N> {
        let s = self.running_inv_std();
        let mut y = SVector::<T, N>::zeros();
        standardize(
            x.as_slice(),
            self.running_mean.as_slice(),
            s.as_slice(),
            y.as_mut_slice(),
        );
        self.scale_shift(y.as_mut_slice());
        y
    }

    /// Inference with the running statistics:
    /// `y_ij = γ_i (x_ij − μ_run,i)/√(σ²_run,i + ε) + β_i`.
    fn forward(&self, x: &[T], y: &mut [T], n: usize) {
        let s = self.running_inv_std();
        let mean = self.running_mean.as_slice();
        for (x, y) in x[..N * n]
            .chunks_exact(N)
            .zip(y[..N * n].chunks_exact_mut(N))
        {
            standardize(x, mean, s.as_slice(), y);
            self.scale_shift(y);
        }
    }

    /// [`BatchNorm::record_batch`] in the pass's mode: the batch's statistics in training,
    /// the running ones in inference (whose backward treats them as constants).
    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut BatchNormTape<T>,
        n: usize,
        pass: &mut Record<'_, R>,
    ) {
        self.record_batch(x, y, tape, n, pass.training);
    }

    /// [`BatchNorm::try_update_statistics`]: PyTorch's update after a training-mode record,
    /// nothing after an inference-mode one. A batch of fewer than two samples leaves the
    /// statistics unchanged (PyTorch raises instead; a trainer should refuse such batches
    /// with [`BatchNorm::check_batch`]).
    fn update_statistics(&mut self, tape: &BatchNormTape<T>, n: usize) {
        // The error is the documented no-op for n < 2.
        let _ = self.try_update_statistics(tape, n);
    }

    /// `dx = (γ s/n)(n dy − dβ − x̂ dγ)` in training, `dx = γ s_run dy` in inference, into
    /// the buffer (`dy` is left intact), then the derivative of the layer below if asked.
    fn input_gradient<B: Activation<T>>(
        &self,
        _x: &[T],
        _y: &[T],
        tape: &mut BatchNormTape<T>,
        dy: &mut [T],
        _ready: bool,
        mut dx: InputGradient<'_, T, B>,
        n: usize,
    ) -> bool {
        let Some(buffer) = dx.buffer() else {
            return false;
        };
        tape.check(n);
        let (dy, d) = (&dy[..N * n], &mut buffer[..N * n]);
        let sums = tape.training.then(|| self.sums(tape, dy, n));
        d.copy_from_slice(dy);
        self.input_gradient_in_place(tape, sums.as_ref(), d, n);
        dx.finish(N, n)
    }

    /// `dγ = Σ_j dy_j ⊙ x̂_j`, `dβ = Σ_j dy_j` (zeros when not `affine`).
    fn parameter_gradients(
        &self,
        _x: &[T],
        tape: &BatchNormTape<T>,
        dy: &[T],
        grads: &mut NormGradients<T, N>,
        n: usize,
    ) {
        tape.check(n);
        let sums = self.affine.then(|| self.sums(tape, dy, n));
        self.write_gradients(sums.as_ref(), grads);
    }

    fn gradient_finite(&self, _x: &[T], tape: &BatchNormTape<T>, dy: &[T], n: usize) -> bool {
        if !self.affine {
            return true;
        }
        tape.check(n);
        let (dg, db) = self.sums(tape, dy, n);
        dg.iter().chain(db.iter()).all(|v| v.is_finite())
    }

    /// `γ ← γ + scale·dγ`, `β ← β + scale·dβ` (nothing when not `affine`).
    fn sgd_step(&mut self, _x: &[T], tape: &BatchNormTape<T>, dy: &[T], n: usize, scale: T) {
        if !self.affine {
            return;
        }
        tape.check(n);
        let (dg, db) = self.sums(tape, dy, n);
        for (w, &g) in self.weight.iter_mut().zip(dg.iter()) {
            *w += scale * g;
        }
        for (b, &g) in self.bias.iter_mut().zip(db.iter()) {
            *b += scale * g;
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
        let l = BatchNorm::<f32, N>::default();
        let x: Vec<f32> = (0..N * 8).map(|i| (i * i % 7) as f32).collect();
        let (mut y, mut dy, mut dx) = (vec![0.0; N * 8], vec![0.5; N * 8], vec![0.0; N * 8]);
        let mut tape = BatchNormTape::default();
        let mut draws = NoDraws;
        let mut pass = Record {
            training: true,
            output_layer: false,
            rng: &mut draws,
        };
        l.record(&x, &mut y, &mut tape, 8, &mut pass);
        let buffers = |t: &BatchNormTape<f32>| {
            [&t.x_hat, &t.inv_std, &t.mean, &t.var].map(|b| (b.as_ptr(), b.capacity()))
        };
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
