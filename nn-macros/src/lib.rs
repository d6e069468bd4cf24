//! The `network!` macro of the `nn` crate (which re-exports it as `nn::network!` and documents
//! it there): a small DSL for dense networks whose shapes are checked at compile time.
//!
//! This crate is a thin entry point over three passes, each an ordinary module working on
//! `proc_macro2` tokens so it is unit tested without a compiler:
//! `parse` (tokens to an AST with spans), `check` (shape inference and validation to a
//! typed IR, collecting every error) and `expand` (IR to Rust code); the private modules are
//! described in docs/architecture.md, and their output in docs/generated-code.md.
#![deny(missing_docs)]

mod ast;
mod check;
mod diag;
mod expand;
#[cfg(test)]
mod fuzz;
mod ir;
mod parse;
#[cfg(test)]
mod snapshots;
mod suggest;
mod table;

use proc_macro::TokenStream;

/// Defines a statically shaped network. See the crate `nn` for the full DSL reference
/// (docs/dsl.md in the repository).
///
/// The generated code names the runtime (`::nn::runtime`, or `::nn_runtime` for a crate that
/// depends on `nn-runtime` directly), so the runnable examples are on the re-export
/// `nn::network`, where the runtime is in scope; this crate's own doctests could not build it.
///
/// ```text
/// network! {
///     /// Handwritten-digit classifier.
///     #[derive(Clone, Debug)]
///     pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
/// }
/// ```
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    let runtime = expand::runtime_path();
    expand::network(input.into(), &runtime).into()
}
