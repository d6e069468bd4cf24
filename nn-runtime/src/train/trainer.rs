//! The training loop: mini-batches, loss, backward, penalties, clipping, optimizer step,
//! validation, early stopping, checkpoints and callbacks.

use super::best::Best;
use super::config::{BatchEnd, CheckpointEvery, Clip, Control, EarlyStopping};
use super::evaluate::{check_loss, check_targets, evaluate_with};
use super::history::{EpochRecord, History, StopReason};
use super::progress::{EpochProgress, Progress};
use super::replay::{epoch_rng, Replay, Snapshot};
use super::resume::{resume, Resumed, RunSettings};
use super::step::{state_not_finite, step, StepBuffers, StepOutcome, StepRules, Workspace};
use super::tally::{Tally, TaskKind};
use super::TrainError;
use crate::data::{BatchOrder, Dataset};
use crate::kernel::ThreadGovernor;
use crate::loss::Loss;
use crate::network::{Network, Tape};
use crate::optim::Optimizer;
use crate::persist::PersistError;
use crate::scalar::Float;
use std::path::Path;
use std::time::Instant;

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
    /// `None`: [`default_epochs`] of the training set, decided in `fit`.
    epochs: Option<usize>,
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
    /// Per epoch of the last `fit`, the steps run on the calling thread alone.
    steps_alone: Vec<u64>,
}

impl<'a, L, O> Trainer<'a, L, O> {
    /// A trainer with this loss and optimizer: batch size `min(200, n)` for `n` training
    /// samples ([`DEFAULT_BATCH_SIZE`]), [`default_epochs`] epochs (200 on a small set, down to
    /// 10 on a large one), shuffled with seed 0, no penalties, no clipping, no validation, no
    /// early stopping, progress bar on a terminal. The defaults follow scikit-learn's
    /// `MLPClassifier` and were chosen from `examples/tabular_bench.rs` (docs/training.md,
    /// "Defaults, measured").
    pub fn new(loss: L, optimizer: O) -> Self {
        Self {
            loss,
            optimizer,
            epochs: None,
            batch_size: DEFAULT_BATCH_SIZE,
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
            steps_alone: Vec::new(),
        }
    }

    /// Number of epochs. Without it, [`default_epochs`]`(n, batch size)` for the `n` samples
    /// trained on: `clamp(⌈10,000 / ⌈n / batch⌉⌉, 10, 200)`.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = Some(epochs);
        self
    }

    /// Mini-batch size (the last batch of an epoch may be smaller). Default
    /// [`DEFAULT_BATCH_SIZE`] (200); a size above the training set's `n` samples trains on
    /// all of them in one batch, so the default is `min(200, n)`, scikit-learn's.
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

    /// Early stopping. With a validation set below [`MIN_VALIDATION_SAMPLES`] samples and a
    /// validation monitor, `fit` warns on standard error (unless [`Progress::Off`]) and in
    /// [`History::warnings`]: a score of so few samples moves by whole samples and stops
    /// training at chance.
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

    /// Writes a checkpoint to `path` (safetensors: parameters, optimizer state, epoch, the
    /// early-stopping state as a [`crate::persist::BestEpoch`], and the run's settings) after every
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

    /// For performance work: per epoch of the last [`Trainer::fit`], how many training steps
    /// ran on the calling thread alone although more threads were set, because the
    /// [`ThreadGovernor`](crate::kernel::ThreadGovernor) found them faster that way at the
    /// time (all 0 on one thread).
    pub fn steps_alone(&self) -> &[u64] {
        &self.steps_alone
    }
}

