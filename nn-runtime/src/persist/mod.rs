//! Saving and loading parameters and training checkpoints as safetensors files.
//!
//! # Layout
//! Tensors are named as in [`TensorInfo::name`](crate::network::TensorInfo::name)
//! (`dense0.weight`, `dense0.bias`, ...) and stored in PyTorch's `nn.Linear` convention, so
//! the file loads into PyTorch directly: a weight (`OUT x IN`) has shape `[OUT, IN]` in
//! **row-major** order, which is the transpose of how we store it (column-major), so saving
//! transposes and loading transposes back; a bias has shape `[OUT]`. Values are
//! little-endian `F32` or `F64` after the scalar type, which must match on load (no silent
//! conversion).
//!
//! The header's `__metadata__` holds `format = pt`, `nn.network` (the type name),
//! `nn.dsl` (its layer list), `nn.scalar` (`f32`/`f64`) and `nn.version` (this crate's version).
//!
//! # Architecture
//! The network-level loaders ([`load`], [`load_into`], [`load_network_checkpoint_into`], and
//! the trainer's `resume_from`) compare the DSL text a file records (`nn.dsl`) with the
//! network's ([`Network::DSL`]) and refuse another architecture with
//! [`PersistError::Architecture`], showing both texts: the weights of a relu network do not
//! load silently into a tanh network. The texts are compared without whitespace and widths
//! (the tensors' shapes check those), with a dense layer's `key = value` options in any
//! order; activations, layer kinds, dropout rates and options must agree. A file that
//! records no DSL (PyTorch's `safetensors.torch.save_file` writes none) loads on its tensors
//! alone. [`load_weights_into`] (or [`LoadOptions::ignore_architecture`]) loads any file
//! whose tensors match. The functions over any [`Parameters`] ([`load_parameters_into`],
//! [`load_checkpoint_into`]) know no DSL and check the tensors only.
//!
//! # Checkpoints
//! A [`Checkpoint`] adds the optimizer's buffers as tensors `optim.<buffer name>` (flat, 1-D,
//! in the optimizer's own column-major order) and `nn.epoch`, `nn.optim.name`,
//! `nn.optim.step`, `nn.optim.lr`, `nn.optim.buffers` (the buffer names in order, JSON) and
//! `nn.extra` (JSON) to the metadata, so training resumes exactly; early stopping's best epoch
//! ([`BestEpoch`]) is the entry `nn.best` and, when its weights are kept, tensors
//! `best.<tensor name>` shaped like the parameters. Every buffer belongs to a
//! parameter tensor (it is named `<tensor name>.<buffer>`) and has that tensor's length, as
//! `Optimizer::load_state_for` requires; saving and loading check it.
//!
//! # Safety of files
//! Saves are atomic: the bytes go to a temporary file in the target's directory, which is
//! fsynced and renamed over the target (and the directory fsynced on unix), so the target is
//! always either the old file or the new one. A save killed before its rename leaves its
//! temporary file (`<name>.tmp.<pid>.<n>`); the next successful save of that target removes
//! it.
//!
//! Loads read the header first: its length must fit in the file (by the file's size) and
//! under 100 MB (the `safetensors` crate's limit); it is parsed as it is read, so a false
//! length costs nothing; every tensor's offsets must tile the rest of the file, each as long
//! as its shape and dtype say. Then every tensor's name, dtype and shape is checked against
//! the parameters (and each optimizer buffer against its tensor), and only then are the
//! tensors needed read, each from its own byte range: a hostile file costs a few reads of
//! its header, whatever it claims. Nothing changes until everything has been read and
//! checked, and every error is a [`PersistError`] naming the file.
//!
//! NaN and infinite values, in the parameters or the optimizer buffers, are refused on load
//! ([`PersistError::NonFinite`], naming the tensor and the first such value) unless
//! [`LoadOptions::allow_non_finite`]; saving them is refused in debug builds and allowed in
//! release builds.

