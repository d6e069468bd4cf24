//! The best epoch so far, for early stopping and best-epoch checkpoints, and how a checkpoint
//! holds it.

use super::config::{EarlyStopping, Monitor};
use super::history::EpochRecord;
use super::TrainError;
use crate::network::{Parameters, TensorInfo};
use crate::persist::{BestEpoch, Checkpoint};
use crate::scalar::Float;

/// The best epoch so far by the monitored score (lower is better), the epochs since, and
/// its weights when early stopping is to restore them.
///
/// Checkpoints carry it as [`BestEpoch`] (the score exactly, as its bits), so a resumed run
/// stops and restores exactly as an uninterrupted one.
pub(crate) struct Best<T> {
    pub(crate) score: f64,
    pub(crate) epoch: usize,
    pub(crate) since: usize,
    pub(crate) weights: Vec<T>,
}

/// The buffer suffix under which checkpoints written before [`BestEpoch`] existed kept the
/// best weights, as optimizer buffers `<tensor>.es_best`, with the rest under `best` in
/// `nn.extra`. Still read, never written.
const LEGACY_BUFFER: &str = "es_best";

impl<T: Float> Best<T> {
    /// Records `record`'s epoch as the best if its score improves on the best by more than
    /// `min_delta` (keeping the weights if `keep`), else counts one more epoch without
    /// improvement; returns whether it improved.
    pub(crate) fn update<P: Parameters<T>>(
        best: &mut Option<Self>,
        es: &EarlyStopping,
        record: &EpochRecord,
        net: &P,
        keep: bool,
    ) -> bool {
        let score = monitored(es, record);
        match best {
            Some(b)
                if !(score < b.score - es.min_delta || (b.score.is_nan() && !score.is_nan())) =>
            {
                b.since += 1;
                false
            }
            _ => {
                let mut weights = best.take().map(|b| b.weights).unwrap_or_default();
                weights.clear();
                if keep {
                    net.for_each_tensor(&mut |_, v| weights.extend_from_slice(v));
                }
                *best = Some(Self {
                    score,
                    epoch: record.epoch,
                    since: 0,
                    weights,
                });
                true
            }
        }
    }

    /// This state as a checkpoint holds it.
    pub(crate) fn to_checkpoint(&self) -> BestEpoch<T> {
        BestEpoch {
            epoch: self.epoch as u64,
            score: self.score,
            since: self.since as u64,
            weights: (!self.weights.is_empty()).then(|| self.weights.clone()),
        }
    }

    /// The state a checkpoint holds (`None` if it has none), reading the form of older
    /// checkpoints too (taking their buffers out of the optimizer's state).
    pub(crate) fn take_from(
        ck: &mut Checkpoint<T>,
        tensors: &[TensorInfo],
        path: &std::path::Path,
    ) -> Result<Option<Self>, TrainError> {
        let bad = |what: String| {
            TrainError::Config(format!(
                "{}: checkpoint early-stopping state: {what}",
                path.display()
            ))
        };
        let count = |v: u64, what: &str| {
            usize::try_from(v).map_err(|e| bad(format!("`{what}` = {v}: {e}")))
        };
        if let Some(b) = ck.best.take() {
            return Ok(Some(Self {
                score: b.score,
                epoch: count(b.epoch, "best.epoch")?,
                since: count(b.since, "best.since")?,
                weights: b.weights.unwrap_or_default(),
            }));
        }
        Self::take_legacy(ck, tensors, bad)
    }

    /// [`Best::take_from`] for a checkpoint written before [`BestEpoch`] existed.
    fn take_legacy(
        ck: &mut Checkpoint<T>,
        tensors: &[TensorInfo],
        bad: impl Fn(String) -> TrainError,
    ) -> Result<Option<Self>, TrainError> {
        let (mine, theirs): (Vec<_>, Vec<_>) = std::mem::take(&mut ck.optimizer.buffers)
            .into_iter()
            .partition(|(name, _)| {
                name.rsplit_once('.')
                    .is_some_and(|(_, buffer)| buffer == LEGACY_BUFFER)
            });
        ck.optimizer.buffers = theirs;
        let Some(state) = ck.extra.get("best").filter(|v| !v.is_null()) else {
            return match mine.first() {
                Some((name, _)) => Err(bad(format!("buffer `{name}` without a best epoch"))),
                None => Ok(None),
            };
        };
        let field = |k: &str| {
            state
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| bad(format!("`best.{k}` is missing or not an unsigned integer")))
        };
        let score = f64::from_bits(field("score_bits")?);
        let epoch =
            usize::try_from(field("epoch")?).map_err(|e| bad(format!("`best.epoch`: {e}")))?;
        let since =
            usize::try_from(field("since")?).map_err(|e| bad(format!("`best.since`: {e}")))?;
        let mut weights = Vec::new();
        if !mine.is_empty() {
            if mine.len() != tensors.len() {
                return Err(bad(format!(
                    "{} best-weight buffers for {} tensors",
                    mine.len(),
                    tensors.len()
                )));
            }
            for t in tensors {
                let name = format!("{}.{LEGACY_BUFFER}", t.name);
                match mine.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) if v.len() == t.len() => weights.extend_from_slice(v),
                    Some((_, v)) => {
                        return Err(bad(format!(
                            "buffer `{name}` has {} values, tensor `{}` has {}",
                            v.len(),
                            t.name,
                            t.len()
                        )))
                    }
                    None => return Err(bad(format!("no buffer `{name}`"))),
                }
            }
        }
        Ok(Some(Self {
            score,
            epoch,
            since,
            weights,
        }))
    }
}

/// The initial learning rate a checkpoint recorded: exact from its bits, else (older files)
/// from the decimal value.
pub(crate) fn base_lr_of(extra: &serde_json::Value) -> Option<f64> {
    extra
        .get("base_lr_bits")
        .and_then(serde_json::Value::as_u64)
        .map(f64::from_bits)
        .or_else(|| extra.get("base_lr").and_then(serde_json::Value::as_f64))
}

/// The monitored score, as "lower is better".
fn monitored(es: &EarlyStopping, r: &EpochRecord) -> f64 {
    let val_acc = r.val_metrics.and_then(|m| m.accuracy());
    let train_acc = r.train_metrics.accuracy();
    match es.monitor {
        Monitor::ValLoss => r.val_loss.unwrap_or(r.train_loss),
        Monitor::TrainLoss => r.train_loss,
        Monitor::ValAccuracy => -val_acc.or(train_acc).unwrap_or(0.0),
    }
}
