//! The PyTorch golden fixtures (`tests/fixtures/pytorch/*.json`): where they are, how to read
//! them, and how to compare a computed value with a fixture value.
//!
//! Comparisons use the error `|got - want| / max(|want|, ABS_FLOOR)`: relative for values of
//! magnitude at least [`ABS_FLOOR`], absolute (scaled by `ABS_FLOOR`) below it, where a
//! relative error says little (a derivative of `1e-20` computed with a different rounding).
//! The `_scaled` variants take another floor, for quantities whose rounding error is absolute
//! at a known scale.
//! [`MaxRelError`] checks values against a tolerance and remembers the largest error and
//! where it occurred, for the test's report.

use serde_json::Value;
use std::path::PathBuf;

/// Below this magnitude of the expected value, errors are measured against `ABS_FLOOR`
/// instead of the value itself.
pub const ABS_FLOOR: f64 = 1e-3;

/// The fixture directory: `NN_FIXTURES_DIR` if set (to run the same tests on another fixture
/// set), else `tests/fixtures/pytorch` in this repository.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("NN_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pytorch"
        )),
    }
}

/// Reads and parses the fixture file `name` (e.g. `"losses.json"`); panics with the path on
/// error.
pub fn load(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON number; panics naming `v` otherwise.
pub fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

/// A JSON list of numbers.
pub fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list of numbers, found {v}"))
        .iter()
        .map(num)
        .collect()
}

/// A JSON list of lists of numbers (a row-major matrix, one row per sample); panics if the
/// rows differ in length.
pub fn matrix(v: &Value) -> Vec<Vec<f64>> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of lists, found {v}"))
        .iter()
        .map(vector)
        .collect();
    if let Some(first) = rows.first() {
        assert!(
            rows.iter().all(|r| r.len() == first.len()),
            "ragged matrix {v}"
        );
    }
    rows
}

/// `|got - want| / max(|want|, ABS_FLOOR)`; 0 when equal (infinities included), infinite when
/// either is NaN and they are not both NaN.
pub fn rel_error(got: f64, want: f64) -> f64 {
    rel_error_scaled(got, want, ABS_FLOOR)
}

/// `|got - want| / max(|want|, scale)`: [`rel_error`] with another floor, for values whose
/// rounding error is absolute at some `scale` (a log-probability near 0 is `ln Σ` of a sum
/// near 1, wrong by about ε whatever its size).
pub fn rel_error_scaled(got: f64, want: f64, scale: f64) -> f64 {
    if got == want || (got.is_nan() && want.is_nan()) {
        0.0
    } else {
        let err = (got - want).abs() / want.abs().max(scale);
        if err.is_nan() {
            f64::INFINITY
        } else {
            err
        }
    }
}

/// Panics unless [`rel_error`]`(got, want) <= rel_tol`.
pub fn assert_close(what: &str, got: f64, want: f64, rel_tol: f64) {
    let err = rel_error(got, want);
    assert!(
        err <= rel_tol,
        "{what}: got {got:e}, want {want:e} (relative error {err:.3e} > {rel_tol:.1e})"
    );
}

/// Tracks the largest [`rel_error`] seen, and where.
#[derive(Clone, Debug, Default)]
pub struct MaxRelError {
    worst: f64,
    at: String,
    count: usize,
}

impl MaxRelError {
    /// No error seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the [`rel_error`] of `got` against `want` without checking it; `what` names the
    /// value (called only when it is the largest so far). Returns the error.
    pub fn record(&mut self, what: impl FnOnce() -> String, got: f64, want: f64) -> f64 {
        self.record_scaled(what, got, want, ABS_FLOOR)
    }

    /// Records the [`rel_error_scaled`] of `got` against `want`.
    pub fn record_scaled(
        &mut self,
        what: impl FnOnce() -> String,
        got: f64,
        want: f64,
        scale: f64,
    ) -> f64 {
        let err = rel_error_scaled(got, want, scale);
        self.count += 1;
        if err > self.worst || self.at.is_empty() {
            self.worst = err;
            self.at = what();
        }
        err
    }

    /// Records the [`rel_error`] and panics if it exceeds `rel_tol` (as [`assert_close`]).
    pub fn check(&mut self, what: impl Fn() -> String, got: f64, want: f64, rel_tol: f64) {
        self.check_scaled(what, got, want, ABS_FLOOR, rel_tol);
    }

    /// Records the [`rel_error_scaled`] and panics if it exceeds `rel_tol`.
    pub fn check_scaled(
        &mut self,
        what: impl Fn() -> String,
        got: f64,
        want: f64,
        scale: f64,
        rel_tol: f64,
    ) {
        let err = self.record_scaled(&what, got, want, scale);
        assert!(
            err <= rel_tol,
            "{}: got {got:e}, want {want:e} (error {err:.3e} relative to max(|want|, {scale:e}) \
             > {rel_tol:.1e})",
            what()
        );
    }

    /// The largest error seen (0 if none).
    pub fn worst(&self) -> f64 {
        self.worst
    }

    /// Where the largest error was seen.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// How many values were compared.
    pub fn count(&self) -> usize {
        self.count
    }

    /// `"{worst:.2e} at {at} ({count} values)"`, for the test's report.
    pub fn summary(&self) -> String {
        format!("{:.2e} at {} ({} values)", self.worst, self.at, self.count)
    }
}