mod architecture;
mod atomic;
mod codec;
mod error;
mod header;
mod layout;
mod preprocessing;

pub(crate) use atomic::write_atomic;
pub use error::{Mismatch, PersistError, PreprocessingProblem};
pub use preprocessing::{load_with_preprocessing, save_with_preprocessing};

use crate::network::{Network, Parameters, TensorInfo};
use crate::optim::OptimizerState;
use crate::scalar::Float;
use codec::{dtype_of, encode, file_shape, param_tensors, Tensor};
use header::SafetensorsFile;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{HashMap, HashSet};
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

    fn from_map(map: &HashMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
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
    /// Early stopping's best epoch so far, if the run watches one.
    pub best: Option<BestEpoch<T>>,
    /// Anything else the trainer wants back (the base learning rate, the run's settings).
    pub extra: serde_json::Value,
}

/// Early stopping's state in a checkpoint: the best epoch so far, how long ago it was, and
/// its weights when early stopping is to restore them. Saved as the metadata entry `nn.best`
/// (`{"epoch", "score_bits", "since", "weights"}`, the score as the bits of an `f64`, so it
/// comes back exactly) and, for the weights, tensors `best.<tensor>` shaped and laid out like
/// the parameters (`best.dense0.weight` is `[OUT, IN]`, row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct BestEpoch<T> {
    /// The best epoch, from 1.
    pub epoch: u64,
    /// Its monitored score, lower is better (a negated accuracy for an accuracy monitor).
    pub score: f64,
    /// Epochs since, without improvement.
    pub since: u64,
    /// Its weights, in visiting order, column-major (as [`Parameters::to_flat`]), if kept.
    pub weights: Option<Vec<T>>,
}

/// How a file is loaded; the default is what [`load_parameters_into`], [`load_into`] and
/// [`load_checkpoint_into`] do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept NaN and infinite parameters and optimizer buffers, e.g. to inspect a run that
    /// diverged. By default such a file is refused with [`PersistError::NonFinite`].
    pub allow_non_finite: bool,
    /// Load into a network a file that records another architecture (`nn.dsl`) when its
    /// tensors' names, dtypes and shapes match. By default the network-level loaders refuse
    /// it with [`PersistError::Architecture`]. The loaders over any [`Parameters`] never
    /// compare architectures.
    pub ignore_architecture: bool,
}

/// Tensors of the preprocessing saved with a model (`preprocess.*`): every loader accepts
/// a file holding them, and only the preprocessing loaders read them.
fn is_preprocessing(name: &str) -> bool {
    name.starts_with("preprocess.")
}

/// Saves `params` with `meta` to `path`, atomically.
///
/// In debug builds a NaN or infinite value is refused with [`PersistError::NonFinite`]
/// (loading would refuse the file); release builds save it, and such a file loads only with
/// [`LoadOptions::allow_non_finite`].
pub fn save_parameters<T: Float, P: Parameters<T>>(
    params: &P,
    meta: &Metadata,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    let path = path.as_ref();
    refuse_non_finite_in_debug(path, params, &[])?;
    write_tensors(path, param_tensors(params), meta.to_map())
}

/// Loads parameters saved by [`save_parameters`] (or a checkpoint, or PyTorch's
/// `save_file(model.state_dict())` with the same names) into `params`. The header is read
/// and every tensor's name, dtype and shape checked against [`Parameters::TENSORS`] before
/// any tensor data is read; on any difference nothing is changed and the error lists them.
/// `optim.*`, `best.*` and `preprocess.*` tensors are ignored (and not read). No architecture is
/// compared (a `Parameters` has no DSL; [`load_into`] compares it for a network). A NaN or infinite value is refused with
/// [`PersistError::NonFinite`]; [`load_parameters_into_with`] can accept it.
pub fn load_parameters_into<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
) -> Result<Metadata, PersistError> {
    load_parameters_into_with(params, path, LoadOptions::default())
}

