//! The layers generated networks are built from.

mod dense;
mod dropout;

pub use dense::{parameter_count, saturating_parameter_count, Dense};
pub use dropout::{dropout_backward, dropout_forward, NoDraws};
