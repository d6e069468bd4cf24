//! # nn — neural networks compiled at build time
//!
//! Write a network once in a small DSL; the [`network!`] macro checks every shape at compile
//! time and generates a statically-shaped [`nalgebra`] struct with inference, training-mode
//! forward and backward code. The runtime ([`runtime`], glob-imported by [`prelude`]) supplies
//! what every network shares: activations, losses, optimizers, training, data and persistence.
//!
//! ```
//! use nn::prelude::*;
//!
//! network! {
//!     /// A tiny classifier.
//!     pub Tiny < dense(4 -> 8, relu), dropout(0.1), dense(8 -> 3, softmax) >
//! }
//!
//! let mut rng = StdRng::seed_from_u64(7);
//! let net = Tiny::new(&mut rng);
//! let probs: SVector<f32, 3> = net.predict(&SVector::<f32, 4>::repeat(0.5));
//! assert!((probs.sum() - 1.0).abs() < 1e-5);
//! assert_eq!(Tiny::PARAMS, 4 * 8 + 8 + 8 * 3 + 3);
//! ```
#![deny(missing_docs)]

// Lets generated code name this crate `::nn` from inside it too (doctests).
extern crate self as nn;

/// Defines a statically shaped network (the DSL reference is `docs/dsl.md`, every
/// compile-time error `docs/diagnostics.md`).
///
/// `network! { [attributes] [visibility] Name [: f32 | f64] < layers > }` generates the
/// struct `Name` (one [`Dense`](runtime::layer::Dense) field per `dense` layer),
/// `NameGradients`, `NameTape`, the consts `INPUTS`, `OUTPUTS`, `PARAMS`, `FLOPS`, `DSL`,
/// `LAYERS`, the methods `new`, `predict`, `forward`, `forward_train`, `forward_eval`,
/// `backward`, `backward_sgd` (backward fused with a plain SGD step), `summary`, and impls
/// of [`runtime::Network`] and [`runtime::Parameters`].
/// A dense layer computes $Z = W X + b \mathbf 1^\top$ with $W$ of `OUT x IN`; the counts
/// are $\text{PARAMS} = \sum (\text{IN} \cdot \text{OUT} + \text{OUT})$ and
/// $\text{FLOPS} = \sum \text{IN} \cdot \text{OUT}$ multiply-adds per sample.
///
/// ```
/// use nn::prelude::*;
///
/// network! {
///     /// Handwritten-digit classifier.
///     #[derive(Clone, Debug)]
///     pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
/// }
///
/// assert_eq!(Mnist::PARAMS, 784 * 128 + 128 + 128 * 10 + 10); // 101,770
/// assert_eq!(Mnist::FLOPS, 784 * 128 + 128 * 10); // 101,632
///
/// let net = Mnist::new(&mut StdRng::seed_from_u64(7));
/// // One sample, on the stack: ten probabilities.
/// let p: SVector<f32, 10> = net.predict(&SVector::<f32, 784>::repeat(0.5));
/// assert!((p.sum() - 1.0).abs() < 1e-5);
/// // A batch of three samples, one column each: the same as three single predictions.
/// let x = Batch::<f32, 784>::from_fn(3, |i, j| ((i + j) % 7) as f32 / 7.0);
/// let out = net.forward(&x);
/// assert_eq!(out.shape(), (10, 3));
/// let first: SVector<f32, 784> = x.column(0).into_owned();
/// assert!((out.column(0) - net.predict(&first)).abs().max() < 1e-5);
/// ```
///
/// Widths that do not fit are compile errors, under the offending layer:
///
/// ```compile_fail
/// use nn::prelude::*;
/// network! { Broken < dense(784 -> 100, relu), dense(128 -> 10, softmax) > }
/// ```
pub use nn_macros::network;
/// The runtime every generated network uses (re-exported `nn-runtime`).
pub use nn_runtime as runtime;
pub use nn_runtime::{nalgebra, rand};

/// The README's example, compiled as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The book's introduction: its example compiles.
#[doc = include_str!("../docs/introduction.md")]
#[cfg(doctest)]
pub struct IntroductionDoctests;

/// The book's DSL reference: every example compiles and runs.
#[doc = include_str!("../docs/dsl.md")]
#[cfg(doctest)]
pub struct DslReferenceDoctests;

/// The book's backpropagation page: its gradient check runs.
#[doc = include_str!("../docs/backpropagation.md")]
#[cfg(doctest)]
pub struct BackpropagationDoctests;

/// The book's training guide: every snippet compiled (and run unless `no_run`).
#[doc = include_str!("../docs/training.md")]
#[cfg(doctest)]
pub struct TrainingGuideDoctests;

/// The book's regularization page: its L1/L2 example runs as a doctest.
#[doc = include_str!("../docs/regularization.md")]
#[cfg(doctest)]
pub struct RegularizationDoctests;

/// Everything a user of the DSL needs in scope: the macro, the runtime's prelude and the
/// nalgebra and rand items that appear in generated signatures.
pub mod prelude {
    pub use crate::network;
    pub use nn_runtime::prelude::*;
}
