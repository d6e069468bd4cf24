//! The training loop: mini-batches, loss, backward, penalties, clipping, optimizer step,
//! validation, early stopping, checkpoints and callbacks.

use super::best::{base_lr_of, Best};
use super::history::{EpochRecord, History, Metrics, StopReason};
use super::progress::{EpochProgress, Progress};
use super::tally::{Tally, TaskKind};
use super::TrainError;
use crate::data::{BatchOrder, Dataset, Labels};
use crate::kernel::ThreadGovernor;
use crate::loss::{loss_on_output, Loss, Targets};
use crate::network::{BatchView, Network, Parameters, Tape};
use crate::optim::Optimizer;
use crate::scalar::Float;
use nalgebra::{Const, Dyn};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;

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
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Whether to restore the weights of the best epoch at the end, whatever ended training:
    /// patience, a callback (also in the middle of an epoch) or the last epoch.
    pub restore_best: bool,
}

impl EarlyStopping {
    /// Watch the validation loss with this patience, `min_delta` 0, restoring the best weights.
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

type BatchCallback<'a> = Box<dyn FnMut(&BatchEnd) -> Control + 'a>;
type EpochCallback<'a> = Box<dyn FnMut(&EpochRecord) -> Control + 'a>;

/// Trains a network: `Trainer::new(loss, optimizer)`, options by builder methods, then
/// [`Trainer::fit`].
///
/// Training is deterministic for a given seed: the batch order, dropout masks and therefore
/// the weights repeat bit for bit.
///
/// ```
/// use nn_macros::network;
/// use nn_runtime::data::{Dataset, Labels};
/// use nn_runtime::loss::CrossEntropy;
/// use nn_runtime::optim::Adam;
/// use nn_runtime::prelude::*;
/// use nn_runtime::train::{EarlyStopping, Progress, Trainer};
///
/// network! { Xor < dense(2 -> 8, tanh), dense(8 -> 2, softmax) > }
///
/// let x = [0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
/// let data = Dataset::<f32, 2>::from_slices(&x, Labels::Classes { labels: vec![0, 1, 1, 0], classes: 2 }).unwrap();
/// let mut net = Xor::new(&mut StdRng::seed_from_u64(1));
/// let history = Trainer::new(CrossEntropy, Adam::new(0.05))
///     .epochs(300)
///     .batch_size(4)
///     .early_stopping(EarlyStopping::new(20).monitor(nn_runtime::train::Monitor::TrainLoss))
///     .progress(Progress::Off)
///     .fit(&mut net, &data, None)
///     .unwrap();
/// assert_eq!(history.last().unwrap().train_metrics.accuracy(), Some(1.0));
/// ```
pub struct Trainer<'a, L, O> {
    loss: L,
    optimizer: O,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    l1: f64,
    l2: f64,
    penalize_bias: bool,
    clip: Option<Clip>,
    validation_fraction: Option<f64>,
    early_stopping: Option<EarlyStopping>,
    schedule: Option<Box<dyn crate::schedule::Schedule + 'a>>,
    progress: Progress,
    checkpoint: Option<(std::path::PathBuf, CheckpointEvery)>,
    resume: Option<std::path::PathBuf>,
    on_batch: Option<BatchCallback<'a>>,
    on_epoch: Option<EpochCallback<'a>>,
}

impl<'a, L, O> Trainer<'a, L, O> {
    /// A trainer with this loss and optimizer: 10 epochs, batch size 32, shuffled with seed 0,
    /// no penalties, no clipping, progress bar on a terminal.
    pub fn new(loss: L, optimizer: O) -> Self {
        Self {
            loss,
            optimizer,
            epochs: 10,
            batch_size: 32,
            seed: 0,
            shuffle: true,
            l1: 0.0,
            l2: 0.0,
            penalize_bias: false,
            clip: None,
            validation_fraction: None,
            early_stopping: None,
            schedule: None,
            progress: Progress::Auto,
            checkpoint: None,
            resume: None,
            on_batch: None,
            on_epoch: None,
        }
    }

    /// Number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Mini-batch size (the last batch of an epoch may be smaller).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Seed of the batch order and dropout masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to reshuffle the samples every epoch (default true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Global L1 penalty `λ₁ Σ|w|` on every weight, added to the loss and its gradient.
    pub fn l1(mut self, lambda: f64) -> Self {
        self.l1 = lambda;
        self
    }

    /// Global L2 penalty on every weight (convention of [`crate::regularization`]).
    pub fn l2(mut self, lambda: f64) -> Self {
        self.l2 = lambda;
        self
    }