impl<L, O> Trainer<'_, L, O> {
    /// Trains `net` on `train` (validating on `validation`, or on the held-out fraction set
    /// by [`Trainer::validation_fraction`]) and returns the history.
    ///
    /// Errors: invalid settings (checked before the first step, with the checkpoint's
    /// directory and a resumed checkpoint), targets that do not fit the network, or a loss,
    /// gradient, weight or optimizer state that turns non-finite. Training then stops at the
    /// batch that did it, naming epoch and batch, and the network and the optimizer hold the
    /// state after the step before. The loss and gradients are checked at every step; the
    /// weights and the optimizer's state at the end of every epoch (and when training stops
    /// early), since a non-finite value stays non-finite under every update. If one is not
    /// finite, the trainer puts back the state of the epoch's start and replays the epoch up
    /// to the step that made it so: training is deterministic, so this gives the same bits.
    /// No checkpoint, best-epoch copy or returned network holds a value that was not checked.
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
        self.validate_settings()?;
        self.steps_alone.clear();
        // The fraction decides the training set only when no validation set is given.
        let held_out_fraction = self.validation_fraction.filter(|_| validation.is_none());
        let held_out;
        let (train, validation) = match (validation, self.validation_fraction) {
            (Some(v), _) => (train, Some(v)),
            (None, Some(f)) => {
                held_out = train.split(f, Some(self.seed))?;
                if held_out.1.is_empty() {
                    return Err(TrainError::Config(format!(
                        "validation_fraction({f}) of {} training samples holds out no \
                         sample; use a larger fraction, pass a validation set, or train \
                         without one",
                        train.len()
                    )));
                }
                (&held_out.0, Some(&held_out.1))
            }
            (None, None) => (train, None),
        };
        if train.is_empty() {
            return Err(TrainError::Config("the training set is empty".into()));
        }
        if validation.is_some_and(Dataset::is_empty) {
            return Err(TrainError::Config(
                "the validation set is empty: it would give no loss or accuracy to watch; \
                 pass `None` to train without one"
                    .into(),
            ));
        }
        check_targets::<T, IN, OUT>(train, "training")?;
        check_loss::<N, T, L, IN, OUT>(&self.loss, train, "training")?;
        if let Some(v) = validation {
            check_targets::<T, IN, OUT>(v, "validation")?;
            check_loss::<N, T, L, IN, OUT>(&self.loss, v, "validation")?;
        }
        let kind = TaskKind::of(train, N::OUTPUT_ACTIVATION);
        let batch_size = self.batch_size.min(train.len());
        let epochs = self
            .epochs
            .unwrap_or_else(|| default_epochs(train.len(), batch_size));
        // Batch norm cannot train on one sample (PyTorch refuses it too: the running variance
        // is the unbiased one, divided by n − 1): a batch size of 1 is an error, and an
        // epoch's last batch of a single sample is skipped, with a warning.
        let pairs_only = N::LAYERS
            .iter()
            .any(|l| matches!(l.kind, crate::network::LayerKind::BatchNorm));
        if pairs_only && batch_size < 2 {
            return Err(TrainError::Config(format!(
                "`batch_norm` needs at least 2 samples per training batch (its running \
                 variance divides by n - 1, as PyTorch's), but the batch size is 1 for {} \
                 training samples; use a batch size of 2 or more",
                train.len()
            )));
        }
        let mut warnings = self.small_validation(validation.map(Dataset::len));
        if pairs_only && train.len() % batch_size == 1 {
            warnings.push(format!(
                "{} training samples in batches of {batch_size} leave a last batch of 1 \
                 sample, which `batch_norm` cannot train on: each epoch skips it",
                train.len()
            ));
        }
        if self.progress != Progress::Off {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
        }
        let mut order =
            BatchOrder::new(train.len(), batch_size, self.shuffle.then_some(self.seed))?;
        let mut ws = Workspace::new(IN, OUT, batch_size);
        let mut tape = net.new_tape();
        let mut grads = net.zero_gradients();
        let settings = RunSettings {
            batch_size: self.batch_size,
            seed: self.seed,
            shuffle: self.shuffle,
            validation_fraction: held_out_fraction,
            training_samples: train.len(),
            l1: self.l1,
            l2: self.l2,
            penalize_bias: self.penalize_bias,
            clip: self.clip,
            optimizer: self.optimizer.settings(),
        };
        let Resumed {
            first_epoch,
            mut best,
        } = match &self.resume {
            Some(path) => resume(
                net,
                &mut self.optimizer,
                path,
                &settings,
                epochs,
                train.len().div_ceil(batch_size),
            )?,
            None => Resumed {
                first_epoch: 1,
                best: None,
            },
        };
        let base_lr = self.optimizer.learning_rate();
        let penalty = crate::regularization::Penalty {
            l1: self.l1,
            l2: self.l2,
            include_bias: self.penalize_bias,
        };
        let rules = StepRules {
            penalty: &penalty,
            clip: self.clip,
            // Without a penalty or clipping, a plain SGD step is fused into the backward pass
            // (`Network::backward_sgd`): the gradients are never stored, read back and checked.
            fusable: self.clip.is_none()
                && N::TENSORS.iter().all(|t| penalty.coefficients(t).is_none()),
        };
        let mut buf = StepBuffers::<N, IN, OUT> {
            ws: &mut ws,
            tape: &mut tape,
            grads: &mut grads,
        };
        // The checked state at the start of the epoch, to undo a step that went non-finite.
        let mut snap = Snapshot::of(&*net, &self.optimizer);

        let mut history = History {
            epochs: Vec::new(),
            stop: StopReason::Completed,
            restored_epoch: None,
            warnings,
        };
        // The epoch whose weights the network holds (`None` in the middle of an epoch).
        let mut holds = Some(first_epoch - 1);
        let early_stopping = self.early_stopping;
        let patience_out = |best: &Option<Best<T>>| {
            let waited = best.as_ref().map_or(0, |b| b.since);
            early_stopping.is_some_and(|es| waited >= es.patience.max(1))
        };
        // A checkpoint of the epoch where early stopping ended the run resumes to nothing more.
        let last_epoch = if patience_out(&best) {
            history.stop = StopReason::EarlyStopping;
            first_epoch - 1
        } else {
            epochs
        };

        // A schedule's rate for every epoch is checked as the optimizer checks its own, before
        // anything trains (up to a bound on the epochs, and again at each epoch).
        for epoch in first_epoch..=last_epoch.min(first_epoch.saturating_add(100_000)) {
            self.schedule_lr(base_lr, epoch)?;
        }
        self.optimizer.set_learning_rate(base_lr);

        // The epoch (and its rate) a callback stopped in the middle of.
        let mut stopped_in = None;
        // Puts back the state after the step before the first of `epoch` (at rate `lr`) that
        // left a weight or the optimizer's state non-finite, and gives the error naming it.
        macro_rules! undo_bad_step {
            ($epoch:expr, $lr:expr) => {
                Replay {
                    net: &mut *net,
                    loss: &self.loss,
                    optimizer: &mut self.optimizer,
                    rules: &rules,
                    buf: &mut buf,
                    train,
                    order: &order,
                    snap: &snap,
                    seed: self.seed,
                    epoch: $epoch,
                    lr: $lr,
                }
                .undo_first_bad_step()?
            };
        }
        // One tally for the whole run, reset per epoch: no epoch start allocates.
        let mut tally = Tally::new(kind, OUT);
        // With several threads, whether each step's kernels use them (see `ThreadGovernor`).
        let mut governor = ThreadGovernor::new();
        'epochs: for epoch in first_epoch..=last_epoch {
            let lr = self.schedule_lr(base_lr, epoch)?;
            order.shuffle_for(epoch as u64 - 1);
            let progress = EpochProgress::start(self.progress, epoch, epochs, train.len());
            tally.reset();
            let started = Instant::now();
            let alone_before = governor.steps_alone();
            let mut done = 0;
            let mut rng = epoch_rng(self.seed, epoch);
            for (b, idx) in order.batches().enumerate() {
                let n = idx.len();
                if pairs_only && n == 1 {
                    continue;
                }
                let governed = governor.step(n);
                let outcome = step(
                    net,
                    &self.loss,
                    &mut self.optimizer,
                    &rules,
                    &mut buf,
                    train,
                    idx,
                    &mut rng,
                    (epoch, b),
                );
                governed.finish();
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    // A batch the loss or the data refuses: an earlier step of the epoch may
                    // still have left a non-finite value, which must not stay.
                    Err(e) if state_not_finite(&*net, &self.optimizer).is_none() => return Err(e),
                    Err(_) => return Err(undo_bad_step!(epoch, lr)),
                };
                let value = match outcome {
                    StepOutcome::Stepped(value) => value,
                    StepOutcome::NonFinite(what) => {
                        progress.abandon();
                        // The step changed nothing; an earlier one may have left a non-finite
                        // weight or state, which would be the cause.
                        if state_not_finite(&*net, &self.optimizer).is_none() {
                            return Err(TrainError::NonFinite {
                                epoch,
                                batch: b,
                                what: what.what(),
                            });
                        }
                        return Err(undo_bad_step!(epoch, lr));
                    }
                };
                holds = None;
                let parts = buf.tape.output_parts();
                tally.add(value, parts.output, OUT, buf.ws.targets(train.labels(), n));
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
                        stopped_in = Some((epoch, lr));
                        break 'epochs;
                    }
                }
            }
            // A non-finite value stays non-finite under every update, so one look at the end
            // of the epoch sees whether any step overflowed a weight or the optimizer's state
            // (moments can overflow while the weights stay finite).
            if state_not_finite(&*net, &self.optimizer).is_some() {
                progress.abandon();
                return Err(undo_bad_step!(epoch, lr));
            }
            snap.update(&*net, &self.optimizer);
            holds = Some(epoch);
            let seconds = started.elapsed().as_secs_f64();
            let (val_loss, val_metrics) = match validation {
                Some(v) => {
                    let (l, m) =
                        evaluate_with(net, &self.loss, v, batch_size.max(256), buf.tape, buf.ws)?;
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
            };
            let alone = governor.steps_alone() - alone_before;
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
                    let ck = crate::persist::Checkpoint {
                        epoch: epoch as u64,
                        optimizer: self.optimizer.state(),
                        best: best.as_ref().map(Best::to_checkpoint),
                        extra: serde_json::json!({
                            "base_lr": base_lr,
                            "base_lr_bits": base_lr.to_bits(),
                            "run": settings.to_json(),
                        }),
                    };
                    crate::persist::save_checkpoint(
                        &*net,
                        &crate::persist::Metadata::of::<N, IN, OUT>(),
                        &ck,
                        path,
                    )?;
                }
            }
            history.epochs.push(record);
            self.steps_alone.push(alone);
            if history.epochs.len() == super::STALL_EPOCHS && self.progress != Progress::Off {
                if let Some(mut stall) = super::detect_stall(&history.epochs) {
                    stall.targets = target_stats(train);
                    eprintln!("warning: {stall}");
                }
            }
            if stop_cb {
                history.stop = StopReason::Callback;
                break;
            }
            if patience_out(&best) {
                history.stop = StopReason::EarlyStopping;
                break;
            }
        }
        if let Some((epoch, lr)) = stopped_in {
            // Stopped in the middle of an epoch: its steps are checked as at an epoch's end.
            if state_not_finite(&*net, &self.optimizer).is_some() {
                return Err(undo_bad_step!(epoch, lr));
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

    /// Sets the learning rate of `epoch` from the schedule (if any) and checks it as the
    /// optimizer checks its own: a negative, NaN or infinite rate is refused, naming the
    /// epoch, and the rate in force is kept.
    fn schedule_lr<T: Float>(&mut self, base_lr: f64, epoch: usize) -> Result<f64, TrainError>
    where
        O: Optimizer<T>,
    {
        let Some(s) = &self.schedule else {
            return Ok(base_lr);
        };
        let lr = s.lr(base_lr, epoch - 1);
        let before = self.optimizer.learning_rate();
        self.optimizer.set_learning_rate(lr);
        match self.optimizer.validate() {
            Ok(()) => Ok(lr),
            Err(e) => {
                self.optimizer.set_learning_rate(before);
                Err(TrainError::Config(format!(
                    "the learning-rate schedule gives epoch {epoch} the rate {lr}, which the \
                     optimizer refuses: {e}"
                )))
            }
        }
    }

    /// The warning about early stopping on a validation set of `len` samples, if it is below
    /// [`MIN_VALIDATION_SAMPLES`] and early stopping watches it.
    fn small_validation(&self, len: Option<usize>) -> Vec<String> {
        let watches = self
            .early_stopping
            .is_some_and(|es| es.monitor != crate::train::Monitor::TrainLoss);
        match len {
            Some(n) if watches && n < MIN_VALIDATION_SAMPLES => vec![format!(
                "early stopping watches a validation set of {n} samples (fewer than \
                 {MIN_VALIDATION_SAMPLES}): its score moves by 1/{n} per sample and may stop \
                 training early by chance; pass a larger validation set or fraction, or \
                 train without early stopping for the default epochs"
            )],
            _ => Vec::new(),
        }
    }

    /// Checks every setting that needs no data, and that the checkpoint can be written,
    /// before anything trains.
    fn validate_settings<T: Float>(&self) -> Result<(), TrainError>
    where
        O: Optimizer<T>,
    {
        if self.epochs == Some(0) || self.batch_size == 0 {
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
        if let Some((path, _)) = &self.checkpoint {
            check_writable(path)?;
        }
        Ok(())
    }
}

/// The default mini-batch size, 200 as scikit-learn's `MLPClassifier` (`min(200, n)`, since a
/// batch holds at most the training set's `n` samples).
pub const DEFAULT_BATCH_SIZE: usize = 200;

/// Below this many validation samples, early stopping on a validation score warns.
pub const MIN_VALIDATION_SAMPLES: usize = 30;

/// The number of epochs when none is set, for `samples` training samples in batches of
/// `batch_size`: about 10,000 optimizer steps, but at least 10 and at most 200 epochs,
///
/// `epochs = clamp(⌈10,000 / ⌈samples / batch_size⌉⌉, 10, 200)`.
///
/// A data set of up to 10,000 samples in batches of 200 (50 steps an epoch) trains for
/// scikit-learn's 200 epochs; MNIST's 60,000 (300 steps) for 34; a million samples for 10.
/// A batch size of 0 counts as 1.
///
/// ```
/// use nn_runtime::train::default_epochs;
/// assert_eq!(default_epochs(120, 200), 200); // iris: 1 step an epoch
/// assert_eq!(default_epochs(60_000, 200), 34); // MNIST: 300 steps an epoch
/// assert_eq!(default_epochs(1_000_000, 200), 10);
/// ```
pub fn default_epochs(samples: usize, batch_size: usize) -> usize {
    let steps = samples.div_ceil(batch_size.max(1)).max(1);
    10_000usize.div_ceil(steps).clamp(10, 200)
}

/// The mean and standard deviation of the first row of a data set's target vectors.
fn target_stats<T: Float, const IN: usize>(data: &Dataset<T, IN>) -> Option<(f64, f64)> {
    let s = crate::data::Scaler::fit_targets(crate::data::ScalerKind::Standardize, data).ok()?;
    Some((s.offset()[0], s.divisor()[0]))
}

/// Refuses a checkpoint path whose directory does not exist or cannot take a new file (the
/// atomic save writes a temporary file beside it), or that names a directory, by creating
/// and removing a probe file there.
fn check_writable(path: &Path) -> Result<(), TrainError> {
    let io = |source: std::io::Error| {
        TrainError::Persist(PersistError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    if path.is_dir() {
        return Err(io(std::io::Error::other(
            "the checkpoint path is a directory; give a file name",
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let probe = dir.join(format!(".{name}.probe.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            io(std::io::Error::new(
                e.kind(),
                format!("the checkpoint cannot be written in {}: {e}", dir.display()),
            ))
        })?;
    std::fs::remove_file(&probe).map_err(io)
}
