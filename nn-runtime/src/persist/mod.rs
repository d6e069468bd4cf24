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

mod atomic;
mod codec;
mod error;

pub(crate) use atomic::write_atomic;
pub use error::{Mismatch, PersistError};

use crate::network::{Network, Parameters};
use crate::optim::OptimizerState;
use crate::scalar::Float;
use codec::{decode, dtype_of, encode, file_shape, param_tensors, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::SafeTensors;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

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

#[cfg(test)]
mod tests;
