//! Helpers shared by the fixture tests: where the PyTorch fixtures are and how to compare.

use serde_json::Value;
use std::path::PathBuf;

/// The fixture directory: `NN_FIXTURES_DIR` if set, else the in-repository copy.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("NN_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch"))
}

/// Loads one fixture file.
pub fn load(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A number.
pub fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

/// A list of numbers.
pub fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, found {v}"))
        .iter()
        .map(num)
        .collect()
}

/// A list of lists of numbers (rows).
pub fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a matrix, found {v}"))
        .iter()
        .map(vector)
        .collect()
}

/// Compares values with a tolerance on the error `|got - want| / max(|got|, |want|, 1e-3)`
/// (relative, or absolute where both are below 1e-3) and remembers the largest error.
pub struct Tracker {
    tol: f64,
    /// The largest error seen.
    pub worst: f64,
    /// Where it was seen.
    pub at: String,
}

impl Tracker {
    /// A tracker failing above `tol`.
    pub fn new(tol: f64) -> Self {
        Self {
            tol,
            worst: 0.0,
            at: String::new(),
        }
    }

    /// Checks one value.
    pub fn check(&mut self, what: impl Fn() -> String, got: f64, want: f64) {
        self.check_within(what, got, want, self.tol);
    }

    /// Checks one value against its own tolerance (for values whose error bound depends on
    /// the input, such as rounding the input to f32).
    pub fn check_within(&mut self, what: impl Fn() -> String, got: f64, want: f64, tol: f64) {
        let err = if got == want {
            0.0
        } else {
            (got - want).abs() / got.abs().max(want.abs()).max(1e-3)
        };
        assert!(
            err <= tol,
            "{}: got {got:e}, PyTorch {want:e} (error {err:e} > {tol:e})",
            what()
        );
        if err > self.worst || self.at.is_empty() {
            self.worst = err;
            self.at = what();
        }
    }
}
