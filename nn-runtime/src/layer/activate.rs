//! A standalone activation layer, `y = f(x)` (DSL: `relu`, `softmax`, ...).

use crate::activation::Activation;
use crate::layer::{Derivative, InPlace, InputGradient, Layer, Record, Tensors};
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// The activation `f` on its own, over `N` values per sample. No parameters and no tape:
/// backward reads the layer's input (`z`) and output from the network's tape. In inference
/// it works in place.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Activate<A, const N: usize> {
    /// The activation.
    pub activation: A,
}

impl<A, const N: usize> Activate<A, N> {
    /// The layer applying `activation`.
    pub const fn new(activation: A) -> Self {
        Activate { activation }
    }
}

impl<T: Float, A: Activation<T>, const N: usize> Tensors<T> for Activate<A, N> {
    fn visit(&self, _: &mut dyn FnMut(usize, &[T])) {}
    fn visit_mut(&mut self, _: &mut dyn FnMut(usize, &mut [T])) {}
}

impl<T: Float, A: Activation<T>, const N: usize> Layer<T, N, N> for Activate<A, N> {
    type Tape = ();
    type Gradients = ();
    type Activation = A;

    fn zero_gradients(&self) {}

    #[inline]
    fn predict(&self, x: &SVector<T, N>) -> SVector<T, N> {
        let mut y = *x;
        self.activation.forward_in_place(y.as_mut_slice(), N);
        y
    }

    fn forward(&self, x: &[T], y: &mut [T], n: usize) {
        self.activation.forward(&x[..N * n], &mut y[..N * n], N);
    }

    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        _tape: &mut (),
        n: usize,
        _pass: &mut Record<'_, R>,
    ) {
        Layer::<T, N, N>::forward(self, x, y, n);
    }

    /// The output layer's logits are its input, `z`.
    fn logits<'a>(_tape: &'a (), x: &'a [T], _y: &'a [T], len: usize) -> &'a [T] {
        &x[..len]
    }

    fn output_derivative<'a>(
        &'a self,
        _tape: &'a (),
        x: &'a [T],
        y: &'a [T],
    ) -> Option<Derivative<'a, T, A>> {
        Some(Derivative {
            activation: &self.activation,
            z: x,
            y,
        })
    }

    /// `dy ← dy ⊙ f'(x)` in place, unless the layer above applied it (`ready`).
    fn input_gradient<B: Activation<T>>(
        &self,
        x: &[T],
        y: &[T],
        _tape: &mut (),
        dy: &mut [T],
        ready: bool,
        _dx: InputGradient<'_, T, B>,
        n: usize,
    ) -> bool {
        if !ready {
            let len = N * n;
            self.activation
                .backward(&x[..len], &y[..len], &mut dy[..len], N);
        }
        false
    }
}

impl<T: Float, A: Activation<T>, const N: usize> InPlace<T, N> for Activate<A, N> {
    fn forward_in_place(&self, y: &mut [T], n: usize) {
        self.activation.forward_in_place(&mut y[..N * n], N);
    }
}
