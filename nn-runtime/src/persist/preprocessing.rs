//! A model saved with its preprocessing: the fitted scalers as `F64` tensors next to the
//! weights, and their kinds in the metadata.
//!
//! A scaler of the inputs is `nn.preprocess.input = standardize` with tensors
//! `preprocess.input.mean` and `preprocess.input.scale` (`[IN]`), or `min_max` with
//! `preprocess.input.min` and `preprocess.input.range`; a scaler of the targets likewise
//! under `target` (`[OUT]`). Every other loader ignores these tensors, so the file still
//! loads as plain parameters (and in PyTorch, as extra entries of the state dict).

use super::codec::{encode, param_tensors, Tensor};
use super::header::SafetensorsFile;
use super::{
    is_preprocessing, layout, load_opened, refuse_non_finite_in_debug, write_tensors, LoadOptions,
    Metadata, PersistError, PreprocessingProblem,
};
use crate::data::{Preprocessing, Scaler, ScalerKind};
use crate::network::Network;
use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::Dtype;
use std::collections::HashSet;
use std::path::Path;

/// The two scalers a model may carry, with their names in the file and the widths they
/// must have.
fn slots(
    pre: &Preprocessing,
    inputs: usize,
    outputs: usize,
) -> [(&'static str, Option<&Scaler>, usize); 2] {
    [
        ("input", pre.input.as_ref(), inputs),
        ("target", pre.target.as_ref(), outputs),
    ]
}

/// Saves a network with its preprocessing, atomically: the parameters and metadata as
/// [`save`](super::save) writes them, plus each scaler's kind (`nn.preprocess.input`,
/// `nn.preprocess.target`) and its offset and divisor as 1-D `F64` tensors
/// (`preprocess.input.mean`, `preprocess.input.scale`, ...). A scaler whose width is not
/// the network's inputs (outputs, for the target) is refused with
/// [`PersistError::Preprocessing`].
pub fn save_with_preprocessing<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    net: &N,
    preprocessing: &Preprocessing,
    path: impl AsRef<Path>,
) -> Result<(), PersistError> {
    let path = path.as_ref();
    let mut tensors = param_tensors(net);
    let mut map = Metadata::of::<N, IN, OUT>().to_map();
    for (which, scaler, width) in slots(preprocessing, IN, OUT) {
        let Some(s) = scaler else { continue };
        let names = s.kind().parameter_names();
        if s.width() != width {
            return Err(PersistError::Preprocessing {
                path: path.to_path_buf(),
                problem: Box::new(PreprocessingProblem::Width {
                    scaler: which.to_owned(),
                    tensor: format!("preprocess.{which}.{}", names[0]),
                    dtype: "F64".into(),
                    shape: vec![s.width()],
                    expected: width,
                }),
            });
        }
        map.insert(format!("nn.preprocess.{which}"), s.kind().name().to_owned());
        for (name, values) in names.iter().zip([s.offset(), s.divisor()]) {
            let tensor = Tensor {
                dtype: Dtype::F64,
                shape: vec![values.len()],
                data: encode(values.iter().copied()),
            };
            tensors.push((format!("preprocess.{which}.{name}"), tensor));
        }
    }
    refuse_non_finite_in_debug(path, net, &[])?;
    write_tensors(path, tensors, map)
}

/// Loads a network and the preprocessing saved with it by [`save_with_preprocessing`]. The
/// parameters are checked as by [`load`](super::load) (tensors, then the recorded
/// architecture); a file without preprocessing (written by [`save`](super::save), or by
/// PyTorch) gives [`Preprocessing::default`]. A scaler of an unknown kind, with a missing
/// tensor, of another width than the network's inputs (outputs, for the target), with a
/// non-finite value or a divisor that is not positive, or a `preprocess.*` tensor of no
/// scaler, is a [`PersistError::Preprocessing`] (or [`PersistError::NonFinite`]) naming the
/// file and the tensor.
pub fn load_with_preprocessing<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(
    path: impl AsRef<Path>,
) -> Result<(N, Preprocessing), PersistError> {
    let file = SafetensorsFile::open(path.as_ref())?;
    let mut net = N::init(&mut StdRng::seed_from_u64(0));
    load_opened(&mut net, &file, Some(N::DSL), LoadOptions::default())?;
    let preprocessing = read(&file, IN, OUT)?;
    Ok((net, preprocessing))
}

/// The preprocessing an open file holds, checked against the network's widths.
fn read(
    file: &SafetensorsFile,
    inputs: usize,
    outputs: usize,
) -> Result<Preprocessing, PersistError> {
    let refuse = |problem| PersistError::Preprocessing {
        path: file.path().to_path_buf(),
        problem: Box::new(problem),
    };
    let mut claimed = HashSet::new();
    let mut found = [None, None];
    for (slot, (which, _, width)) in slots(&Preprocessing::default(), inputs, outputs)
        .into_iter()
        .enumerate()
    {
        let Some(kind) = file.metadata.get(&format!("nn.preprocess.{which}")) else {
            continue;
        };
        let scaler = which.to_owned();
        let kind = ScalerKind::from_name(kind).ok_or_else(|| {
            refuse(PreprocessingProblem::UnknownKind {
                scaler: scaler.clone(),
                kind: kind.clone(),
            })
        })?;
        let mut parts = Vec::with_capacity(2);
        for name in kind.parameter_names() {
            let tensor = format!("preprocess.{which}.{name}");
            let Some(entry) = file.tensors.get(&tensor) else {
                return Err(refuse(PreprocessingProblem::Missing { scaler, tensor }));
            };
            if entry.dtype != Dtype::F64 || entry.shape != [width] {
                return Err(refuse(PreprocessingProblem::Width {
                    scaler,
                    tensor,
                    dtype: format!("{:?}", entry.dtype),
                    shape: entry.shape.clone(),
                    expected: width,
                }));
            }
            claimed.insert(tensor.clone());
            parts.push(tensor);
        }
        let offset = layout::read_values::<f64>(file, &parts[0], false)?;
        let divisor = layout::read_values::<f64>(file, &parts[1], false)?;
        let s = Scaler::new(kind, offset, divisor).map_err(|e| {
            refuse(PreprocessingProblem::Invalid {
                scaler: scaler.clone(),
                message: e.to_string(),
            })
        })?;
        found[slot] = Some(s);
    }
    let mut orphans: Vec<&String> = file
        .tensors
        .keys()
        .filter(|n| is_preprocessing(n) && !claimed.contains(n.as_str()))
        .collect();
    orphans.sort();
    if let Some(orphan) = orphans.first() {
        return Err(refuse(PreprocessingProblem::Unexpected((*orphan).clone())));
    }
    let [input, target] = found;
    Ok(Preprocessing { input, target })
}
