//! The layers generated networks are built from.

pub(crate) mod dense;
pub(crate) mod dropout;

pub use dense::Dense;