/// [`load_parameters_into`] with `options`.
pub fn load_parameters_into_with<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
    options: LoadOptions,
) -> Result<Metadata, PersistError> {
    let file = SafetensorsFile::open(path.as_ref())?;
    load_opened(params, &file, None, options)
}

/// Loads the parameters of an open file into `params`, all or nothing, after comparing the
/// file's recorded DSL with `architecture` (if any, and unless the options ignore it).
fn load_opened<T: Float, P: Parameters<T>>(
    params: &mut P,
    file: &SafetensorsFile,
    architecture: Option<&str>,
    options: LoadOptions,
) -> Result<Metadata, PersistError> {
    let meta = Metadata::from_map(&file.metadata);
    let mut problems = Vec::new();
    let allowed = |n: &str| n.starts_with("optim.") || n.starts_with(BEST) || is_preprocessing(n);
    layout::parameter_problems::<T, P>(file, allowed, &mut problems);
    // Tensors that differ are named first: no option loads them.
    file.refuse(problems)?;
    if let Some(expected) = architecture.filter(|_| !options.ignore_architecture) {
        architecture::check(file.path(), &meta.dsl, expected)?;
    }
    let decoded = layout::read_parameters::<T, P>(file, options.allow_non_finite)?;
    apply(params, &decoded);
    Ok(meta)
}

/// Saves a network's parameters with its metadata, atomically.
pub fn save<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &N,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    save_parameters(net, &Metadata::of::<N, IN, OUT>(), path)
}

/// Loads a file's parameters into an existing network (all or nothing); returns the file's
/// metadata. The file must record the network's architecture or none (see
/// [Architecture](self#architecture); another is a [`PersistError::Architecture`]), and its
/// tensors are checked as by [`load_parameters_into`]. The network's type name may differ.
pub fn load_into<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    path: impl AsRef<Path>,
) -> Result<Metadata, PersistError> {
    load_into_with(net, path, LoadOptions::default())
}

/// [`load_into`] with `options`.
pub fn load_into_with<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    path: impl AsRef<Path>,
    options: LoadOptions,
) -> Result<Metadata, PersistError> {
    let file = SafetensorsFile::open(path.as_ref())?;
    load_opened(net, &file, Some(N::DSL), options)
}

/// Loads the weights of a file whose tensors' names, dtypes and shapes match the network's,
/// whatever architecture it records (another activation, say): [`load_into`] with
/// [`LoadOptions::ignore_architecture`].
pub fn load_weights_into<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    path: impl AsRef<Path>,
) -> Result<Metadata, PersistError> {
    let options = LoadOptions {
        ignore_architecture: true,
        ..LoadOptions::default()
    };
    load_into_with(net, path, options)
}

/// A network of type `N` with the parameters of a file, checked as by [`load_into`].
pub fn load<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    path: impl AsRef<Path>,
) -> Result<N, PersistError> {
    let mut net = N::init(&mut StdRng::seed_from_u64(0));
    load_into(&mut net, path)?;
    Ok(net)
}

/// Saves parameters and a training checkpoint in one safetensors file, atomically. Every
/// optimizer buffer must be named `<tensor name>.<buffer>` after one of `params`' tensors,
/// have that tensor's length, and appear once. Non-finite values are handled as by
/// [`save_parameters`], in the parameters and in the buffers.
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
    for (name, values) in &opt.buffers {
        let message = match layout::owner(P::TENSORS, name) {
            None => format!("optimizer buffer `{name}` names no tensor of the parameters"),
            Some(t) if t.len() != values.len() => format!(
                "optimizer buffer `{name}` has {} values, tensor `{}` has {}",
                values.len(),
                t.name,
                t.len()
            ),
            Some(_) => continue,
        };
        return Err(PersistError::Checkpoint {
            path: path.to_path_buf(),
            message,
        });
    }
    let total: usize = P::TENSORS.iter().map(TensorInfo::len).sum();
    if let Some(w) = checkpoint.best.as_ref().and_then(|b| b.weights.as_ref()) {
        if w.len() != total {
            return Err(PersistError::Checkpoint {
                path: path.to_path_buf(),
                message: format!(
                    "the best epoch's weights have {} values, the parameters {total}",
                    w.len()
                ),
            });
        }
    }
    refuse_non_finite_in_debug(path, params, &opt.buffers)?;
    let (tensors, map) = checkpoint_contents(params, meta, checkpoint);
    write_tensors(path, tensors, map)
}

