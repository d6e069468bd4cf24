//! The layers generated networks are built from, and the [`Layer`] trait through which the
//! code `network!` generates calls them.
//!
//! A layer's mathematics lives here; the macro only composes: it declares one field per
//! layer that has parameters, one tape entry per layer that records something, and a fixed
//! chain of [`Layer`] calls, the output of each layer being the input of the next. Batches
//! are column-major slices, one column of `IN` (or `OUT`) values per sample.
//!
//! # The backward chain
//! Going down the layers, each receives `dy = dL/dY` in a buffer it may overwrite and
//! returns whether it also applied the derivative of the layer below (see
//! [`InputGradient::Through`]); the layer below is then called with `ready = true` and skips
//! that step. This is how a dense layer's input-gradient product applies the activation
//! derivative of the dense layer below in its epilogue, on the thread that computed each
//! part, instead of in a pass of its own.

pub(crate) mod activate;
pub(crate) mod batch_norm;
pub(crate) mod dense;
pub(crate) mod dropout;
pub(crate) mod layer_norm;
#[cfg(test)]
mod norm_chain_tests;

pub use activate::Activate;
pub use batch_norm::{BatchNorm, BatchNormTape, BatchTooSmall, NormGradients};
pub use dense::{Dense, DenseGradients, DenseTape};
pub use dropout::{Dropout, DropoutTape};
pub use layer_norm::{LayerNorm, LayerNormTape};

use crate::activation::{Activation, Identity};
use crate::scalar::Float;
use nalgebra::SVector;
use rand::Rng;

/// What a recording forward pass is for.
#[derive(Debug)]
pub struct Record<'a, R: ?Sized> {
    /// Training mode (dropout draws masks, batch norm uses the batch's statistics), or
    /// inference mode recorded for a loss.
    pub training: bool,
    /// Whether this is the network's output layer, whose pre-activation (the logits) a loss
    /// may read through [`Layer::logits`].
    pub output_layer: bool,
    /// The random source of the pass (dropout masks).
    pub rng: &'a mut R,
}

/// The activation a layer applied last, with what its derivative needs: the pre-activation
/// `z` (valid when [`Activation::NEEDS_Z`], else the output) and the output `y`, `ROWS x n`.
#[derive(Debug)]
pub struct Derivative<'a, T, A> {
    /// The activation.
    pub activation: &'a A,
    /// Its input.
    pub z: &'a [T],
    /// Its output.
    pub y: &'a [T],
}

/// Where a layer writes `dL/dX`, its input gradient.
#[derive(Debug)]
pub enum InputGradient<'a, T, A> {
    /// Nowhere: the layer is the network's first, nobody needs its input gradient.
    None,
    /// Into this buffer, `IN x n`.
    Plain(&'a mut [T]),
    /// Into this buffer, carried on through the derivative of the layer below:
    /// `dx = (dL/dX) ⊙ f'(z)`. A layer that cannot fuse it may compute `dL/dX` and apply
    /// the derivative after it (see [`InputGradient::finish`]); the layer below then skips
    /// its own derivative.
    Through(&'a mut [T], Derivative<'a, T, A>),
}

impl<T: Float> InputGradient<'static, T, Identity> {
    /// [`InputGradient::None`], for the network's first layer and in-place backward.
    pub fn none() -> Self {
        InputGradient::None
    }
}

impl<'a, T: Float, A: Activation<T>> InputGradient<'a, T, A> {
    /// `Through` when the layer below offers a derivative, else `Plain`.
    pub fn new(dx: &'a mut [T], below: Option<Derivative<'a, T, A>>) -> Self {
        match below {
            Some(d) => InputGradient::Through(dx, d),
            None => InputGradient::Plain(dx),
        }
    }

    /// The buffer, if any.
    pub fn buffer(&mut self) -> Option<&mut [T]> {
        match self {
            InputGradient::None => None,
            InputGradient::Plain(dx) | InputGradient::Through(dx, _) => Some(dx),
        }
    }

    /// For a layer that wrote the plain `dL/dX` into [`InputGradient::buffer`]: applies the
    /// derivative of the layer below if asked, and returns whether it did (what
    /// [`Layer::input_gradient`] returns).
    pub fn finish(self, rows: usize, n: usize) -> bool {
        match self {
            InputGradient::Through(dx, d) => {
                let len = rows * n;
                d.activation
                    .backward(&d.z[..len], &d.y[..len], &mut dx[..len], rows);
                true
            }
            _ => false,
        }
    }
}

/// A layer from `IN` to `OUT` values per sample: parameters (if any), inference, recording
/// forward, backward, and the fused forms the trainer's fast paths ask for.
///
/// Buffers are column-major, one column per sample: `x` is `IN x n`, `y` is `OUT x n`.
pub trait Layer<T: Float, const IN: usize, const OUT: usize>: Tensors<T> {
    /// What a recording forward keeps for backward, beyond the layer's output (which the
    /// network's tape holds): a dense layer's pre-activation, dropout's mask. Its buffers
    /// grow to the largest batch seen and are reused. `()` for a layer that keeps nothing.
    type Tape: Clone + Default + std::fmt::Debug + Send;
    /// The gradients of the layer's parameters, with their shapes (`()` for none).
    type Gradients: Tensors<T> + Clone + std::fmt::Debug + PartialEq + Send + Sync;
    /// The activation the layer applies last, whose derivative the layer above may fuse
    /// ([`crate::activation::Identity`] for none).
    type Activation: Activation<T>;

    /// Gradients of zeros, shaped as this layer's parameters.
    fn zero_gradients(&self) -> Self::Gradients;