    /// Whether the global penalties also apply to biases (default false).
    pub fn penalize_bias(mut self, yes: bool) -> Self {
        self.penalize_bias = yes;
        self
    }

    /// Gradient clipping before each step.
    pub fn clip(mut self, clip: Clip) -> Self {
        self.clip = Some(clip);
        self
    }

    /// Hold out this fraction of the training set (the last samples after a seeded shuffle)
    /// for validation, when `fit` is given no validation set.
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.validation_fraction = Some(fraction);
        self
    }

    /// Early stopping.
    pub fn early_stopping(mut self, es: EarlyStopping) -> Self {
        self.early_stopping = Some(es);
        self
    }

    /// A learning-rate schedule, evaluated at the start of every epoch from the optimizer's
    /// initial learning rate.
    pub fn schedule(mut self, schedule: impl crate::schedule::Schedule + 'a) -> Self {
        self.schedule = Some(Box::new(schedule));
        self
    }

    /// How to report progress.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Writes a checkpoint to `path` (safetensors: parameters, optimizer state, epoch, and the
    /// early-stopping state: best score, best epoch, epochs since, best weights) after every
    /// epoch or at the best epoch. Saves are atomic: a crash leaves the previous file.
    pub fn checkpoint(
        mut self,
        path: impl Into<std::path::PathBuf>,
        every: CheckpointEvery,
    ) -> Self {
        self.checkpoint = Some((path.into(), every));
        self
    }

    /// Resumes from a checkpoint written by [`Trainer::checkpoint`]: loads the parameters into
    /// the network, the optimizer and early-stopping state, and continues after the saved
    /// epoch. With the same settings and seed, the result equals an uninterrupted run bit for
    /// bit, early stopping included. A checkpoint that does not fit, whose epoch or step
    /// counter would overflow, or whose learning rate is invalid is refused with an error
    /// naming the file, before anything changes.
    pub fn resume_from(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    /// A closure called after every batch; returning [`Control::Stop`] ends training.
    pub fn on_batch(mut self, f: impl FnMut(&BatchEnd) -> Control + 'a) -> Self {
        self.on_batch = Some(Box::new(f));
        self
    }

    /// A closure called after every epoch; returning [`Control::Stop`] ends training.
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) -> Control + 'a) -> Self {
        self.on_epoch = Some(Box::new(f));
        self
    }

    /// The optimizer (for its state after training).
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The loss.
    pub fn loss(&self) -> &L {
        &self.loss
    }
}

/// Reusable per-batch buffers: sized once for the batch size, so a step after the first
/// allocates nothing.
struct Workspace<T> {
    inputs: Vec<T>,
    classes: Vec<usize>,
    values: Vec<T>,
}

impl<T: Float> Workspace<T> {
    fn new(inputs: usize, outputs: usize, batch: usize) -> Self {
        Self {
            inputs: vec![T::zero(); inputs * batch],
            classes: Vec::with_capacity(batch),
            values: vec![T::zero(); outputs * batch],
        }
    }

    /// Gathers samples `idx` of `data`: inputs into the input buffer, targets into the class
    /// or value buffer.
    fn gather<const IN: usize>(
        &mut self,
        data: &Dataset<T, IN>,
        idx: &[usize],
    ) -> Result<(), TrainError> {
        data.gather_inputs(idx, &mut self.inputs);
        match data.labels() {
            Labels::Classes { .. } => data.gather_classes(idx, &mut self.classes)?,
            Labels::Values { rows, .. } => {
                let need = rows * idx.len();
                if self.values.len() < need {
                    self.values.resize(need, T::zero());
                }
                data.gather_values(idx, &mut self.values)?
            }
        }
        Ok(())
    }

    fn targets<'b>(&'b self, data_labels: &Labels<T>, n: usize) -> Targets<'b, T> {
        match data_labels {
            Labels::Classes { .. } => Targets::Classes(&self.classes[..n]),
            Labels::Values { rows, .. } => Targets::Values(&self.values[..rows * n]),
        }
    }

    fn view<const IN: usize>(&self, n: usize) -> BatchView<'_, T, IN> {
        BatchView::from_slice_generic(&self.inputs[..IN * n], Const::<IN>, Dyn(n))
    }
}