/// In debug builds, [`PersistError::NonFinite`] for the first NaN or infinity in `params`
/// (by tensor, in row-major order) or else in `buffers`; in release builds nothing.
fn refuse_non_finite_in_debug<T: Float, P: Parameters<T>>(
    path: &Path,
    params: &P,
    buffers: &[(String, Vec<T>)],
) -> Result<(), PersistError> {
    if !cfg!(debug_assertions) {
        return Ok(());
    }
    let mut found = None;
    params.for_each_tensor(&mut |t, v| {
        if found.is_none() {
            found = codec::first_non_finite_row_major(t, v).map(|(i, x)| (t.name.to_owned(), i, x));
        }
    });
    let found = found.or_else(|| {
        buffers.iter().find_map(|(name, v)| {
            codec::first_non_finite(v).map(|(i, x)| (format!("optim.{name}"), i, x))
        })
    });
    match found {
        None => Ok(()),
        Some((tensor, index, value)) => Err(PersistError::NonFinite {
            path: path.to_path_buf(),
            tensor,
            index,
            value,
        }),
    }
}

/// What [`save_checkpoint`] writes: the tensors and the metadata.
fn checkpoint_contents<T: Float, P: Parameters<T>>(
    params: &P,
    meta: &Metadata,
    checkpoint: &Checkpoint<T>,
) -> (Vec<(String, Tensor)>, HashMap<String, String>) {
    let opt = &checkpoint.optimizer;
    let mut tensors = param_tensors(params);
    for (name, values) in &opt.buffers {
        let t = Tensor {
            dtype: dtype_of::<T>(),
            shape: vec![values.len()],
            data: encode(values.iter().copied()),
        };
        tensors.push((format!("optim.{name}"), t));
    }
    let names: Vec<&str> = opt.buffers.iter().map(|(n, _)| n.as_str()).collect();
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
    if let Some(best) = &checkpoint.best {
        if let Some(weights) = &best.weights {
            let mut at = 0;
            for t in P::TENSORS {
                let v = &weights[at..at + t.len()];
                at += t.len();
                let data = encode(codec::row_major(t, v));
                let shape = file_shape(t);
                let dtype = dtype_of::<T>();
                tensors.push((format!("{BEST}{}", t.name), Tensor { dtype, shape, data }));
            }
        }
        let entry = serde_json::json!({
            "epoch": best.epoch,
            "score_bits": best.score.to_bits(),
            "since": best.since,
            "weights": best.weights.is_some(),
        });
        map.insert("nn.best".into(), entry.to_string());
    }
    (tensors, map)
}

/// The prefix of the best epoch's weight tensors in a checkpoint.
const BEST: &str = "best.";

/// The `nn.best` entry of a checkpoint's metadata, if any: the best epoch without its weights,
/// and whether the file holds them.
fn best_entry<T>(
    map: &HashMap<String, String>,
    bad: impl Fn(String) -> PersistError,
) -> Result<Option<(BestEpoch<T>, bool)>, PersistError> {
    let Some(text) = map.get("nn.best") else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("`nn.best`: {e}")))?;
    let field = |k: &str| {
        v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| {
            bad(format!(
                "`nn.best.{k}` is missing or not an unsigned integer"
            ))
        })
    };
    let weights = v
        .get("weights")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| bad("`nn.best.weights` is missing or not a boolean".into()))?;
    let best = BestEpoch {
        epoch: field("epoch")?,
        score: f64::from_bits(field("score_bits")?),
        since: field("since")?,
        weights: None,
    };
    Ok(Some((best, weights)))
}

