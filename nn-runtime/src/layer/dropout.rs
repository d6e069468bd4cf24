//! Inverted dropout.

use crate::activation::{Activation, Identity};
use crate::layer::{InPlace, InputGradient, Layer, Record, Tensors};
use crate::network::ensure_len;
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// Inverted dropout over `N` values per sample with drop probability `p` (DSL:
/// `dropout(p)`): in training each value is kept with probability `1 − p` and scaled by
/// `1 / (1 − p)`; in inference it is the identity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout<const N: usize> {
    /// The drop probability, in `[0, 1)`.
    pub p: f64,
}

/// The mask of dropout's last recorded batch, `0` or `1 / (1 − p)` per value.
#[derive(Clone, Debug, Default)]
pub struct DropoutTape<T> {
    mask: Vec<T>,
}

impl<T, const N: usize> Tensors<T> for Dropout<N> {
    fn visit(&self, _: &mut dyn FnMut(usize, &[T])) {}
    fn visit_mut(&mut self, _: &mut dyn FnMut(usize, &mut [T])) {}
}

impl<T: Float, const N: usize> Layer<T, N, N> for Dropout<N> {
    type Tape = DropoutTape<T>;
    type Gradients = ();
    type Activation = Identity;

    fn zero_gradients(&self) {}

    #[inline]
    fn predict(&self, x: &SVector<T, N>) -> SVector<T, N> {
        *x
    }

    fn forward(&self, x: &[T], y: &mut [T], n: usize) {
        y[..N * n].copy_from_slice(&x[..N * n]);
    }

    /// Draws a mask from the pass's random source in training; in inference the mask is
    /// all ones and nothing is drawn.
    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut DropoutTape<T>,
        n: usize,
        pass: &mut Record<'_, R>,
    ) {
        let len = N * n;
        ensure_len(&mut tape.mask, len);
        let p = if pass.training { self.p } else { 0.0 };
        dropout_forward(p, &x[..len], &mut tape.mask[..len], &mut y[..len], pass.rng);
    }

    /// `dy ← dy ⊙ mask` in place.
    fn input_gradient<B: Activation<T>>(
        &self,
        _x: &[T],
        _y: &[T],
        tape: &mut DropoutTape<T>,
        dy: &mut [T],
        _ready: bool,
        _dx: InputGradient<'_, T, B>,
        n: usize,
    ) -> bool {
        dropout_backward(&tape.mask[..N * n], &mut dy[..N * n]);
        false
    }
}

impl<T: Float, const N: usize> InPlace<T, N> for Dropout<N> {
    /// Inference: the identity.
    fn forward_in_place(&self, _y: &mut [T], _n: usize) {}
}

/// Inverted dropout in training: each value is kept with probability `1 - p` and scaled by
/// `1 / (1 - p)`, so `E[out] = in` and inference is the identity.
///
/// Writes the mask (`0` or `1 / (1 - p)` per value, drawn from `rng` so a seeded run repeats)
/// into `mask` and `out = in ⊙ mask`. With `p = 0` the mask is all ones and `rng` is not used.
pub fn dropout_forward<T: Float, R: Rng + ?Sized>(
    p: f64,
    input: &[T],
    mask: &mut [T],
    out: &mut [T],
    rng: &mut R,
) {
    if p <= 0.0 {
        mask.fill(T::one());
        out.copy_from_slice(input);
        return;
    }
    let scale = T::of(1.0 / (1.0 - p));
    for ((m, o), &x) in mask.iter_mut().zip(out.iter_mut()).zip(input) {
        *m = if rng.random::<f64>() < p {
            T::zero()
        } else {
            scale
        };
        *o = x * *m;
    }
}

/// The random source of inference-mode passes, which draw nothing (dropout with `p = 0`
/// returns before drawing). It yields zeros if ever asked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDraws;

impl rand::RngCore for NoDraws {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// Backward of inverted dropout in place: `grad ← grad ⊙ mask`.
pub fn dropout_backward<T: Float>(mask: &[T], grad: &mut [T]) {
    for (g, &m) in grad.iter_mut().zip(mask) {
        *g *= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn keeps_expectation_and_repeats_with_seed() {
        let x = vec![1.0f64; 100_000];
        let (mut m1, mut o1) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        dropout_forward(0.3, &x, &mut m1, &mut o1, &mut StdRng::seed_from_u64(9));
        let mean = o1.iter().sum::<f64>() / x.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let dropped = m1.iter().filter(|&&m| m == 0.0).count() as f64 / x.len() as f64;
        assert!((dropped - 0.3).abs() < 0.01);
        let (mut m2, mut o2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        dropout_forward(0.3, &x, &mut m2, &mut o2, &mut StdRng::seed_from_u64(9));
        assert_eq!(m1, m2);
        let mut g = vec![2.0; x.len()];
        dropout_backward(&m1, &mut g);
        assert!(g.iter().zip(&m1).all(|(g, m)| *g == 2.0 * m));
    }
}
