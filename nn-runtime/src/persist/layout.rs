//! A file's tensors against the layout of the parameters (and of the optimizer's buffers),
//! and reading them once they match: nothing is read before everything is checked.

use super::codec::{column_major, decode, dtype_of, file_shape, first_non_finite};
use super::header::SafetensorsFile;
use super::{Mismatch, PersistError};
use crate::network::{Parameters, TensorInfo};
use crate::scalar::Float;
use std::collections::HashSet;

/// Adds to `problems` every way the file's tensors differ from `P::TENSORS` (missing, of
/// another dtype or shape), then every tensor that is neither one of them nor `allowed`,
/// sorted by name.
pub(super) fn parameter_problems<T: Float, P: Parameters<T>>(
    file: &SafetensorsFile,
    allowed: impl Fn(&str) -> bool,
    problems: &mut Vec<Mismatch>,
) {
    shaped_problems::<T, P>(file, "", problems);
    let known: HashSet<&str> = P::TENSORS.iter().map(|t| t.name).collect();
    let mut unexpected: Vec<&String> = file
        .tensors
        .keys()
        .filter(|n| !known.contains(n.as_str()) && !allowed(n))
        .collect();
    unexpected.sort();
    problems.extend(unexpected.into_iter().cloned().map(Mismatch::Unexpected));
}

/// Adds to `problems` every way the file's tensors `<prefix><tensor name>` differ from
/// `P::TENSORS`: missing, or of another dtype or shape than the parameter's.
pub(super) fn shaped_problems<T: Float, P: Parameters<T>>(
    file: &SafetensorsFile,
    prefix: &str,
    problems: &mut Vec<Mismatch>,
) {
    for t in P::TENSORS {
        let name = format!("{prefix}{}", t.name);
        match file.tensors.get(&name) {
            None => problems.push(Mismatch::Missing(name)),
            Some(e) if e.dtype != dtype_of::<T>() => problems.push(Mismatch::Dtype {
                tensor: name,
                expected: format!("{:?}", dtype_of::<T>()),
                found: format!("{:?}", e.dtype),
            }),
            Some(e) if e.shape != file_shape(t) => problems.push(Mismatch::Shape {
                tensor: name,
                expected: file_shape(t),
                found: e.shape.clone(),
            }),
            Some(_) => {}
        }
    }
}

/// The tensor an optimizer buffer `<tensor name>.<buffer>` belongs to (the rule of
/// `Optimizer::load_state_for`).
pub(super) fn owner<'t>(tensors: &'t [TensorInfo], buffer: &str) -> Option<&'t TensorInfo> {
    tensors.iter().find(|t| {
        buffer
            .strip_prefix(t.name)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|b| !b.is_empty() && !b.contains('.'))
    })
}

/// Adds to `problems` every way the file's optimizer buffers (file tensors `optim.<name>`
/// for each of `names`) differ from what `P::TENSORS` implies: each must be 1-D, of `T`'s
/// dtype, and as long as the tensor it belongs to.
pub(super) fn buffer_problems<T: Float, P: Parameters<T>>(
    file: &SafetensorsFile,
    names: &[String],
    problems: &mut Vec<Mismatch>,
) {
    for name in names {
        let full = format!("optim.{name}");
        let Some(e) = file.tensors.get(&full) else {
            problems.push(Mismatch::Missing(full));
            continue;
        };
        let Some(t) = owner(P::TENSORS, name) else {
            problems.push(Mismatch::Unexpected(full));
            continue;
        };
        if e.dtype != dtype_of::<T>() {
            problems.push(Mismatch::Dtype {
                tensor: full,
                expected: format!("{:?}", dtype_of::<T>()),
                found: format!("{:?}", e.dtype),
            });
        } else if e.shape != [t.len()] {
            problems.push(Mismatch::Shape {
                tensor: full,
                expected: vec![t.len()],
                found: e.shape.clone(),
            });
        }
    }
}

/// The values of tensor `name` in the file's (row-major) order; its dtype was checked. A NaN
/// or infinity is a [`PersistError::NonFinite`] unless `allow_non_finite`.
pub(super) fn read_values<T: Float>(
    file: &SafetensorsFile,
    name: &str,
    allow_non_finite: bool,
) -> Result<Vec<T>, PersistError> {
    let entry = file
        .tensors
        .get(name)
        .ok_or_else(|| file.format(format!("no tensor `{name}`")))?;
    let values = decode::<T>(&file.read(entry)?);
    match first_non_finite(&values) {
        Some((index, value)) if !allow_non_finite => Err(file.non_finite(name, index, value)),
        _ => Ok(values),
    }
}

/// Every parameter tensor, column-major, in `P::TENSORS` order; the file was checked by
/// [`parameter_problems`].
pub(super) fn read_parameters<T: Float, P: Parameters<T>>(
    file: &SafetensorsFile,
    allow_non_finite: bool,
) -> Result<Vec<Vec<T>>, PersistError> {
    read_shaped::<T, P>(file, "", allow_non_finite)
}

/// The tensors `<prefix><tensor name>`, column-major, in `P::TENSORS` order; the file was
/// checked by [`shaped_problems`].
pub(super) fn read_shaped<T: Float, P: Parameters<T>>(
    file: &SafetensorsFile,
    prefix: &str,
    allow_non_finite: bool,
) -> Result<Vec<Vec<T>>, PersistError> {
    P::TENSORS
        .iter()
        .map(|t| {
            let name = format!("{prefix}{}", t.name);
            Ok(column_major(
                t,
                &read_values::<T>(file, &name, allow_non_finite)?,
            ))
        })
        .collect()
}
