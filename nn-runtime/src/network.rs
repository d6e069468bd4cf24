//! The traits every generated network implements, so losses, optimizers and the trainer are
//! generic over any network.

use crate::scalar::Float;
use nalgebra::{Const, Dyn, MatrixView, OMatrix, SVector, U1};
use rand::Rng;

/// A batch: `R` features by a dynamic number of samples, one column per sample.
pub type Batch<T, const R: usize> = OMatrix<T, Const<R>, Dyn>;

/// A borrowed batch (for example a column range of a [`Batch`]), one column per sample.
pub type BatchView<'a, T, const R: usize> = MatrixView<'a, T, Const<R>, Dyn, U1, Const<R>>;

/// The activation of a network's output layer, which decides whether a loss can fuse with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputActivation {
    /// No activation: the output is the logits.
    Identity,
    /// Element-wise logistic sigmoid (fuses with binary cross-entropy).
    Sigmoid,
    /// Softmax over each sample (fuses with cross-entropy).
    Softmax,
    /// Any other activation, by its DSL name; losses never fuse with it.
    Other(&'static str),
}

/// What the gradient in a tape's output-gradient buffer is taken with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientOf {
    /// The network's output, after the output activation: backward applies the activation's
    /// derivative (softmax by its Jacobian-vector product).
    Output,
    /// The output layer's pre-activation (the logits): a fused loss already went through the
    /// output activation (for softmax with cross-entropy, `softmax(z) - y`).
    Logits,
}

/// What [`Network::backward_sgd`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedStep {
    /// Every parameter took the SGD step; no gradient was written.
    Stepped,
    /// No parameter changed: a gradient could not be shown finite from its factors, so the
    /// gradients were written into `grads` (exactly what [`Network::backward`] writes) for the
    /// caller to check and step as usual.
    GradientsWritten,
}

/// The kind of a layer in the DSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerKind {
    /// `dense(IN -> OUT, activation, ...)`.
    Dense,
    /// `dropout(p)`.
    Dropout,
    /// A standalone activation layer such as `relu`.
    Activation,
    /// `batch_norm(...)`.
    BatchNorm,
    /// `layer_norm(...)`.
    LayerNorm,
}

/// One layer of a network as the DSL defined it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerInfo {
    /// Field-style name: `dense0`, `dropout0`, `relu0`, ...
    pub name: &'static str,
    /// The layer's DSL text, e.g. `dense(784 -> 128, relu)`.
    pub text: &'static str,
    /// Its kind.
    pub kind: LayerKind,
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Parameter count.
    pub params: usize,
    /// Multiply-adds per sample in the forward pass.
    pub flops: usize,
}

/// One parameter tensor of a network, in the order optimizers and persistence visit them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo {
    /// Position in the visiting order, `0..TENSORS.len()`.
    pub index: usize,
    /// `layer.weight` or `layer.bias`, e.g. `dense0.weight`.
    pub name: &'static str,
    /// Rows (`OUT`).
    pub rows: usize,
    /// Columns (`IN` for weights, 1 for biases).
    pub cols: usize,
    /// Whether this is a bias vector (penalties apply to weights only unless asked).
    pub is_bias: bool,
    /// Whether training changes it by its gradient (weights, biases, a norm's `γ` and `β`).
    /// `false` for statistics a layer keeps (batch norm's running mean and variance), which
    /// are saved, loaded and snapshotted with the parameters but have no gradient, no
    /// optimizer state and no penalty, and are not counted in `PARAMS`.
    pub trainable: bool,
    /// The layer's own L1 penalty coefficient from the DSL (`l1 = x`), else 0.
    pub l1: f64,
    /// The layer's own L2 penalty coefficient from the DSL (`l2 = x`), else 0.
    pub l2: f64,
}

impl TensorInfo {
    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the tensor has no elements (never true for a checked network).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A set of parameter tensors with a fixed layout: a network, or its gradients.
pub trait Parameters<T: Float> {
    /// The tensors, in visiting order.
    const TENSORS: &'static [TensorInfo];

    /// Calls `f` on every tensor (column-major values), in [`Parameters::TENSORS`] order.
    fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[T]));

    /// Calls `f` on every tensor, mutably, in [`Parameters::TENSORS`] order.
    fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [T]));

    /// All values, concatenated in visiting order.
    fn to_flat(&self) -> Vec<T> {
        let mut out = Vec::new();
        self.for_each_tensor(&mut |_, v| out.extend_from_slice(v));
        out
    }

    /// Overwrites every value from `flat` (as [`Parameters::to_flat`] produced it); returns
    /// false, changing nothing, if the length differs.
    fn copy_from_flat(&mut self, flat: &[T]) -> bool {
        let total: usize = Self::TENSORS.iter().map(TensorInfo::len).sum();
        if flat.len() != total {
            return false;
        }
        let mut at = 0;
        self.for_each_tensor_mut(&mut |_, v| {
            v.copy_from_slice(&flat[at..at + v.len()]);
            at += v.len();
        });
        true
    }
}