impl<L, O> Trainer<'_, L, O> {
    /// Trains `net` on `train` (validating on `validation`, or on the held-out fraction set
    /// by [`Trainer::validation_fraction`]) and returns the history.
    ///
    /// Errors: invalid settings, targets that do not fit the network, or a loss or gradient
    /// that turns non-finite (training stops at that batch, naming epoch and batch, and the
    /// network keeps the weights of the step before).
    pub fn fit<N, T, const IN: usize, const OUT: usize>(
        &mut self,
        net: &mut N,
        train: &Dataset<T, IN>,
        validation: Option<&Dataset<T, IN>>,
    ) -> Result<History, TrainError>
    where
        N: Network<IN, OUT, Scalar = T>,
        T: Float,
        L: Loss<T>,
        O: Optimizer<T>,
    {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(TrainError::Config(
                "epochs and batch size must be at least 1".into(),
            ));
        }
        self.optimizer.validate()?;
        crate::regularization::Penalty::new(self.l1, self.l2).validate()?;
        if let Some(s) = &self.schedule {
            s.validate()?;
        }
        match self.clip {
            Some(Clip::Norm(v)) | Some(Clip::Value(v)) if !(v > 0.0 && v.is_finite()) => {
                return Err(TrainError::Config(format!(
                    "clipping threshold must be positive and finite, got {v}"
                )));
            }
            _ => {}
        }
        if let Some(f) = self.validation_fraction {
            if !(f > 0.0 && f < 1.0) {
                return Err(TrainError::Config(format!(
                    "validation fraction must be in (0, 1), got {f}"
                )));
            }
        }
        let held_out;
        let (train, validation) = match (validation, self.validation_fraction) {
            (Some(v), _) => (train, Some(v)),
            (None, Some(f)) => {
                held_out = train.split(f, Some(self.seed))?;
                (&held_out.0, Some(&held_out.1))
            }
            (None, None) => (train, None),
        };
        if train.is_empty() {
            return Err(TrainError::Config("the training set is empty".into()));
        }
        check_targets::<T, IN, OUT>(train, "training")?;
        if let Some(v) = validation {
            check_targets::<T, IN, OUT>(v, "validation")?;
        }
        let kind = TaskKind::of(train, N::OUTPUT_ACTIVATION);
        let batch_size = self.batch_size.min(train.len());
        let mut order =
            BatchOrder::new(train.len(), batch_size, self.shuffle.then_some(self.seed))?;
        let mut ws = Workspace::new(IN, OUT, batch_size);
        let mut tape = net.new_tape();
        let mut grads = net.zero_gradients();
        let mut first_epoch = 1;
        let mut best: Option<Best<T>> = None;
        if let Some(path) = &self.resume {
            // Everything is checked before training starts; on an error the network keeps
            // its weights and the optimizer its state.
            let before = (net.to_flat(), self.optimizer.state());
            let (_, mut ck) = crate::persist::load_checkpoint_into(net, path)?;
            let named =
                |e: &dyn std::fmt::Display| TrainError::Config(format!("{}: {e}", path.display()));
            let batches = train.len().div_ceil(batch_size);
            let resumed = resume_point(path, &ck, self.epochs, batches).and_then(|first| {
                best = Best::take_from(&mut ck, N::TENSORS, path)?;
                self.optimizer
                    .load_state_for(&ck.optimizer, N::TENSORS)
                    .map_err(|e| named(&e))?;
                if let Some(base) = base_lr_of(&ck.extra) {
                    self.optimizer.set_learning_rate(base);
                }
                // The learning rate comes from the file: it must be valid too.
                self.optimizer.validate().map_err(|e| named(&e))?;
                Ok(first)
            });
            first_epoch = match resumed {
                Ok(first) => first,
                Err(e) => {
                    net.copy_from_flat(&before.0);
                    let _ = self.optimizer.load_state(&before.1);
                    self.optimizer.set_learning_rate(before.1.lr);
                    return Err(e);
                }
            };
        }
        let base_lr = self.optimizer.learning_rate();
        let penalty = crate::regularization::Penalty {
            l1: self.l1,
            l2: self.l2,
            include_bias: self.penalize_bias,
        };
        // Without a penalty or clipping, a plain SGD step is fused into the backward pass
        // (`Network::backward_sgd`): the gradients are never stored, read back and checked.
        let fusable =
            self.clip.is_none() && N::TENSORS.iter().all(|t| penalty.coefficients(t).is_none());

        let mut history = History {
            epochs: Vec::new(),
            stop: StopReason::Completed,
            restored_epoch: None,
        };
        // The epoch whose weights the network holds (`None` in the middle of an epoch).
        let mut holds = Some(first_epoch - 1);
        let patience_out = |best: &Option<Best<T>>| {
            let waited = best.as_ref().map_or(0, |b| b.since);
            self.early_stopping
                .is_some_and(|es| waited >= es.patience.max(1))
        };
        // A checkpoint of the epoch where early stopping ended the run resumes to nothing more.
        let last_epoch = if patience_out(&best) {
            history.stop = StopReason::EarlyStopping;
            first_epoch - 1
        } else {
            self.epochs
        };

        // One tally for the whole run, reset per epoch: no epoch start allocates.
        let mut tally = Tally::new(kind, OUT);
        // With several threads, whether each step's kernels use them (see `ThreadGovernor`).
        let mut governor = ThreadGovernor::new();
        'epochs: for epoch in first_epoch..=last_epoch {
            // Dropout masks come from an rng seeded by (seed, epoch): a resumed run draws the
            // same masks as an uninterrupted one.
            let mut rng = StdRng::seed_from_u64(
                self.seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03),
            );
            let lr = match &self.schedule {
                Some(s) => s.lr(base_lr, epoch - 1),
                None => base_lr,
            };
            self.optimizer.set_learning_rate(lr);
            order.shuffle_for(epoch as u64 - 1);
            let progress = EpochProgress::start(self.progress, epoch, self.epochs, train.len());
            tally.reset();
            let started = Instant::now();
            let alone_before = governor.steps_alone();
            let mut done = 0;
            for (b, idx) in order.batches().enumerate() {
                let n = idx.len();
                let step = governor.step(n);
                ws.gather(train, idx)?;
                let x = ws.view::<IN>(n);
                net.forward_train(x, &mut tape, &mut rng);
                let targets = ws.targets(train.labels(), n);
                let (value, wrt) = loss_on_output(
                    &self.loss,
                    N::OUTPUT_ACTIVATION,
                    tape.output_parts(),
                    targets,
                )
                .map_err(|source| TrainError::Loss {
                    epoch,
                    batch: b,
                    source,
                })?;
                let scale = self.optimizer.linear_step().filter(|_| fusable);
                // `Some(stepped)` when the fused path ran: if it could not step, it wrote the
                // gradients for the checked path. A non-finite loss takes the checked path,
                // which reports it.
                let fused = match scale {
                    Some(s) if value.is_finite() => {
                        Some(net.backward_sgd(x, &mut tape, wrt, T::of(s), &mut grads))
                    }
                    _ => None,
                };
                let value = if fused == Some(true) {
                    self.optimizer.begin_step();
                    value.to_f64()
                } else {
                    if fused.is_none() {
                        net.backward(x, &mut tape, wrt, &mut grads);
                    }
                    let value = value.to_f64() + penalty.apply(&*net, &mut grads);
                    let mut finite = true;
                    grads.for_each_tensor(&mut |_, g| finite &= crate::kernel::all_finite(g));
                    if !value.is_finite() || !finite {
                        return Err(TrainError::NonFinite {
                            epoch,
                            batch: b,
                            what: if value.is_finite() {
                                "gradient"
                            } else {
                                "loss"
                            },
                        });
                    }
                    match self.clip {
                        Some(Clip::Norm(max)) => {
                            crate::regularization::clip_grad_norm(&mut grads, max);
                        }
                        Some(Clip::Value(v)) => {
                            crate::regularization::clip_grad_value(&mut grads, v)
                        }
                        None => {}
                    }
                    self.optimizer.step(net, &grads);
                    value
                };
                step.finish();
                holds = None;
                let parts = tape.output_parts();
                tally.add(value, parts.output, OUT, ws.targets(train.labels(), n));
                done += n;
                progress.batch(done, tally.loss(), tally.accuracy(kind));
                if let Some(cb) = self.on_batch.as_mut() {
                    let info = BatchEnd {
                        epoch,
                        batch: b,
                        loss: value,
                        samples: n,
                    };
                    if cb(&info) == Control::Stop {
                        progress.abandon();
                        history.stop = StopReason::Callback;
                        break 'epochs;
                    }
                }
            }
            holds = Some(epoch);
            let seconds = started.elapsed().as_secs_f64();
            let (val_loss, val_metrics) = match validation {
                Some(v) => {
                    let (l, m) =
                        evaluate_with(net, &self.loss, v, batch_size.max(256), &mut tape, &mut ws)?;
                    (Some(l), Some(m))
                }
                None => (None, None),
            };
            let record = EpochRecord {
                epoch,
                train_loss: tally.loss(),
                train_metrics: tally.metrics(kind),
                val_loss,
                val_metrics,
                learning_rate: lr,
                seconds,
                samples_per_second: train.len() as f64 / seconds.max(1e-12),
                steps_alone: governor.steps_alone() - alone_before,
            };
            progress.finish(&record.to_string());
            let stop_cb = self
                .on_epoch
                .as_mut()
                .is_some_and(|cb| cb(&record) == Control::Stop);
            let es = self
                .early_stopping
                .unwrap_or(EarlyStopping::new(usize::MAX).restore_best(false));
            let keep = self.early_stopping.is_some_and(|es| es.restore_best);
            let improved = Best::update(&mut best, &es, &record, &*net, keep);
            if let Some((path, every)) = &self.checkpoint {
                if *every == CheckpointEvery::Epoch || improved {
                    let mut ck = crate::persist::Checkpoint {
                        epoch: epoch as u64,
                        optimizer: self.optimizer.state(),
                        extra: serde_json::json!({
                            "base_lr": base_lr,
                            "base_lr_bits": base_lr.to_bits(),
                        }),
                    };
                    if let Some(b) = &best {
                        b.put_into(&mut ck, N::TENSORS);
                    }
                    crate::persist::save_checkpoint(
                        &*net,
                        &crate::persist::Metadata::of::<N, IN, OUT>(),
                        &ck,
                        path,
                    )?;
                }
            }
            history.epochs.push(record);
            if stop_cb {
                history.stop = StopReason::Callback;
                break;
            }
            if patience_out(&best) {
                history.stop = StopReason::EarlyStopping;
                break;
            }
        }
        if let (Some(es), Some(b)) = (self.early_stopping, &best) {
            // Keras semantics: restore the best weights whatever stopped training, also in the
            // middle of an epoch.
            if es.restore_best && holds != Some(b.epoch) && net.copy_from_flat(&b.weights) {
                history.restored_epoch = Some(b.epoch);
            }
        }
        Ok(history)
    }
}

