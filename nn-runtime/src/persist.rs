//! Saving and loading parameters and training checkpoints as safetensors files.
//!
//! # Layout
//! Tensors are named as in [`TensorInfo::name`] (`dense0.weight`, `dense0.bias`, ...) and
//! stored in PyTorch's `nn.Linear` convention, so the file loads into PyTorch directly:
//! a weight (`OUT x IN`) has shape `[OUT, IN]` in **row-major** order, which is the
//! transpose of how we store it (column-major), so saving transposes and loading transposes
//! back; a bias has shape `[OUT]`. Values are little-endian `F32` or `F64` after the scalar
//! type, which must match on load (no silent conversion).
//!
//! The header's `__metadata__` holds `format = pt`, `nn.network` (the type name),
//! `nn.dsl` (its layer list), `nn.scalar` (`f32`/`f64`) and `nn.version` (this crate's version).
//!
//! # Checkpoints
//! A [`Checkpoint`] adds the optimizer's buffers as tensors `optim.<buffer name>` (flat, 1-D,
//! in the optimizer's own column-major order) and `nn.epoch`, `nn.optim.name`,
//! `nn.optim.step`, `nn.optim.lr`, `nn.optim.buffers` (the buffer names in order, JSON) and
//! `nn.extra` (JSON) to the metadata, so training resumes exactly.
//!
//! # Safety of files
//! Saves are atomic: the bytes go to a temporary file in the target's directory, which is
//! fsynced and renamed over the target (and the directory fsynced on unix), so the target is
//! always either the old file or the new one. A save killed before its rename leaves its
//! temporary file (`<name>.tmp.<pid>.<n>`); the next successful save of that target removes
//! it. Loads check every tensor's name, dtype and
//! shape before changing anything, and malformed files give a [`PersistError`] naming the file.

use crate::network::{Network, Parameters, TensorInfo};
use crate::optim::OptimizerState;
use crate::scalar::Float;
use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a parameter file says about the network it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The network's type name (`nn.network`).
    pub network: String,
    /// The network's DSL layer list (`nn.dsl`).
    pub dsl: String,
    /// The scalar type, `f32` or `f64` (`nn.scalar`).
    pub scalar: String,
    /// The version of `nn-runtime` that wrote the file (`nn.version`).
    pub version: String,
}

impl Metadata {
    /// Metadata for a network described by name, DSL and scalar type, with this crate's version.
    pub fn new(network: &str, dsl: &str, scalar: &str) -> Self {
        let version = env!("CARGO_PKG_VERSION").to_owned();
        Self {
            network: network.to_owned(),
            dsl: dsl.to_owned(),
            scalar: scalar.to_owned(),
            version,
        }
    }

    /// The metadata of network type `N`.
    pub fn of<N: Network<IN, OUT>, const IN: usize, const OUT: usize>() -> Self {
        Self::new(N::NAME, N::DSL, <N::Scalar as Float>::NAME)
    }

    fn to_map(&self) -> HashMap<String, String> {
        let pairs = [
            ("format", "pt"),
            ("nn.network", &self.network),
            ("nn.dsl", &self.dsl),
            ("nn.scalar", &self.scalar),
            ("nn.version", &self.version),
        ];
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn from_map(map: Option<&HashMap<String, String>>) -> Self {
        let get = |k: &str| map.and_then(|m| m.get(k)).cloned().unwrap_or_default();
        Self {
            network: get("nn.network"),
            dsl: get("nn.dsl"),
            scalar: get("nn.scalar"),
            version: get("nn.version"),
        }
    }
}

/// A training checkpoint: what, besides the parameters, training needs to resume exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    /// Epochs completed.
    pub epoch: u64,
    /// The optimizer's state (name, step, learning rate, buffers).
    pub optimizer: OptimizerState<T>,
    /// Anything else the trainer wants back (history, schedule state, ...).
    pub extra: serde_json::Value,
}

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

