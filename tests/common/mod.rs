//! Helpers shared by the integration tests; a test file includes them with `mod common;`.
//!
//! - [`fixtures`]: where the PyTorch golden fixtures are, reading them, and comparing against
//!   them with a relative tolerance while tracking the largest error.

// Every test binary compiles this module but uses only some of its helpers.
#![allow(dead_code)]

pub mod fixtures;