/// The first epoch after a checkpoint's, checking with exact arithmetic that its epoch and
/// step counters can go on for the `batches` steps of each epoch up to `epochs`; a counter
/// that would overflow is an error naming the file and the metadata entry.
fn resume_point<T>(
    path: &std::path::Path,
    ck: &crate::persist::Checkpoint<T>,
    epochs: usize,
    batches: usize,
) -> Result<usize, TrainError> {
    let bad = |message: String| {
        TrainError::Persist(crate::persist::PersistError::Checkpoint {
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

/// Refuses targets that do not fit the network's output.
fn check_targets<T: Float, const IN: usize, const OUT: usize>(
    data: &Dataset<T, IN>,
    which: &str,
) -> Result<(), TrainError> {
    match data.labels() {
        Labels::Classes { labels, .. } => {
            if let Some((sample, &class)) = labels.iter().enumerate().find(|(_, &c)| c >= OUT) {
                return Err(TrainError::Config(format!(
                    "{which} set: sample {sample} has class {class}, but the network has {OUT} outputs"
                )));
            }
        }
        Labels::Values { rows, .. } if *rows != OUT => {
            return Err(TrainError::Config(format!(
                "{which} set: targets have {rows} values, but the network has {OUT} outputs"
            )));
        }
        Labels::Values { .. } => {}
    }
    Ok(())
}

fn evaluate_with<N, T, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN>,
    chunk: usize,
    tape: &mut N::Tape,
    ws: &mut Workspace<T>,
) -> Result<(f64, Metrics), TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + ?Sized,
{
    let kind = TaskKind::of(data, N::OUTPUT_ACTIVATION);
    let mut tally = Tally::new(kind, OUT);
    let all: Vec<usize> = (0..data.len()).collect();
    if ws.inputs.len() < IN * chunk {
        ws.inputs.resize(IN * chunk, T::zero());
    }
    for idx in all.chunks(chunk) {
        let n = idx.len();
        ws.gather(data, idx)?;
        net.forward_eval(ws.view::<IN>(n), tape);
        let targets = ws.targets(data.labels(), n);
        let (value, _) = loss_on_output(loss, N::OUTPUT_ACTIVATION, tape.output_parts(), targets)
            .map_err(|source| TrainError::Loss {
            epoch: 0,
            batch: 0,
            source,
        })?;
        tally.add(
            value.to_f64(),
            tape.output_parts().output,
            OUT,
            ws.targets(data.labels(), n),
        );
    }
    Ok((tally.loss(), tally.metrics(kind)))
}

/// The loss (data loss, mean over samples) and metrics of `net` on `data`, in inference mode.
pub fn evaluate<N, T, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN>,
) -> Result<(f64, Metrics), TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + ?Sized,
{
    check_targets::<T, IN, OUT>(data, "evaluation")?;
    let chunk = 512;
    let mut ws = Workspace::new(IN, OUT, chunk);
    let mut tape = net.new_tape();
    evaluate_with(net, loss, data, chunk, &mut tape, &mut ws)
}
