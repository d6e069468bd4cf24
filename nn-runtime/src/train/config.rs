//! The trainer's settings that are types of their own: callbacks' answers, early stopping and
//! what it monitors, gradient clipping, when to checkpoint.

/// What a callback tells the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this batch or epoch (the history so far is returned).
    Stop,
}

/// What the per-batch callback sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchEnd {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Batch within the epoch, from 0.
    pub batch: usize,
    /// The batch's loss (data loss plus penalties).
    pub loss: f64,
    /// Samples in the batch.
    pub samples: usize,
}

/// The quantity early stopping watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// Validation loss (lower is better); the training loss when there is no validation set.
    ValLoss,
    /// Validation accuracy (higher is better); training accuracy without a validation set.
    ValAccuracy,
    /// Training loss.
    TrainLoss,
}

/// Early stopping: stop when the monitored quantity has not improved by more than
/// `min_delta` for `patience` epochs, and (if `restore_best`) put back the best weights,
/// whatever stopped training (Keras semantics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// What to watch.
    pub monitor: Monitor,
    /// Epochs without improvement before stopping. `0` counts as `1`: training stops after
    /// the first epoch that does not improve, the earliest it can (Keras behaves the same).
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Whether to restore the weights of the best epoch at the end, whatever ended training:
    /// patience, a callback (also in the middle of an epoch) or the last epoch.
    pub restore_best: bool,
}

impl EarlyStopping {
    /// Watch the validation loss with this patience (`0` counts as `1`), `min_delta` 0,
    /// restoring the best weights.
    pub fn new(patience: usize) -> Self {
        Self {
            monitor: Monitor::ValLoss,
            patience,
            min_delta: 0.0,
            restore_best: true,
        }
    }

    /// Sets the monitored quantity.
    pub fn monitor(mut self, monitor: Monitor) -> Self {
        self.monitor = monitor;
        self
    }

    /// Sets the smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Whether to restore the best weights at the end.
    pub fn restore_best(mut self, restore: bool) -> Self {
        self.restore_best = restore;
        self
    }
}

/// Gradient clipping applied before each optimizer step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// Scale all gradients so their global 2-norm is at most this (PyTorch `clip_grad_norm_`).
    Norm(f64),
    /// Clamp every gradient value to `[-v, v]` (PyTorch `clip_grad_value_`).
    Value(f64),
}

/// When the trainer writes a checkpoint (parameters, optimizer state, epoch and the
/// early-stopping state, atomically).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointEvery {
    /// After every epoch.
    Epoch,
    /// After an epoch that improves the early-stopping monitor (the validation loss when no
    /// early stopping is set).
    Best,
}
