//! Per-tensor optimizer buffers: allocated when a tensor is first seen, reached by index
//! afterwards, named `<tensor>.<buffer>` in [`OptimizerState`].

use super::{OptimError, OptimizerState};
use crate::network::TensorInfo;
use crate::scalar::Float;

const UNBOUND: usize = usize::MAX;

/// The buffers of one tensor.
#[derive(Clone, Debug)]
struct Slot<T> {
    /// Tensor name (`dense0.weight`).
    name: String,
    /// Elements per buffer.
    len: usize,
    /// Whether a tensor index points at this slot (a loaded slot is unbound until its tensor
    /// is first updated).
    bound: bool,
    /// One buffer per name, each `len` long.
    bufs: Vec<Vec<T>>,
}

/// The buffers of every tensor an optimizer has seen (or loaded).
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots<T> {
    /// In order of first sight (or of the loaded state).
    slots: Vec<Slot<T>>,
    /// `TensorInfo::index` -> position in `slots`, or `UNBOUND`.
    by_index: Vec<usize>,
}

impl<T: Float> Slots<T> {
    /// No buffers.
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            by_index: Vec::new(),
        }
    }

    /// The buffers (`names.len()` of them, each `len` long) of `tensor`, and whether they
    /// were just created with the values `init` (one per buffer). Allocates only the first
    /// time a tensor is seen.
    #[inline]
    pub(crate) fn get(
        &mut self,
        tensor: &TensorInfo,
        len: usize,
        names: &[&str],
        init: &[f64],
    ) -> (&mut [Vec<T>], bool) {
        let fast = match self.by_index.get(tensor.index) {
            Some(&pos) if pos != UNBOUND => {
                let s = &self.slots[pos];
                (s.len == len && s.bufs.len() == names.len()).then_some(pos)
            }
            _ => None,
        };
        let (pos, fresh) = match fast {
            Some(pos) => (pos, false),
            None => self.bind(tensor, len, names, init),
        };
        (&mut self.slots[pos].bufs, fresh)
    }

    /// Finds (a loaded slot of the same name) or creates the slot of `tensor`.
    #[cold]
    fn bind(
        &mut self,
        tensor: &TensorInfo,
        len: usize,
        names: &[&str],
        init: &[f64],
    ) -> (usize, bool) {
        let current = self
            .by_index
            .get(tensor.index)
            .copied()
            .filter(|&p| p != UNBOUND);
        let found = current.or_else(|| {
            self.slots
                .iter()
                .position(|s| !s.bound && s.name == tensor.name)
        });
        let fresh_bufs = || -> Vec<Vec<T>> {
            (0..names.len())
                .map(|i| vec![T::of(init.get(i).copied().unwrap_or(0.0)); len])
                .collect()
        };
        let (pos, fresh) = match found {
            Some(pos) => {
                let s = &mut self.slots[pos];
                s.bound = true;
                if s.len == len && s.bufs.len() == names.len() {
                    (pos, false)
                } else {
                    // A loaded state that does not fit this tensor: start afresh.
                    s.len = len;
                    s.bufs = fresh_bufs();
                    (pos, true)
                }
            }
            None => {
                self.slots.push(Slot {
                    name: tensor.name.to_owned(),
                    len,
                    bound: true,
                    bufs: fresh_bufs(),
                });
                (self.slots.len() - 1, true)
            }
        };
        if self.by_index.len() <= tensor.index {
            self.by_index.resize(tensor.index + 1, UNBOUND);
        }
        self.by_index[tensor.index] = pos;
        (pos, fresh)
    }

    /// The buffers as named state entries, `<tensor>.<buffer>`, in slot order.
    pub(crate) fn export(&self, names: &[&str]) -> Vec<(String, Vec<T>)> {
        let mut out = Vec::new();
        for s in &self.slots {
            for (n, b) in names.iter().zip(&s.bufs) {
                out.push((format!("{}.{n}", s.name), b.clone()));
            }
        }
        out
    }

    /// The state of an optimizer `name` at `step` with rate `lr` whose buffers these are
    /// (named `names`), into `out`, reusing its buffers (see [`Slots::export_into`]).
    pub(crate) fn state_into(
        &self,
        (name, step, lr): (&str, u64, f64),
        names: &[&str],
        out: &mut OptimizerState<T>,
    ) {
        out.name.clear();
        out.name.push_str(name);
        out.step = step;
        out.lr = lr;
        self.export_into(names, &mut out.buffers);
    }

    /// [`Slots::export`] into `out`, reusing its entries: once `out` holds a state of the same
    /// tensors and buffers, this copies values and allocates nothing.
    pub(crate) fn export_into(&self, names: &[&str], out: &mut Vec<(String, Vec<T>)>) {
        let count = self.slots.len() * names.len();
        out.truncate(count);
        let mut i = 0;
        for s in &self.slots {
            for (n, b) in names.iter().zip(&s.bufs) {
                if i == out.len() {
                    out.push((String::new(), Vec::new()));
                }
                let (name, values) = &mut out[i];
                if !(name.len() == s.name.len() + 1 + n.len()
                    && name.starts_with(s.name.as_str())
                    && name.ends_with(n))
                {
                    name.clear();
                    name.push_str(&s.name);
                    name.push('.');
                    name.push_str(n);
                }
                values.clear();
                values.extend_from_slice(b);
                i += 1;
            }
        }
    }

    /// Whether every buffer value is finite.
    pub(crate) fn all_finite(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.bufs.iter().all(|b| crate::kernel::all_finite(b)))
    }

    /// Replaces every buffer from `state` (as [`Slots::export`] wrote it with the same
    /// `names`), checking the optimizer name, the buffer names and lengths, that every value
    /// is finite and those of the buffers in `non_negative` (accumulated squares) at least 0,
    /// and that tensors already seen keep their length. All or nothing. A state with no
    /// buffers at all (an optimizer before its first step) starts every buffer afresh.
    pub(crate) fn import(
        &mut self,
        optimizer: &str,
        names: &[&str],
        non_negative: &[&str],
        state: &OptimizerState<T>,
    ) -> Result<(), OptimError> {
        if state.name != optimizer {
            return Err(OptimError::State(format!(
                "the state is of optimizer `{}`, not `{optimizer}`",
                state.name
            )));
        }
        if state.buffers.is_empty() {
            // The state of an optimizer before its first step: every buffer starts afresh.
            self.slots.clear();
            self.by_index.clear();
            return Ok(());
        }
        for (full, values) in &state.buffers {
            let negative_ok = !full
                .rsplit_once('.')
                .is_some_and(|(_, b)| non_negative.contains(&b));
            if let Some((i, v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite() || (!negative_ok && **v < T::zero()))
            {
                let must = if negative_ok {
                    "finite"
                } else {
                    "finite and at least 0"
                };
                return Err(OptimError::State(format!(
                    "buffer `{full}` holds {v} at index {i}; its values must be {must}"
                )));
            }
        }
        let mut staged: Vec<(String, Vec<Option<&Vec<T>>>)> = Vec::new();
        for (full, values) in &state.buffers {
            let Some((tensor, buffer)) = full.rsplit_once('.') else {
                return Err(OptimError::State(format!(
                    "buffer `{full}` is not named `<tensor>.<buffer>`"
                )));
            };
            let Some(b) = names.iter().position(|n| *n == buffer) else {
                return Err(OptimError::State(format!(
                    "unknown buffer `{full}`: {optimizer} with these settings keeps {}",
                    describe(names)
                )));
            };
            let at = match staged.iter().position(|(t, _)| t == tensor) {
                Some(at) => at,
                None => {
                    staged.push((tensor.to_owned(), vec![None; names.len()]));
                    staged.len() - 1
                }
            };
            let slot = &mut staged[at].1[b];
            if slot.is_some() {
                return Err(OptimError::State(format!("buffer `{full}` appears twice")));
            }
            *slot = Some(values);
        }
        let mut slots = Vec::with_capacity(staged.len());
        for (tensor, bufs) in staged {
            let mut len = None;
            let mut out = Vec::with_capacity(bufs.len());
            for (n, b) in names.iter().zip(bufs) {
                let Some(b) = b else {
                    return Err(OptimError::State(format!(
                        "tensor `{tensor}` has no buffer `{tensor}.{n}`"
                    )));
                };
                match len {
                    Some(l) if l != b.len() => {
                        return Err(OptimError::State(format!(
                        "buffer `{tensor}.{n}` has {} values, the other buffers of `{tensor}` {l}",
                        b.len()
                    )))
                    }
                    _ => len = Some(b.len()),
                }
                out.push(b.clone());
            }
            let len = len.unwrap_or(0);
            if let Some(seen) = self.slots.iter().find(|s| s.bound && s.name == tensor) {
                if seen.len != len {
                    return Err(OptimError::State(format!(
                        "buffers of `{tensor}` have {len} values, the tensor has {}",
                        seen.len
                    )));
                }
            }
            slots.push(Slot {
                name: tensor,
                len,
                bound: false,
                bufs: out,
            });
        }
        if !names.is_empty() {
            if let Some(missing) = self
                .slots
                .iter()
                .find(|s| s.bound && !slots.iter().any(|n| n.name == s.name))
            {
                return Err(OptimError::State(format!(
                    "the state has no buffers for tensor `{}`",
                    missing.name
                )));
            }
        }
        self.slots = slots;
        self.by_index.clear();
        Ok(())
    }
}

fn describe(names: &[&str]) -> String {
    if names.is_empty() {
        "no buffers".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