/// Loads a checkpoint saved by [`save_checkpoint`]: the parameters into `params` and the
/// rest returned. Everything (metadata entries, tensors, optimizer buffers against the
/// tensors they belong to) is checked before any tensor data is read, and `params` is
/// touched only once all of it has been read. A NaN or infinite parameter or buffer value
/// is refused with [`PersistError::NonFinite`]; [`load_checkpoint_into_with`] can accept it.
/// No architecture is compared; [`load_network_checkpoint_into`] compares it for a network.
pub fn load_checkpoint_into<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
) -> Result<(Metadata, Checkpoint<T>), PersistError> {
    load_checkpoint_into_with(params, path, LoadOptions::default())
}

/// [`load_checkpoint_into`] with `options`.
pub fn load_checkpoint_into_with<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: impl AsRef<Path>,
    options: LoadOptions,
) -> Result<(Metadata, Checkpoint<T>), PersistError> {
    load_checkpoint_checked(params, path.as_ref(), None, options)
}

/// [`load_checkpoint_into_with`] for a network: the checkpoint must also record the
/// network's architecture or none (unless [`LoadOptions::ignore_architecture`]), as for
/// [`load_into`]. The trainer's `resume_from` loads with it.
pub fn load_network_checkpoint_into<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &mut N,
    path: impl AsRef<Path>,
    options: LoadOptions,
) -> Result<(Metadata, Checkpoint<N::Scalar>), PersistError> {
    load_checkpoint_checked(net, path.as_ref(), Some(N::DSL), options)
}

/// Loads a checkpoint into `params`, all or nothing, comparing the recorded DSL with
/// `architecture` (if any, and unless the options ignore it) first.
fn load_checkpoint_checked<T: Float, P: Parameters<T>>(
    params: &mut P,
    path: &Path,
    architecture: Option<&str>,
    options: LoadOptions,
) -> Result<(Metadata, Checkpoint<T>), PersistError> {
    let file = SafetensorsFile::open(path)?;
    let map = &file.metadata;

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
    let best = best_entry::<T>(map, bad)?;
    let with_weights = best.as_ref().is_some_and(|(_, w)| *w);
    let listed: HashSet<String> = names.iter().map(|n| format!("optim.{n}")).collect();
    let best_listed: HashSet<String> = match with_weights {
        true => P::TENSORS
            .iter()
            .map(|t| format!("{BEST}{}", t.name))
            .collect(),
        false => HashSet::new(),
    };
    let mut problems = Vec::new();
    let allowed = |n: &str| listed.contains(n) || best_listed.contains(n) || is_preprocessing(n);
    layout::parameter_problems::<T, P>(&file, allowed, &mut problems);
    layout::buffer_problems::<T, P>(&file, &names, &mut problems);
    if with_weights {
        layout::shaped_problems::<T, P>(&file, BEST, &mut problems);
    }
    file.refuse(problems)?;
    if let Some(expected) = architecture.filter(|_| !options.ignore_architecture) {
        let recorded = map.get("nn.dsl").map_or("", String::as_str);
        architecture::check(path, recorded, expected)?;
    }
    let allow = options.allow_non_finite;
    let decoded = layout::read_parameters::<T, P>(&file, allow)?;
    let mut buffers = Vec::with_capacity(names.len());
    for name in names {
        let values = layout::read_values::<T>(&file, &format!("optim.{name}"), allow)?;
        buffers.push((name, values));
    }
    let best = match best {
        Some((mut b, true)) => {
            b.weights = Some(layout::read_shaped::<T, P>(&file, BEST, allow)?.concat());
            Some(b)
        }
        Some((b, false)) => Some(b),
        None => None,
    };
    apply(params, &decoded);
    let optimizer = OptimizerState {
        name,
        step,
        lr,
        buffers,
    };
    Ok((
        Metadata::from_map(map),
        Checkpoint {
            epoch,
            optimizer,
            best,
            extra,
        },
    ))
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