/// The output side of a [`Tape`] after `forward_train`: what a loss reads and writes.
#[derive(Debug)]
pub struct OutputParts<'a, T> {
    /// Output width (values per sample).
    pub rows: usize,
    /// Samples in the batch.
    pub batch: usize,
    /// The output layer's pre-activation `z` (`rows x batch`).
    pub logits: &'a [T],
    /// The network's output `a = f(z)` (`rows x batch`; equal to `logits` for identity).
    pub output: &'a [T],
    /// Where the loss writes its gradient (`rows x batch`), read by `backward`.
    pub grad: &'a mut [T],
}

/// The activations recorded by `forward_train` for `backward`: buffers sized for the largest
/// batch seen so far, reused, so a training step after the first allocates nothing.
pub trait Tape<T>: Send {
    /// Samples in the last batch recorded.
    fn batch(&self) -> usize;
    /// The output logits, output and output-gradient buffer of the last batch.
    fn output_parts(&mut self) -> OutputParts<'_, T>;
}

/// The visitor of [`Network::for_each_param_grad`]: `f(tensor, parameter, gradient)`.
pub type ParamGradVisitor<'a, T> = dyn FnMut(&'static TensorInfo, &mut [T], &[T]) + 'a;

/// A network generated by `network!`: `IN` inputs, `OUT` outputs, statically shaped.
pub trait Network<const IN: usize, const OUT: usize>:
    Parameters<Self::Scalar> + Send + Sync + Sized
{
    /// The scalar type, `f32` or `f64`.
    type Scalar: Float;
    /// Gradients of every parameter, with the network's layout.
    type Gradients: Parameters<Self::Scalar> + Clone + Send + Sync;
    /// What `forward_train` records for `backward`.
    type Tape: Tape<Self::Scalar>;

    /// The network's type name.
    const NAME: &'static str;
    /// The layer list as written in the DSL.
    const DSL: &'static str;
    /// Number of parameters.
    const PARAMS: usize;
    /// Multiply-adds per sample in the forward pass.
    const FLOPS: usize;
    /// The layers, in order.
    const LAYERS: &'static [LayerInfo];
    /// The output layer's activation.
    const OUTPUT_ACTIVATION: OutputActivation;

    /// A freshly initialized network (each layer by its `init` scheme, biases zero).
    fn init<R: Rng + ?Sized>(rng: &mut R) -> Self;

    /// Inference on one sample, without heap allocation.
    ///
    /// The sample is an `SVector<_, IN>`. From a slice (such as [`Dataset::input`]), use
    /// [`Network::predict_slice`] (an error if the length is not `IN`), build the vector with
    /// `SVector::from_column_slice(x)` (panics if the length is not `IN`), or take it from a
    /// data set with [`Dataset::sample`].
    ///
    /// [`Dataset::input`]: crate::data::Dataset::input
    /// [`Dataset::sample`]: crate::data::Dataset::sample
    fn predict(&self, x: &SVector<Self::Scalar, IN>) -> SVector<Self::Scalar, OUT>;

    /// [`Network::predict`] on a slice of `IN` values, such as
    /// [`Dataset::input`](crate::data::Dataset::input) returns; an error naming both lengths
    /// if the slice has another length.
    ///
    /// ```
    /// use nn_macros::network;
    /// use nn_runtime::prelude::*;
    ///
    /// network! { Tiny < dense(3 -> 2, softmax) > }
    ///
    /// let net = Tiny::new(&mut StdRng::seed_from_u64(1));
    /// let x = [0.5f32, -1.0, 2.0];
    /// assert_eq!(net.predict_slice(&x).unwrap(), net.predict(&SVector::from_column_slice(&x)));
    /// let err = net.predict_slice(&x[..2]).unwrap_err();
    /// assert_eq!(err.to_string(), "the network takes 3 inputs per sample, but the slice has 2 values");
    /// ```
    fn predict_slice(
        &self,
        x: &[Self::Scalar],
    ) -> Result<SVector<Self::Scalar, OUT>, InputLengthError> {
        if x.len() != IN {
            return Err(InputLengthError {
                expected: IN,
                actual: x.len(),
            });
        }
        Ok(self.predict(&SVector::from_column_slice(x)))
    }

    /// The predicted class of one sample, by [`metrics::class_of`](crate::metrics::class_of):
    /// the arg-max of the outputs, or for a network with one output, 1 when the output is
    /// above 0.5 (a sigmoid's probability) and else 0.
    ///
    /// ```
    /// use nn_macros::network;
    /// use nn_runtime::prelude::*;
    ///
    /// network! { Binary < dense(2 -> 1, sigmoid) > }
    ///
    /// let mut net = Binary::new(&mut StdRng::seed_from_u64(1));
    /// // Output sigmoid(x0 - x1): above 0.5 exactly when x0 > x1.
    /// assert!(net.copy_from_flat(&[1.0, -1.0, 0.0])); // weights, then bias
    /// assert_eq!(net.predict_class(&SVector::from([2.0f32, 1.0])), 1);
    /// assert_eq!(net.predict_class(&SVector::from([1.0f32, 2.0])), 0);
    /// ```
    fn predict_class(&self, x: &SVector<Self::Scalar, IN>) -> usize {
        crate::metrics::class_of(self.predict(x).as_slice())
    }

    /// The predicted class of every sample (column) of a batch, as
    /// [`Network::predict_class`] gives it for each.
    fn predict_classes(&self, x: &Batch<Self::Scalar, IN>) -> Vec<usize> {
        self.forward(x)
            .as_slice()
            .chunks_exact(OUT.max(1))
            .map(crate::metrics::class_of)
            .collect()
    }

    /// A Keras-style table of the layers, output shapes and parameter counts, from
    /// [`Network::NAME`], [`Network::LAYERS`], [`Network::PARAMS`], [`Network::FLOPS`], `IN`
    /// and the scalar's name: the same value as the generated inherent `summary()`, for
    /// generic code.
    fn summary(&self) -> crate::summary::Summary {
        crate::summary::Summary {
            name: Self::NAME,
            scalar: <Self::Scalar as Float>::NAME,
            inputs: IN,
            layers: Self::LAYERS,
            params: Self::PARAMS,
            flops: Self::FLOPS,
        }
    }

    /// Inference on a batch (dropout is the identity).
    fn forward(&self, x: &Batch<Self::Scalar, IN>) -> Batch<Self::Scalar, OUT>;

    /// An empty tape; it grows to the batch size on first use.
    fn new_tape(&self) -> Self::Tape;

    /// Gradients of zeros with this network's layout.
    fn zero_gradients(&self) -> Self::Gradients;

    /// Training-mode forward pass: records every activation (and dropout masks, drawn from
    /// `rng`) in `tape`; the output is in [`Tape::output_parts`]. Takes `&mut self` because
    /// training mode moves the statistics some layers keep (batch norm's running mean and
    /// variance), as PyTorch's `forward` in `train()` mode does.
    fn forward_train<R: Rng + ?Sized>(
        &mut self,
        x: BatchView<'_, Self::Scalar, IN>,
        tape: &mut Self::Tape,
        rng: &mut R,
    );

    /// Inference-mode forward pass that records `tape` like [`Network::forward_train`] but with
    /// dropout as the identity: evaluation with the loss's fused form (from the logits).
    fn forward_eval(&self, x: BatchView<'_, Self::Scalar, IN>, tape: &mut Self::Tape);

    /// Backward pass: from the gradient in the tape's output-gradient buffer (taken with
    /// respect to `wrt`), writes the gradient of every parameter into `grads` (overwriting).
    /// `x` must be the batch given to the matching `forward_train`.
    fn backward(
        &self,
        x: BatchView<'_, Self::Scalar, IN>,
        tape: &mut Self::Tape,
        wrt: GradientOf,
        grads: &mut Self::Gradients,
    );

    /// Backward pass fused with a plain SGD step: adds `scale · ∂L/∂θ` to every parameter `θ`
    /// (`scale = −lr`; `+lr` to maximize) instead of writing gradients. Every layer's input
    /// gradient is computed first, from the weights before the step; then each dense layer's
    /// update is its weight-gradient product itself (`W ← scale·dZ Xᵀ + W`), split over the
    /// kernel's threads, so the gradients are never stored, read back and checked in passes of
    /// their own.
    ///
    /// Unless every gradient is sure to be finite
    /// ([`kernel::weight_gradient_finite`](crate::kernel::weight_gradient_finite) of each dense
    /// layer's input and output gradient), it changes no parameter, writes the gradients into
    /// `grads` instead, from the same chain (exactly what [`Network::backward`] writes), and
    /// returns [`FusedStep::GradientsWritten`]: the caller then checks them and steps as usual.
    /// (Calling `backward` again instead would apply the in-place steps on the output
    /// gradient twice.) The default, for networks not generated by `network!`, is `backward`
    /// and `GradientsWritten`.
    fn backward_sgd(
        &mut self,
        x: BatchView<'_, Self::Scalar, IN>,
        tape: &mut Self::Tape,
        wrt: GradientOf,
        scale: Self::Scalar,
        grads: &mut Self::Gradients,
    ) -> FusedStep {
        let _ = scale;
        self.backward(x, tape, wrt, grads);
        FusedStep::GradientsWritten
    }

    /// Calls `f(tensor, parameter, gradient)` for every tensor, in visiting order.
    fn for_each_param_grad(
        &mut self,
        grads: &Self::Gradients,
        f: &mut ParamGradVisitor<'_, Self::Scalar>,
    );
}

/// A slice given to [`Network::predict_slice`] does not hold one sample: its length is not the
/// network's input width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the network takes {expected} inputs per sample, but the slice has {actual} values")]
pub struct InputLengthError {
    /// The network's input width `IN`.
    pub expected: usize,
    /// The slice's length.
    pub actual: usize,
}

/// Sizes a tape buffer for `len` values, growing only when a larger batch arrives (called by
/// generated code, through `__private`).
#[doc(hidden)]
#[inline]
pub fn ensure_len<T: Float>(buf: &mut Vec<T>, len: usize) {
    if buf.len() < len {
        buf.resize(len, T::zero());
    }
}
