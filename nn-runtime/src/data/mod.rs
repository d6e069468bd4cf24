//! Data sets: in-memory [`Dataset`]s of samples and labels, loaders for MNIST's IDX files and
//! for CSV, preprocessing (standardization, min-max scaling, one-hot) and seeded mini-batch
//! orders that reshuffle without copying the data.
//!
//! Every loader validates what it reads and reports problems as a [`DataError`] naming the
//! file and the sample, line or column at fault; nothing here panics on bad input.

pub mod batches;
pub mod csv;
pub mod dataset;
pub mod mnist;
pub mod preprocess;

pub use batches::BatchOrder;
pub use dataset::{Dataset, Labels};
pub use preprocess::{one_hot, MinMaxScaler, Preprocessing, Scaler, ScalerKind, Standardizer};

use std::path::PathBuf;

/// Why a data set could not be built, loaded or transformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An input value is NaN or infinite.
    #[error("sample {sample}, feature {feature}: value {value} is not finite")]
    NonFinite {
        /// Sample index.
        sample: usize,
        /// Feature (row) index within the sample.
        feature: usize,
        /// The offending value.
        value: f64,
    },
    /// A target value is NaN or infinite.
    #[error("sample {sample}, target {row}: value {value} is not finite")]
    NonFiniteTarget {
        /// Sample index.
        sample: usize,
        /// Row within the sample's target vector.
        row: usize,
        /// The offending value.
        value: f64,
    },
    /// A class label is not below the number of classes.
    #[error("sample {sample}: label {label} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Sample index.
        sample: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// Two lengths that must agree do not.
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        /// What was being measured.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A sample index is out of range.
    #[error("sample index {index} is out of range for a data set of {len} samples")]
    Index {
        /// The index.
        index: usize,
        /// Number of samples.
        len: usize,
    },
    /// The data set's labels are not of the kind an operation needs.
    #[error("the data set has {found}, but {needed} are needed")]
    LabelKind {
        /// The kind needed (`class labels` or `target vectors`).
        needed: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// An argument is outside its valid range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents are malformed.
    #[error("{}: {message}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CSV record is malformed.
    #[error("{}:{line}{}: {message}", .path.display(), column_suffix(.column))]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column number and its header name, when the problem is in one column.
        column: Option<(usize, Option<String>)>,
        /// What is wrong.
        message: String,
    },
}

fn column_suffix(column: &Option<(usize, Option<String>)>) -> String {
    match column {
        None => String::new(),
        Some((c, None)) => format!(", column {c}"),
        Some((c, Some(name))) => format!(", column {c} (`{name}`)"),
    }
}
