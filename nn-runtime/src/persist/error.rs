//! Why a file could not be saved or loaded, and every way it differs from the parameters.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One way a file differs from the parameters it is loaded into.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
            Mismatch::Missing(t) => write!(f, "missing tensor `{}`", Name(t)),
            Mismatch::Unexpected(t) => write!(f, "unexpected tensor `{}`", Name(t)),
            Mismatch::Dtype {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor `{}` has dtype {found}, expected {expected}",
                Name(tensor)
            ),
            Mismatch::Shape {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor `{}` has shape {}, expected {}",
                Name(tensor),
                Shape(found),
                Shape(expected)
            ),
        }
    }
}

/// Why the preprocessing saved with a model (`preprocess.*` tensors, `nn.preprocess.*`
/// entries) cannot be saved or loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessingProblem {
    /// The metadata names a kind of scaler this library does not know.
    #[error("`nn.preprocess.{scaler}` names the unknown kind `{}` (known: standardize, min_max)", Name(.kind))]
    UnknownKind {
        /// `input` or `target`.
        scaler: String,
        /// The kind named.
        kind: String,
    },
    /// A tensor the scaler needs is not in the file.
    #[error("the {scaler} scaler needs tensor `{tensor}`, which is missing")]
    Missing {
        /// `input` or `target`.
        scaler: String,
        /// The tensor's name.
        tensor: String,
    },
    /// A scaler's tensor is not 1-D `F64` of the network's width.
    #[error("tensor `{}` is {dtype} of shape {}, expected F64 of shape [{expected}] (the network's {what})", Name(.tensor), Shape(.shape), what = if .scaler == "input" { "inputs" } else { "outputs" })]
    Width {
        /// `input` or `target`.
        scaler: String,
        /// The tensor's name.
        tensor: String,
        /// Its dtype in the file (or in memory, on save).
        dtype: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The width expected: the network's inputs or outputs.
        expected: usize,
    },
    /// A `preprocess.*` tensor belongs to no scaler the metadata names.
    #[error("tensor `{}` belongs to no scaler named in `nn.preprocess.input` or `nn.preprocess.target`", Name(.0))]
    Unexpected(String),
    /// The scaler's values are invalid (a divisor that is zero or negative, say).
    #[error("the {scaler} scaler: {message}")]
    Invalid {
        /// `input` or `target`.
        scaler: String,
        /// What is wrong.
        message: String,
    },
}

/// Problems a message lists; the rest are counted.
const PROBLEMS_SHOWN: usize = 5;

/// The first [`PROBLEMS_SHOWN`] problems, `; `-separated, then `; … and N more`.
struct Problems<'a>(&'a [Mismatch]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(PROBLEMS_SHOWN).enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{p}")?;
        }
        match self.0.len().saturating_sub(PROBLEMS_SHOWN) {
            0 => Ok(()),
            more => write!(f, "; … and {more} more"),
        }
    }
}

/// As [`Problems`], as a list of their messages.
impl fmt::Debug for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for p in self.0.iter().take(PROBLEMS_SHOWN) {
            list.entry(&format_args!("{p}"));
        }
        match self.0.len().saturating_sub(PROBLEMS_SHOWN) {
            0 => {}
            more => {
                list.entry(&format_args!("… and {more} more"));
            }
        }
        list.finish()
    }
}

