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

pub use nn_macros::network;
/// The runtime every generated network uses (re-exported `nn-runtime`).
pub use nn_runtime as runtime;
pub use nn_runtime::{nalgebra, rand};

/// The README's example, compiled as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Everything a user of the DSL needs in scope: the macro, the runtime's prelude and the
/// nalgebra and rand items that appear in generated signatures.
pub mod prelude {
    pub use crate::network;
    pub use nn_runtime::prelude::*;
}