/// An owned tensor to serialize.
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of<T: Float>() -> Dtype {
    if T::NAME == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

fn encode<T: Float>(values: impl Iterator<Item = T>) -> Vec<u8> {
    match dtype_of::<T>() {
        Dtype::F64 => values.flat_map(|v| v.to_f64().to_le_bytes()).collect(),
        _ => values
            .flat_map(|v| (v.to_f64() as f32).to_le_bytes())
            .collect(),
    }
}

/// Decodes little-endian values of `T`'s dtype (the dtype was checked by the caller).
fn decode<T: Float>(bytes: &[u8]) -> Vec<T> {
    match dtype_of::<T>() {
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| {
                T::of(f64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            })
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| T::of(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
            .collect(),
    }
}

/// A tensor's shape in the file: `[rows]` for a bias, `[rows, cols]` otherwise.
fn file_shape(t: &TensorInfo) -> Vec<usize> {
    if t.is_bias && t.cols == 1 {
        vec![t.rows]
    } else {
        vec![t.rows, t.cols]
    }
}

/// The parameters as file tensors: column-major `rows x cols` written row-major.
fn param_tensors<T: Float, P: Parameters<T>>(params: &P) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(P::TENSORS.len());
    params.for_each_tensor(&mut |t, v| {
        let (rows, cols) = (t.rows, t.cols);
        let data = encode((0..rows * cols).map(|k| v[(k % cols) * rows + k / cols]));
        out.push((
            t.name.to_owned(),
            Tensor {
                dtype: dtype_of::<T>(),
                shape: file_shape(t),
                data,
            },
        ));
    });
    out
}

/// Saves `params` with `meta` to `path`, atomically.
pub fn save_parameters<T: Float, P: Parameters<T>>(
    params: &P,
    meta: &Metadata,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    write_tensors(path.as_ref(), param_tensors(params), meta.to_map())
}

/// Loads parameters saved by [`save_parameters`] (or a checkpoint, or PyTorch's
/// `save_file(model.state_dict())` with the same names) into `params`. Every tensor's name,
/// dtype and shape is checked against [`Parameters::TENSORS`] first; on any difference
/// nothing is changed and the error lists all of them. `optim.*` tensors are ignored.
pub fn load_parameters_into<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
) -> Result<Metadata, PersistError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let decoded = check_parameters::<T, P>(path, &st, None)?;
    apply(params, &decoded);
    Ok(Metadata::from_map(metadata_of(path, &bytes)?.as_ref()))
}

/// Saves a network's parameters with its metadata, atomically.
pub fn save<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &N,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    save_parameters(net, &Metadata::of::<N, IN, OUT>(), path)
}

/// Loads a file's parameters into an existing network (all or nothing); returns the file's
/// metadata, which may name another network: only the tensors must match.
pub fn load_into<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    path: impl AsRef<Path>,
) -> Result<Metadata, PersistError> {
    load_parameters_into(net, path)
}

/// A network of type `N` with the parameters of a file.
pub fn load<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    path: impl AsRef<Path>,
) -> Result<N, PersistError> {
    let mut net = N::init(&mut StdRng::seed_from_u64(0));
    load_parameters_into(&mut net, path)?;
    Ok(net)
}

/// Saves parameters and a training checkpoint in one safetensors file, atomically.
pub fn save_checkpoint<T: Float, P: Parameters<T>>(
    params: &P,
    meta: &Metadata,
    checkpoint: &Checkpoint<T>,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    let path = path.as_ref();
    let opt = &checkpoint.optimizer;
    let names: Vec<&str> = opt.buffers.iter().map(|(n, _)| n.as_str()).collect();
    if let Some((i, n)) = names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
    {
        let message = format!("optimizer buffer `{n}` appears twice (at {i})");
        return Err(PersistError::Checkpoint {
            path: path.to_path_buf(),
            message,
        });
    }
    let mut tensors = param_tensors(params);
    for (name, values) in &opt.buffers {
        let t = Tensor {
            dtype: dtype_of::<T>(),
            shape: vec![values.len()],
            data: encode(values.iter().copied()),
        };
        tensors.push((format!("optim.{name}"), t));
    }
    let mut map = meta.to_map();
    map.insert("nn.epoch".into(), checkpoint.epoch.to_string());
    map.insert("nn.optim.name".into(), opt.name.clone());
    map.insert("nn.optim.step".into(), opt.step.to_string());
    map.insert("nn.optim.lr".into(), opt.lr.to_string());
    map.insert(
        "nn.optim.buffers".into(),
        serde_json::Value::from(names).to_string(),
    );
    map.insert("nn.extra".into(), checkpoint.extra.to_string());
    write_tensors(path, tensors, map)
}

