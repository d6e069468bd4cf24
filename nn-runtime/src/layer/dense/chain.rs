//! [`Dense`] as a link of the generated chain: the [`Layer`] trait on top of the products of
//! `dense/mod.rs`, with the fused forms (bias and activation in the forward product's
//! epilogue, the derivative of the layer below in the input-gradient product's, plain SGD in
//! the weight-gradient product).

use super::{Dense, DenseGradients};
use crate::activation::Activation;
use crate::kernel::weight_gradient_finite;
use crate::layer::{Derivative, InputGradient, Layer, Record, TensorPairVisitor, Tensors};
use crate::network::ensure_len;
use crate::param::Param;
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// What a dense layer's recording forward keeps beyond its output: the pre-activation `z`,
/// when its activation's derivative needs it ([`Activation::NEEDS_Z`]) or the layer is the
/// output layer (whose `z` are the logits a fused loss reads). Grows to the largest batch.
#[derive(Clone, Debug, Default)]
pub struct DenseTape<T> {
    /// `z = W x + b` of the last batch, `OUT x n`, when `kept`.
    z: Vec<T>,
    /// Whether `z` holds the last batch's pre-activation.
    kept: bool,
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation<T>> Dense<T, IN, OUT, A> {
    /// `z` of the last recorded batch: the tape's when kept, else the output (valid for
    /// the derivative of an activation that does not need `z`, and for the identity).
    fn z_of<'a>(tape: &'a DenseTape<T>, y: &'a [T]) -> &'a [T] {
        if tape.kept {
            &tape.z
        } else {
            y
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation<T>> Tensors<T>
    for Dense<T, IN, OUT, A>
{
    fn visit(&self, f: &mut dyn FnMut(usize, &[T])) {
        f(0, self.weight.as_slice());
        if let Some(b) = &self.bias {
            f(1, b.as_slice());
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        f(0, self.weight.as_mut_slice());
        if let Some(b) = &mut self.bias {
            f(1, b.as_mut_slice());
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Tensors<T> for DenseGradients<T, IN, OUT> {
    fn visit(&self, f: &mut dyn FnMut(usize, &[T])) {
        f(0, self.weight.as_slice());
        if let Some(b) = &self.bias {
            f(1, b.as_slice());
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T])) {
        f(0, self.weight.as_mut_slice());
        if let Some(b) = &mut self.bias {
            f(1, b.as_mut_slice());
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation<T>> Layer<T, IN, OUT>
    for Dense<T, IN, OUT, A>
{
    type Tape = DenseTape<T>;
    type Gradients = DenseGradients<T, IN, OUT>;
    type Activation = A;

    fn zero_gradients(&self) -> DenseGradients<T, IN, OUT> {
        DenseGradients::zeros(self.bias.is_some())
    }

    #[inline]
    fn predict(&self, x: &SVector<T, IN>) -> SVector<T, OUT> {
        let mut y = self.apply(x);
        if !A::IS_IDENTITY {
            self.activation.forward_in_place(y.as_mut_slice(), OUT);
        }
        y
    }

    fn forward(&self, x: &[T], y: &mut [T], n: usize) {
        if A::IS_IDENTITY {
            self.linear(x, y, n);
        } else {
            self.forward_activated(x, y, n, &self.activation);
        }
    }

    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut DenseTape<T>,
        n: usize,
        pass: &mut Record<'_, R>,
    ) {
        tape.kept = !A::IS_IDENTITY && (A::NEEDS_Z || pass.output_layer);
        if tape.kept {
            ensure_len(&mut tape.z, OUT * n);
            let z = &mut tape.z[..OUT * n];
            self.linear(x, z, n);
            self.activation.forward(z, &mut y[..OUT * n], OUT);
        } else {
            self.forward(x, y, n);
        }
    }

    fn logits<'a>(tape: &'a DenseTape<T>, _x: &'a [T], y: &'a [T], len: usize) -> &'a [T] {
        &Self::z_of(tape, y)[..len]
    }

    fn output_derivative<'a>(
        &'a self,
        tape: &'a DenseTape<T>,
        _x: &'a [T],
        y: &'a [T],
    ) -> Option<Derivative<'a, T, A>> {
        (!A::IS_IDENTITY).then(|| Derivative {
            activation: &self.activation,
            z: Self::z_of(tape, y),
            y,
        })
    }

    /// `dZ = dY ⊙ f'(z)` in place (unless `ready`), then `dX = Wᵀ dZ`, through the
    /// derivative of the layer below in the product's epilogue when asked.
    fn input_gradient<B: Activation<T>>(
        &self,
        _x: &[T],
        y: &[T],
        tape: &mut DenseTape<T>,
        dy: &mut [T],
        ready: bool,
        dx: InputGradient<'_, T, B>,
        n: usize,
    ) -> bool {
        let len = OUT * n;
        if !ready && !A::IS_IDENTITY {
            let z = Self::z_of(tape, y);
            self.activation
                .backward(&z[..len], &y[..len], &mut dy[..len], OUT);
        }
        match dx {
            InputGradient::None => false,
            InputGradient::Plain(dx) => {
                self.linear_input_gradient(dy, n, &mut dx[..IN * n]);
                false
            }
            InputGradient::Through(dx, below) => {
                self.input_gradient_activated(
                    dy,
                    n,
                    &mut dx[..IN * n],
                    below.activation,
                    below.z,
                    below.y,
                );
                true
            }
        }
    }

    fn parameter_gradients(
        &self,
        x: &[T],
        _tape: &DenseTape<T>,
        dy: &[T],
        grads: &mut DenseGradients<T, IN, OUT>,
        n: usize,
    ) {
        self.weight_gradients(x, dy, n, grads);
    }

    fn gradient_finite(&self, x: &[T], _tape: &DenseTape<T>, dy: &[T], n: usize) -> bool {
        weight_gradient_finite(&x[..IN * n], &dy[..OUT * n], n)
    }

    fn sgd_step(&mut self, x: &[T], _tape: &DenseTape<T>, dy: &[T], n: usize, scale: T) {
        self.add_scaled_gradient(x, dy, n, scale);
    }

    fn visit_with_gradients(
        &mut self,
        grads: &DenseGradients<T, IN, OUT>,
        f: &mut TensorPairVisitor<'_, T>,
    ) {
        f(0, self.weight.as_mut_slice(), grads.weight.as_slice());
        if let Some(b) = &mut self.bias {
            let g = grads.bias.as_ref().map_or(&[][..], Param::as_slice);
            f(1, b.as_mut_slice(), g);
        }
    }
}