    /// Inference on one sample, on the stack (no heap allocation).
    fn predict(&self, x: &SVector<T, IN>) -> SVector<T, OUT>;

    /// Inference on a batch of `n`: `y = f(x)`.
    fn forward(&self, x: &[T], y: &mut [T], n: usize);

    /// A forward pass on a batch of `n` that records in `tape` what backward needs.
    fn record<R: Rng + ?Sized>(
        &self,
        x: &[T],
        y: &mut [T],
        tape: &mut Self::Tape,
        n: usize,
        pass: &mut Record<'_, R>,
    );

    /// After a training-mode [`Layer::record`]: the statistics the layer keeps across
    /// batches (batch norm's running mean and variance). Nothing for most layers.
    fn update_statistics(&mut self, tape: &Self::Tape, n: usize) {
        let _ = (tape, n);
    }

    /// The output layer's pre-activation (the logits a fused loss reads), from its tape,
    /// input `x` and output `y` of the last recorded batch, `len = OUT·n` values.
    fn logits<'a>(tape: &'a Self::Tape, x: &'a [T], y: &'a [T], len: usize) -> &'a [T] {
        let _ = (tape, x);
        &y[..len]
    }

    /// The activation this layer applied last and what its derivative needs, for the layer
    /// above to fuse into its input gradient; `None` when the layer ends in no step it can
    /// hand on.
    fn output_derivative<'a>(
        &'a self,
        tape: &'a Self::Tape,
        x: &'a [T],
        y: &'a [T],
    ) -> Option<Derivative<'a, T, Self::Activation>> {
        let _ = (tape, x, y);
        None
    }

    /// The first half of backward: turns `dy` (`dL/dY`, `OUT x n`) into what the parameter
    /// gradients are computed from (for a dense layer the gradient with respect to its
    /// pre-activation), skipping the layer's own derivative when `ready`, and writes the
    /// input gradient into `dx`. Returns whether it applied the derivative of the layer
    /// below (only for [`InputGradient::Through`]). A layer whose backward works in place
    /// leaves its input gradient in `dy` and is given [`InputGradient::None`].
    #[allow(clippy::too_many_arguments)]
    fn input_gradient<A: Activation<T>>(
        &self,
        x: &[T],
        y: &[T],
        tape: &mut Self::Tape,
        dy: &mut [T],
        ready: bool,
        dx: InputGradient<'_, T, A>,
        n: usize,
    ) -> bool;

    /// The gradients of the layer's parameters into `grads` (overwriting), from its input
    /// `x` and the `dy` that [`Layer::input_gradient`] left. Nothing for a layer without
    /// parameters.
    fn parameter_gradients(
        &self,
        x: &[T],
        tape: &Self::Tape,
        dy: &[T],
        grads: &mut Self::Gradients,
        n: usize,
    ) {
        let _ = (x, tape, dy, grads, n);
    }

    /// Whether the parameter gradients computed from `x`, the tape and `dy` (as
    /// [`Layer::input_gradient`] left it) are sure to be finite, checked from their factors
    /// before a fused step (see [`Layer::sgd_step`]).
    fn gradient_finite(&self, x: &[T], tape: &Self::Tape, dy: &[T], n: usize) -> bool {
        let _ = (x, tape, dy, n);
        true
    }

    /// A plain SGD step fused with the gradient computation, `θ ← θ + scale·∂L/∂θ`
    /// (`scale = −lr`), without storing the gradient.
    fn sgd_step(&mut self, x: &[T], tape: &Self::Tape, dy: &[T], n: usize, scale: T) {
        let _ = (x, tape, dy, n, scale);
    }

    /// Calls `f(k, parameter, gradient)` on each trainable tensor with its gradient, in the
    /// order of [`Tensors::visit`] on [`Layer::Gradients`] (what optimizers step). Nothing
    /// for a layer without parameters.
    fn visit_with_gradients(&mut self, grads: &Self::Gradients, f: &mut TensorPairVisitor<'_, T>) {
        let _ = (grads, f);
    }
}

/// The visitor of [`Layer::visit_with_gradients`]: `f(k, parameter, gradient)` for the
/// layer's `k`-th trainable tensor.
pub type TensorPairVisitor<'a, T> = dyn FnMut(usize, &mut [T], &[T]) + 'a;

/// A fixed list of tensors, visited in order: a layer's parameters and statistics (for
/// persistence), or its gradients. `k` counts from 0 within the layer; the network adds the
/// layer's first index in its `TENSORS`.
pub trait Tensors<T> {
    /// Calls `f(k, values)` on each tensor, column-major.
    fn visit(&self, f: &mut dyn FnMut(usize, &[T]));
    /// [`Tensors::visit`], mutably.
    fn visit_mut(&mut self, f: &mut dyn FnMut(usize, &mut [T]));
}

/// No tensors: the gradients of a layer without parameters.
impl<T> Tensors<T> for () {
    fn visit(&self, _: &mut dyn FnMut(usize, &[T])) {}
    fn visit_mut(&mut self, _: &mut dyn FnMut(usize, &mut [T])) {}
}

/// A layer whose inference can overwrite its input: `y = f(y)` (a standalone activation;
/// dropout, which is the identity in inference). Batch inference then needs no buffer of
/// its own for it. Its backward also works in place, on `dy`, given
/// [`InputGradient::None`].
pub trait InPlace<T: Float, const N: usize>: Layer<T, N, N> {
    /// Inference on a batch of `n` in place.
    fn forward_in_place(&self, y: &mut [T], n: usize);
}
