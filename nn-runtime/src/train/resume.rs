//! Resuming from a checkpoint: the settings a run records so a resumed run can be refused
//! when it would not continue the same training, and where the run goes on.

use super::best::{base_lr_of, Best};
use super::config::Clip;
use super::TrainError;
use crate::network::Network;
use crate::optim::Optimizer;
use crate::persist::{Checkpoint, PersistError};
use serde_json::{json, Value};
use std::path::Path;

/// The settings that decide which steps a run takes: a checkpoint records them under `run`
/// in its `nn.extra` entry, and resuming with any of them changed is refused, since the
/// result would equal no uninterrupted run. The number of epochs, early stopping,
/// checkpointing, progress and callbacks may change.
pub(crate) struct RunSettings {
    pub(crate) batch_size: usize,
    pub(crate) seed: u64,
    pub(crate) shuffle: bool,
    pub(crate) validation_fraction: Option<f64>,
    pub(crate) training_samples: usize,
    pub(crate) l1: f64,
    pub(crate) l2: f64,
    pub(crate) penalize_bias: bool,
    pub(crate) clip: Option<Clip>,
    pub(crate) optimizer: String,
}

impl RunSettings {
    /// The settings as the checkpoint's `run` object, with the builder methods' names.
    pub(crate) fn to_json(&self) -> Value {
        let clip = match self.clip {
            None => "none".to_owned(),
            Some(Clip::Norm(v)) => format!("Clip::Norm({v})"),
            Some(Clip::Value(v)) => format!("Clip::Value({v})"),
        };
        json!({
            "batch_size": self.batch_size,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "validation_fraction": self.validation_fraction,
            "training_samples": self.training_samples,
            "l1": self.l1,
            "l2": self.l2,
            "penalize_bias": self.penalize_bias,
            "clip": clip,
            "optimizer": self.optimizer,
        })
    }

    /// Refuses a checkpoint whose recorded settings differ from these, naming the setting
    /// and both values. A checkpoint without a record (written before it existed) passes.
    fn check(&self, extra: &Value, path: &Path) -> Result<(), TrainError> {
        let Some(Value::Object(theirs)) = extra.get("run") else {
            return Ok(());
        };
        let ours = self.to_json();
        for (key, mine) in ours.as_object().into_iter().flatten() {
            match theirs.get(key) {
                Some(v) if v == mine => {}
                v => {
                    let theirs = v.map_or("nothing".to_owned(), Value::to_string);
                    return Err(TrainError::Config(format!(
                        "{}: the checkpoint was written with {key} = {theirs}, this trainer has \
                         {key} = {mine}; resume with the settings it was written with (the \
                         number of epochs, early stopping, checkpointing, progress and \
                         callbacks may change)",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Where a resumed run goes on, and the early-stopping state it brings.
pub(crate) struct Resumed<T> {
    pub(crate) first_epoch: usize,
    pub(crate) best: Option<Best<T>>,
}

/// Loads the checkpoint at `path` into `net` and `optimizer` for a run of `epochs` epochs
/// of `batches` steps with `settings`. Everything is checked before training starts: on an
/// error the network keeps its weights and the optimizer its state.
pub(crate) fn resume<N, O, const IN: usize, const OUT: usize>(
    net: &mut N,
    optimizer: &mut O,
    path: &Path,
    settings: &RunSettings,
    epochs: usize,
    batches: usize,
) -> Result<Resumed<N::Scalar>, TrainError>
where
    N: Network<IN, OUT>,
    O: Optimizer<N::Scalar>,
{
    let before = (net.to_flat(), optimizer.state());
    let options = crate::persist::LoadOptions::default();
    let (_, mut ck) = crate::persist::load_network_checkpoint_into(net, path, options)?;
    let named = |e: &dyn std::fmt::Display| TrainError::Config(format!("{}: {e}", path.display()));
    let resumed = settings
        .check(&ck.extra, path)
        .and_then(|()| resume_point(path, &ck, epochs, batches))
        .and_then(|first_epoch| {
            let best = Best::take_from(&mut ck, N::TENSORS, path)?;
            optimizer
                .load_state_for(&ck.optimizer, N::TENSORS)
                .map_err(|e| named(&e))?;
            if let Some(base) = base_lr_of(&ck.extra) {
                optimizer.set_learning_rate(base);
            }
            // The learning rate comes from the file: it must be valid too.
            optimizer.validate().map_err(|e| named(&e))?;
            Ok(Resumed { first_epoch, best })
        });
    if resumed.is_err() {
        net.copy_from_flat(&before.0);
        let _ = optimizer.load_state(&before.1);
        optimizer.set_learning_rate(before.1.lr);
    }
    resumed
}

/// The first epoch after a checkpoint's, checking with exact arithmetic that its epoch and
/// step counters can go on for the `batches` steps of each epoch up to `epochs`; a counter
/// that would overflow is an error naming the file and the metadata entry.
fn resume_point<T>(
    path: &std::path::Path,
    ck: &Checkpoint<T>,
    epochs: usize,
    batches: usize,
) -> Result<usize, TrainError> {
    let bad = |message: String| {
        TrainError::Persist(PersistError::Checkpoint {
            path: path.to_path_buf(),
            message,
        })
    };
    let first = usize::try_from(ck.epoch)
        .ok()
        .and_then(|e| e.checked_add(1))
        .ok_or_else(|| {
            bad(format!(
                "`nn.epoch` = {} is too large to continue from",
                ck.epoch
            ))
        })?;
    let remaining = u64::try_from(epochs.saturating_sub(first - 1)).unwrap_or(u64::MAX);
    let steps = u64::try_from(batches)
        .ok()
        .and_then(|b| b.checked_mul(remaining));
    let last = steps.and_then(|s| ck.optimizer.step.checked_add(s));
    if last.is_none() {
        return Err(bad(format!(
            "`nn.optim.step` = {} overflows in the {remaining} remaining epochs of {batches} steps",
            ck.optimizer.step
        )));
    }
    Ok(first)
}