/// Why parameters or a checkpoint could not be saved or loaded.
///
/// Messages (and `Debug`) list at most five of a [`PersistError::Mismatch`]'s problems and
/// count the rest; the variant holds them all.
#[derive(thiserror::Error)]
#[non_exhaustive]
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
    #[error("{}: does not match the parameters: {}", .path.display(), Problems(.problems))]
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
    /// The file records another architecture (`nn.dsl`, compared without whitespace and
    /// widths) than the network it is loaded into; nothing was loaded.
    /// [`load_weights_into`](super::load_weights_into) loads it anyway when the tensors match.
    #[error(
        "{}: saved from another architecture: the file records `{}`, the network is `{}`; \
         `persist::load_weights_into` loads it anyway if the tensors' names and shapes match",
        .path.display(),
        Text(.recorded),
        Text(.expected)
    )]
    Architecture {
        /// The file.
        path: PathBuf,
        /// The DSL text the file records.
        recorded: String,
        /// The DSL text of the network it was loaded into.
        expected: String,
    },
    /// The preprocessing saved with the model does not fit the network or is malformed;
    /// nothing was loaded.
    #[error("{}: preprocessing: {problem}", .path.display())]
    Preprocessing {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: Box<PreprocessingProblem>,
    },
    /// A parameter or optimizer buffer holds NaN or an infinity: refused on load unless
    /// [`LoadOptions::allow_non_finite`](super::LoadOptions::allow_non_finite), and on save
    /// in debug builds.
    #[error(
        "{}: tensor `{}` holds the non-finite value {value} at index {index} (row-major)",
        .path.display(),
        Name(.tensor)
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the file (`dense0.weight`, `optim.dense0.weight.exp_avg`).
        tensor: String,
        /// The first such value's index in the tensor's row-major (file) order, as in
        /// PyTorch's `tensor.flatten()`.
        index: usize,
        /// The value (NaN or ±infinity).
        value: f64,
    },
}

/// Like the derived `Debug`, with the problems of a `Mismatch` shortened as in its message.
impl fmt::Debug for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => f
                .debug_struct("Io")
                .field("path", path)
                .field("source", source)
                .finish(),
            Self::Format { path, message } => f
                .debug_struct("Format")
                .field("path", path)
                .field("message", message)
                .finish(),
            Self::Mismatch { path, problems } => f
                .debug_struct("Mismatch")
                .field("path", path)
                .field("problems", &Problems(problems))
                .finish(),
            Self::Checkpoint { path, message } => f
                .debug_struct("Checkpoint")
                .field("path", path)
                .field("message", message)
                .finish(),
            Self::Architecture {
                path,
                recorded,
                expected,
            } => f
                .debug_struct("Architecture")
                .field("path", path)
                .field("recorded", &Text(recorded).to_string())
                .field("expected", &Text(expected).to_string())
                .finish(),
            Self::Preprocessing { path, problem } => f
                .debug_struct("Preprocessing")
                .field("path", path)
                .field("problem", problem)
                .finish(),
            Self::NonFinite {
                path,
                tensor,
                index,
                value,
            } => f
                .debug_struct("NonFinite")
                .field("path", path)
                .field("tensor", &Name(tensor).to_string())
                .field("index", index)
                .field("value", value)
                .finish(),
        }
    }
}

/// Bytes of a name shown in a message (a hostile file's names can be megabytes long).
const NAME_SHOWN: usize = 80;

/// Bytes of a recorded text (a DSL) shown in a message.
const TEXT_SHOWN: usize = 400;

/// Dimensions of a shape shown in a message.
const DIMS_SHOWN: usize = 8;

/// A tensor name as messages show it: cut after [`NAME_SHOWN`] bytes (at a character
/// boundary), with its full length.
pub(super) struct Name<'a>(pub(super) &'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cut(f, self.0, NAME_SHOWN)
    }
}

/// A longer text (a DSL) as messages show it: cut after [`TEXT_SHOWN`] bytes.
pub(super) struct Text<'a>(pub(super) &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cut(f, self.0, TEXT_SHOWN)
    }
}

/// `s`, or its first `limit` bytes (at a character boundary) and its full length.
fn cut(f: &mut fmt::Formatter<'_>, s: &str, limit: usize) -> fmt::Result {
    if s.len() <= limit {
        return f.write_str(s);
    }
    let at = (0..=limit)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    write!(f, "{}… ({} bytes)", &s[..at], s.len())
}

/// A shape as messages show it: `[3, 4]`, or the first [`DIMS_SHOWN`] dimensions and a count.
pub(super) struct Shape<'a>(pub(super) &'a [usize]);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = self.0;
        if dims.len() <= DIMS_SHOWN {
            return write!(f, "{dims:?}");
        }
        let shown = format!("{:?}", &dims[..DIMS_SHOWN]);
        write!(
            f,
            "{}, … ({} dimensions)]",
            &shown[..shown.len() - 1],
            dims.len()
        )
    }
}