/// Loads a checkpoint saved by [`save_checkpoint`]: the parameters into `params` and the
/// rest returned. Everything (tensors, optimizer buffers, metadata entries) is checked before
/// `params` is touched.
pub fn load_checkpoint_into<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
) -> Result<(Metadata, Checkpoint<T>), PersistError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let map = metadata_of(path, &bytes)?.unwrap_or_default();
    let bad = |message: String| PersistError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let get = |k: &str| {
        map.get(k)
            .ok_or_else(|| bad(format!("no `{k}` entry in the metadata")))
    };
    let num = |k: &str| {
        get(k)?
            .parse::<u64>()
            .map_err(|e| bad(format!("`{k}`: {e}")))
    };
    let epoch = num("nn.epoch")?;
    let name = get("nn.optim.name")?.clone();
    let step = num("nn.optim.step")?;
    let lr: f64 = get("nn.optim.lr")?
        .parse()
        .map_err(|e| bad(format!("`nn.optim.lr`: {e}")))?;
    let names: Vec<String> = serde_json::from_str(get("nn.optim.buffers")?)
        .map_err(|e| bad(format!("`nn.optim.buffers`: {e}")))?;
    let extra =
        serde_json::from_str(get("nn.extra")?).map_err(|e| bad(format!("`nn.extra`: {e}")))?;
    let buffer_names: Vec<String> = names.iter().map(|n| format!("optim.{n}")).collect();
    let decoded = check_parameters::<T, P>(path, &st, Some(&buffer_names))?;
    let mut problems = Vec::new();
    let mut buffers = Vec::with_capacity(names.len());
    for (name, full) in names.iter().zip(&buffer_names) {
        match st.tensor(full) {
            Err(_) => problems.push(Mismatch::Missing(full.clone())),
            Ok(v) if v.dtype() != dtype_of::<T>() => problems.push(Mismatch::Dtype {
                tensor: full.clone(),
                expected: format!("{:?}", dtype_of::<T>()),
                found: format!("{:?}", v.dtype()),
            }),
            Ok(v) if v.shape().len() != 1 => problems.push(Mismatch::Shape {
                tensor: full.clone(),
                expected: vec![v.shape().iter().product()],
                found: v.shape().to_vec(),
            }),
            Ok(v) => buffers.push((name.clone(), decode::<T>(v.data()))),
        }
    }
    if !problems.is_empty() {
        return Err(PersistError::Mismatch {
            path: path.to_path_buf(),
            problems,
        });
    }
    apply(params, &decoded);
    let optimizer = OptimizerState {
        name,
        step,
        lr,
        buffers,
    };
    Ok((
        Metadata::from_map(Some(&map)),
        Checkpoint {
            epoch,
            optimizer,
            extra,
        },
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, PersistError> {
    fs::read(path).map_err(|source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, PersistError> {
    SafeTensors::deserialize(bytes).map_err(|e| PersistError::Format {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })
}

fn metadata_of(path: &Path, bytes: &[u8]) -> Result<Option<HashMap<String, String>>, PersistError> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| PersistError::Format {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })?;
    Ok(meta.metadata().clone())
}

/// Checks the file against `P::TENSORS`, also allowing the `extra` names (or, if `None`, any
/// `optim.*` tensor); on success, every tensor decoded column-major, in `TENSORS` order.
fn check_parameters<T: Float, P: Parameters<T>>(
    path: &Path,
    st: &SafeTensors<'_>,
    extra: Option<&[String]>,
) -> Result<Vec<Vec<T>>, PersistError> {
    let mut problems = Vec::new();
    let mut decoded = Vec::with_capacity(P::TENSORS.len());
    for t in P::TENSORS {
        let Ok(view) = st.tensor(t.name) else {
            problems.push(Mismatch::Missing(t.name.to_owned()));
            continue;
        };
        if view.dtype() != dtype_of::<T>() {
            let (expected, found) = (
                format!("{:?}", dtype_of::<T>()),
                format!("{:?}", view.dtype()),
            );
            problems.push(Mismatch::Dtype {
                tensor: t.name.to_owned(),
                expected,
                found,
            });
        } else if view.shape() != file_shape(t).as_slice() {
            let (expected, found) = (file_shape(t), view.shape().to_vec());
            problems.push(Mismatch::Shape {
                tensor: t.name.to_owned(),
                expected,
                found,
            });
        } else {
            let row_major = decode::<T>(view.data());
            let (rows, cols) = (t.rows, t.cols);
            decoded.push(
                (0..rows * cols)
                    .map(|k| row_major[(k % rows) * cols + k / rows])
                    .collect(),
            );
        }
    }
    let mut unexpected: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !P::TENSORS.iter().any(|t| t.name == n.as_str()))
        .filter(|n| extra.map_or(!n.starts_with("optim."), |e| !e.contains(n)))
        .cloned()
        .collect();
    unexpected.sort();
    problems.extend(unexpected.into_iter().map(Mismatch::Unexpected));
    if problems.is_empty() {
        Ok(decoded)
    } else {
        Err(PersistError::Mismatch {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// Overwrites the parameters from checked, decoded tensors (indexed like `TENSORS`).
fn apply<T: Float, P: Parameters<T>>(params: &mut P, decoded: &[Vec<T>]) {
    params.for_each_tensor_mut(&mut |t, v| {
        if let Some(src) = decoded.get(t.index).filter(|s| s.len() == v.len()) {
            v.copy_from_slice(src);
        }
    });
}

fn write_tensors(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    meta: HashMap<String, String>,
) -> Result<(), PersistError> {
    let bytes = safetensors::serialize(tensors, &Some(meta)).map_err(|e| PersistError::Format {
        path: path.to_path_buf(),
        message: format!("cannot serialize: {e:?}"),
    })?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Numbers the temporary files of this process's saves.
static SAVES: AtomicU64 = AtomicU64::new(0);

/// Writes a file atomically: `write` fills a fresh temporary file next to `path`, which is
/// fsynced and renamed over `path`, and the directory fsynced; on any failure the temporary
/// file is removed and `path` is untouched.
///
/// The temporary file is `<name>.tmp.<process id>.<counter>`, locked (advisory, `flock` on
/// unix) while it is written. A process killed mid-save leaves its temporary file behind,
/// unlocked; every successful save of the same target removes such leftovers (those it can
/// lock), so they never accumulate. A live writer's file is locked and left alone.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), PersistError> {
    let err = |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!("{}.tmp.", name.to_string_lossy());
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let n = SAVES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{prefix}{}.{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => break (tmp, file),
            // Left by a killed process that had our (reused) process id: try the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => attempts += 1,
            Err(e) => return Err(err(e)),
        }
    };
    // Where advisory locks are unsupported, saves still work; leftovers are then kept.
    let _ = file.lock();
    let result = write(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    drop(file);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    sync_dir(dir).map_err(err)?;
    remove_leftovers(dir, &prefix);
    Ok(())
}

/// Removes `<prefix><digits>.<digits>` files in `dir` that nobody holds locked: temporary
/// files of saves killed before their rename. Failures are ignored (the next save retries).
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temporary = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(pid, n)| {
                [pid, n]
                    .iter()
                    .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            });
        if !is_temporary {
            continue;
        }
        let leftover = entry.path();
        if let Ok(f) = File::open(&leftover) {
            if f.try_lock().is_ok() {
                let _ = fs::remove_file(&leftover);
            }
        }
    }
}

/// Makes a rename durable by fsyncing the directory (unix only; some file systems refuse
/// to fsync a directory, which is not an error).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() != io::ErrorKind::InvalidInput => return Err(e),
        _ => {}
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn info(
        index: usize,
        name: &'static str,
        rows: usize,
        cols: usize,
        is_bias: bool,
    ) -> TensorInfo {
        TensorInfo {
            index,
            name,
            rows,
            cols,
            is_bias,
            l1: 0.0,
            l2: 0.0,
        }
    }

    /// Parameter layouts: 0 is the reference; 1 and 2 differ from it.
    const LAYOUTS: [&[TensorInfo]; 3] = [
        &[
            info(0, "dense0.weight", 3, 2, false),
            info(1, "dense0.bias", 3, 1, true),
        ],
        &[
            info(0, "dense0.weight", 2, 3, false),
            info(1, "dense0.bias", 3, 1, true),
            info(2, "dense1.weight", 1, 3, false),
        ],
        &[info(0, "dense0.weight", 3, 2, false)],
    ];

    /// A hand-written parameter set with layout `K`.
    #[derive(Clone, Debug, PartialEq)]
    struct Flat<T, const K: usize>(Vec<Vec<T>>);

    impl<T: Float, const K: usize> Flat<T, K> {
        fn new(seed: f64) -> Self {
            let v = LAYOUTS[K].iter().map(|t| {
                (0..t.len())
                    .map(|i| T::of(seed + i as f64 / 7.0 + t.index as f64))
                    .collect()
            });
            Self(v.collect())
        }
    }

    impl<T: Float, const K: usize> Parameters<T> for Flat<T, K> {
        const TENSORS: &'static [TensorInfo] = LAYOUTS[K];
        fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[T])) {
            Self::TENSORS.iter().zip(&self.0).for_each(|(t, v)| f(t, v));
        }
        fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [T])) {
            Self::TENSORS
                .iter()
                .zip(&mut self.0)
                .for_each(|(t, v)| f(t, v));
        }
    }

    fn meta() -> Metadata {
        Metadata::new("Tiny", "dense(2 -> 3, relu)", "f32")
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let names = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
        names.filter(|n| n.contains(".tmp")).collect()
    }

    #[test]
    fn persist_round_trip_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let mut a = Flat::<f32, 0>::new(0.1);
        a.0[0][1] = f32::MIN_POSITIVE / 3.0; // subnormal
        a.0[1][2] = -0.0;
        save_parameters(&a, &meta(), &path).unwrap();
        let mut b = Flat::<f32, 0>::new(9.0);
        let m = load_parameters_into(&mut b, &path).unwrap();
        let bits = |p: &Flat<f32, 0>| p.to_flat().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(m, meta());
        assert_eq!(m.version, env!("CARGO_PKG_VERSION"));

        let c = Flat::<f64, 0>::new(std::f64::consts::PI);
        save_parameters(&c, &meta(), &path).unwrap();
        let mut d = Flat::<f64, 0>::new(0.0);
        load_parameters_into(&mut d, &path).unwrap();
        assert_eq!(c, d);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn persist_weights_are_stored_like_pytorch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        // Column-major 3 x 2: W = [[0, 3], [1, 4], [2, 5]].
        let p = Flat::<f32, 0>(vec![
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            vec![7.0, 8.0, 9.0],
        ]);
        save_parameters(&p, &meta(), &path).unwrap();
        let bytes = fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("dense0.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[3, 2][..]));
        assert_eq!(decode::<f32>(w.data()), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let b = st.tensor("dense0.bias").unwrap();
        assert_eq!(b.shape(), &[3]);
        let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = m.metadata().clone().unwrap();
        assert_eq!(
            (
                m["format"].as_str(),
                m["nn.network"].as_str(),
                m["nn.dsl"].as_str()
            ),
            ("pt", "Tiny", "dense(2 -> 3, relu)")
        );
    }

    #[test]
    fn persist_mismatches_are_all_named_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
        let name = path.display();

        let mut other = Flat::<f32, 1>::new(5.0);
        let before = other.clone();
        let e = load_parameters_into(&mut other, &path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("{name}: does not match the parameters: tensor `dense0.weight` has shape [3, 2], expected [2, 3]; missing tensor `dense1.weight`")
        );
        assert_eq!(other, before);

        let e = load_parameters_into(&mut Flat::<f32, 2>::new(0.0), &path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("{name}: does not match the parameters: unexpected tensor `dense0.bias`")
        );

        let mut wide = Flat::<f64, 0>::new(2.0);
        let e = load_parameters_into(&mut wide, &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tensor `dense0.weight` has dtype F32, expected F64; tensor `dense0.bias` has dtype F32, expected F64"), "{e}");
        assert_eq!(wide, Flat::<f64, 0>::new(2.0));
    }

    #[test]
    fn persist_malformed_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
        let good = fs::read(&path).unwrap();
        let bad = dir.path().join("bad.safetensors");
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"garbage".to_vec(),
            good[..good.len() - 1].to_vec(),
            good[..20].to_vec(),
        ];
        cases.push([u64::MAX.to_le_bytes().as_slice(), &good[8..]].concat());
        cases.push([(1u64 << 40).to_le_bytes().as_slice(), &good[8..]].concat());
        let mut huge = br#"{"dense0.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,24]}}"#.to_vec();
        huge.resize(huge.len().div_ceil(8) * 8, b' ');
        cases.push(
            [
                (huge.len() as u64).to_le_bytes().as_slice(),
                &huge,
                &[0; 24],
            ]
            .concat(),
        );
        for i in 8..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0x5a;
            cases.push(flipped);
        }
        for bytes in cases {
            fs::write(&bad, &bytes).unwrap();
            let mut p = Flat::<f32, 0>::new(3.0);
            // A flip inside the data is still a valid file; anything else must be an error.
            match load_parameters_into(&mut p, &bad) {
                Ok(_) => assert!(bytes.len() == good.len()),
                Err(e) => {
                    assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
                    assert_eq!(p, Flat::<f32, 0>::new(3.0));
                }
            }
        }
        let e = load_parameters_into(&mut Flat::<f32, 0>::new(0.0), dir.path().join("none"))
            .unwrap_err();
        assert!(matches!(e, PersistError::Io { .. }));
    }

    #[test]
    fn persist_saves_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
        let old = fs::read(&path).unwrap();
        // A write that fails half-way leaves the old file and no temporary file.
        let e = write_atomic(&path, |f| {
            f.write_all(&old[..10])?;
            Err(io::Error::other("disk full"))
        });
        assert!(e.unwrap_err().to_string().contains("disk full"));
        assert_eq!(fs::read(&path).unwrap(), old);
        assert!(leftovers(dir.path()).is_empty());
        // A rename that fails (the target is a directory) cleans up too.
        let sub = dir.path().join("sub.safetensors");
        fs::create_dir(&sub).unwrap();
        assert!(save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &sub).is_err());
        assert!(leftovers(dir.path()).is_empty());
        // Overwriting succeeds and replaces the contents.
        save_parameters(&Flat::<f32, 0>::new(2.0), &meta(), &path).unwrap();
        assert_ne!(fs::read(&path).unwrap(), old);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn persist_leftovers_of_killed_saves_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let tmp = |pid: u32, n: u64| dir.path().join(format!("p.safetensors.tmp.{pid}.{n}"));
        // What saves killed before their rename leave: unlocked temporary files, possibly
        // with our own process id (ids are reused) and the counter's next values.
        let next = SAVES.load(Ordering::Relaxed);
        let own: Vec<PathBuf> = (next..next + 3)
            .map(|n| tmp(std::process::id(), n))
            .collect();
        for p in own.iter().chain([&tmp(4_000_001, 0), &tmp(4_000_002, 7)]) {
            fs::write(p, b"half a file").unwrap();
        }
        // A save in progress elsewhere holds its file locked; other files are not ours.
        let live = tmp(4_000_003, 1);
        fs::write(&live, b"being written").unwrap();
        let held = File::open(&live).unwrap();
        held.lock().unwrap();
        let others = [
            "p.safetensors.tmp.backup",
            "q.safetensors.tmp.1.2",
            "p.safetensors.tmp.1",
        ];
        for o in others {
            fs::write(dir.path().join(o), b"keep").unwrap();
        }
        save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
        let mut left = leftovers(dir.path());
        left.sort();
        let mut expected: Vec<String> = others.iter().map(|o| o.to_string()).collect();
        expected.push("p.safetensors.tmp.4000003.1".into());
        expected.sort();
        assert_eq!(left, expected);
        let mut q = Flat::<f32, 0>::new(0.0);
        load_parameters_into(&mut q, &path).unwrap();
        assert_eq!(q, Flat::<f32, 0>::new(1.0));
        // Once its writer is gone, the next save removes it.
        drop(held);
        save_parameters(&Flat::<f32, 0>::new(2.0), &meta(), &path).unwrap();
        assert_eq!(leftovers(dir.path()).len(), others.len());
    }

    fn checkpoint() -> Checkpoint<f32> {
        let buffers = vec![
            ("dense0.weight.exp_avg".to_owned(), vec![0.5; 6]),
            ("dense0.bias.exp_avg".to_owned(), vec![-1.25, 0.0, 3.0]),
        ];
        let optimizer = OptimizerState {
            name: "Adam".into(),
            step: 1234,
            lr: 1e-3 / 3.0,
            buffers,
        };
        Checkpoint {
            epoch: 7,
            optimizer,
            extra: serde_json::json!({"best": 0.97, "history": [1, 2]}),
        }
    }

    #[test]
    fn persist_checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let p = Flat::<f32, 0>::new(0.3);
        save_checkpoint(&p, &meta(), &checkpoint(), &path).unwrap();
        let mut q = Flat::<f32, 0>::new(0.0);
        let (m, c) = load_checkpoint_into(&mut q, &path).unwrap();
        assert_eq!((p.clone(), meta(), checkpoint()), (q, m, c));
        // The parameters alone load from a checkpoint; a parameter file is no checkpoint.
        let mut r = Flat::<f32, 0>::new(0.0);
        load_parameters_into(&mut r, &path).unwrap();
        assert_eq!(r, p);
        let plain = dir.path().join("plain.safetensors");
        save_parameters(&p, &meta(), &plain).unwrap();
        let e = load_checkpoint_into(&mut r, &plain)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("invalid checkpoint: no `nn.epoch` entry in the metadata"),
            "{e}"
        );
        let mut dup = checkpoint();
        dup.optimizer.buffers.push(dup.optimizer.buffers[0].clone());
        assert!(save_checkpoint(&p, &meta(), &dup, &path).is_err());
        let mut wide = Flat::<f64, 0>::new(0.0);
        let e = load_checkpoint_into(&mut wide, &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype F32, expected F64"), "{e}");
    }

    #[test]
    fn persist_refused_checkpoints_change_nothing() {
        // Found by the checkpoint fuzz target: a missing `nn.optim.name` was noticed only
        // after the parameters had been loaded.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        save_checkpoint(&Flat::<f32, 0>::new(0.3), &meta(), &checkpoint(), &path).unwrap();
        let good = fs::read(&path).unwrap();
        for key in [
            "nn.epoch",
            "nn.optim.name",
            "nn.optim.step",
            "nn.optim.lr",
            "nn.optim.buffers",
            "nn.extra",
        ] {
            // The same length, so the file stays a valid safetensors file.
            let renamed = key.replace('n', "N");
            let at = good
                .windows(key.len() + 2)
                .position(|w| w == format!("\"{key}\"").as_bytes())
                .unwrap();
            let mut bytes = good.clone();
            bytes[at + 1..at + 1 + key.len()].copy_from_slice(renamed.as_bytes());
            fs::write(&path, &bytes).unwrap();
            let mut p = Flat::<f32, 0>::new(9.0);
            let e = load_checkpoint_into(&mut p, &path).unwrap_err().to_string();
            assert!(
                e.ends_with(&format!("no `{key}` entry in the metadata")),
                "{e}"
            );
            assert_eq!(
                p,
                Flat::<f32, 0>::new(9.0),
                "{key}: a refused file changed the parameters"
            );
        }
    }

    /// A one-layer network over [`Flat`] layout 0, enough to exercise `save`/`load`.
    #[derive(Clone, Debug, PartialEq)]
    struct Tiny(Flat<f32, 0>);

    struct NoTape;
    impl crate::network::Tape<f32> for NoTape {
        fn batch(&self) -> usize {
            0
        }
        fn output_parts(&mut self) -> crate::network::OutputParts<'_, f32> {
            unimplemented!("not used by persistence")
        }
    }

    impl Parameters<f32> for Tiny {
        const TENSORS: &'static [TensorInfo] = LAYOUTS[0];
        fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[f32])) {
            self.0.for_each_tensor(f)
        }
        fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [f32])) {
            self.0.for_each_tensor_mut(f)
        }
    }

    impl Network<2, 3> for Tiny {
        type Scalar = f32;
        type Gradients = Flat<f32, 0>;
        type Tape = NoTape;
        const NAME: &'static str = "Tiny";
        const DSL: &'static str = "dense(2 -> 3, relu)";
        const PARAMS: usize = 9;
        const FLOPS: usize = 6;
        const LAYERS: &'static [crate::network::LayerInfo] = &[];
        const OUTPUT_ACTIVATION: crate::network::OutputActivation =
            crate::network::OutputActivation::Identity;
        fn init<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
            Tiny(Flat(vec![
                (0..6).map(|_| rng.random()).collect(),
                vec![0.0; 3],
            ]))
        }
        fn predict(&self, x: &nalgebra::SVector<f32, 2>) -> nalgebra::SVector<f32, 3> {
            let w = nalgebra::SMatrix::<f32, 3, 2>::from_column_slice(&self.0 .0[0]);
            w * x + nalgebra::SVector::<f32, 3>::from_column_slice(&self.0 .0[1])
        }
        fn forward(&self, _: &crate::Batch<f32, 2>) -> crate::Batch<f32, 3> {
            unimplemented!("not used by persistence")
        }
        fn new_tape(&self) -> NoTape {
            NoTape
        }
        fn zero_gradients(&self) -> Flat<f32, 0> {
            Flat::new(0.0)
        }
        fn forward_train<R: rand::Rng + ?Sized>(
            &self,
            _: crate::BatchView<'_, f32, 2>,
            _: &mut NoTape,
            _: &mut R,
        ) {
            unimplemented!("not used by persistence")
        }
        fn backward(
            &self,
            _: crate::BatchView<'_, f32, 2>,
            _: &mut NoTape,
            _: crate::GradientOf,
            _: &mut Flat<f32, 0>,
        ) {
            unimplemented!("not used by persistence")
        }
        fn for_each_param_grad(
            &mut self,
            _: &Flat<f32, 0>,
            _: &mut crate::network::ParamGradVisitor<'_, f32>,
        ) {
            unimplemented!("not used by persistence")
        }
        fn forward_eval(&self, _: crate::BatchView<'_, f32, 2>, _: &mut NoTape) {
            unimplemented!("not used by persistence")
        }
    }

    #[test]
    fn persist_network_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.safetensors");
        let net = Tiny(Flat::new(0.25));
        save(&net, &path).unwrap();
        let loaded: Tiny = load(&path).unwrap();
        assert_eq!(loaded, net);
        let x = nalgebra::SVector::<f32, 2>::new(0.5, -2.0);
        assert_eq!(loaded.predict(&x), net.predict(&x));
        let mut other = Tiny::init(&mut StdRng::seed_from_u64(1));
        let m = load_into(&mut other, &path).unwrap();
        assert_eq!(
            (other, m),
            (net, Metadata::new("Tiny", "dense(2 -> 3, relu)", "f32"))
        );
        assert_eq!(Metadata::of::<Tiny, 2, 3>().network, "Tiny");
    }
}
