//! Why a file could not be saved or loaded, and every way it differs from the parameters.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One way a file differs from the parameters it is loaded into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// A tensor the parameters need is not in the file.
    Missing(String),
    /// The file has a tensor the parameters do not.
    Unexpected(String),
    /// A tensor has another dtype.
    Dtype {
        /// Tensor name.
        tensor: String,
        /// Dtype expected (`F32`/`F64`).
        expected: String,
        /// Dtype in the file.
        found: String,
    },
    /// A tensor has another shape.
    Shape {
        /// Tensor name.
        tensor: String,
        /// Shape expected.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Missing(t) => write!(f, "missing tensor `{t}`"),
            Mismatch::Unexpected(t) => write!(f, "unexpected tensor `{t}`"),
            Mismatch::Dtype {
                tensor,
                expected,
                found,
            } => {
                write!(
                    f,
                    "tensor `{tensor}` has dtype {found}, expected {expected}"
                )
            }
            Mismatch::Shape {
                tensor,
                expected,
                found,
            } => {
                write!(
                    f,
                    "tensor `{tensor}` has shape {found:?}, expected {expected:?}"
                )
            }
        }
    }
}

fn join(problems: &[Mismatch]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why parameters or a checkpoint could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading, writing or renaming a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{}: not a valid safetensors file: {message}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file's tensors do not match the parameters; nothing was loaded.
    #[error("{}: does not match the parameters: {}", .path.display(), join(.problems))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Every difference found.
        problems: Vec<Mismatch>,
    },
    /// The checkpoint's own entries are missing or malformed.
    #[error("{}: invalid checkpoint: {message}", .path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
