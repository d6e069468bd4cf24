//! What training returns: per epoch, the losses, metrics, learning rate and time.

use std::fmt;

/// One epoch of training.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples (data loss plus penalties), each batch's
    /// mean weighted by its size: `Σ_b n_b L_b / Σ_b n_b`, PyTorch's per-sample convention.
    pub train_loss: f64,
    /// Training metrics over the epoch (accuracy for classification; MAE, MSE and R² for
    /// regression).
    pub train_metrics: Metrics,
    /// Validation loss (data loss only), if a validation set was given.
    pub val_loss: Option<f64>,
    /// Validation metrics, if a validation set was given.
    pub val_metrics: Option<Metrics>,
    /// Learning rate used in the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch's training steps, in seconds.
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
}

/// Metrics of one pass over a data set; read them with the accessors, which give `None` for a
/// metric the task does not have.
///
/// ```
/// use nn_runtime::train::Metrics;
///
/// let m = Metrics::Regression { mae: 0.5, mse: 0.25, r2: 0.9 };
/// assert_eq!((m.mae(), m.mse(), m.r2(), m.accuracy()), (Some(0.5), Some(0.25), Some(0.9), None));
/// let c = Metrics::Classification { accuracy: 0.75 };
/// assert_eq!((c.accuracy(), c.mae()), (Some(0.75), None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metrics {
    /// Classification: fraction of samples whose predicted class is the label (the arg-max
    /// output; for one output, whether it is above 0.5).
    Classification {
        /// Accuracy in [0, 1].
        accuracy: f64,
    },
    /// Regression against target vectors.
    Regression {
        /// Mean absolute error over all values.
        mae: f64,
        /// Mean squared error over all values.
        mse: f64,
        /// Coefficient of determination `1 - SS_res / SS_tot` over all values.
        r2: f64,
    },
}

impl Metrics {
    /// Accuracy, for classification.
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            Metrics::Classification { accuracy } => Some(*accuracy),
            Metrics::Regression { .. } => None,
        }
    }

    /// Mean absolute error, for regression.
    pub fn mae(&self) -> Option<f64> {
        match self {
            Metrics::Regression { mae, .. } => Some(*mae),
            Metrics::Classification { .. } => None,
        }
    }

    /// Mean squared error, for regression.
    pub fn mse(&self) -> Option<f64> {
        match self {
            Metrics::Regression { mse, .. } => Some(*mse),
            Metrics::Classification { .. } => None,
        }
    }

    /// Coefficient of determination R², for regression.
    pub fn r2(&self) -> Option<f64> {
        match self {
            Metrics::Regression { r2, .. } => Some(*r2),
            Metrics::Classification { .. } => None,
        }
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metrics::Classification { accuracy } => write!(f, "acc {accuracy:.4}"),
            Metrics::Regression { mae, r2, .. } => write!(f, "mae {mae:.4}  r2 {r2:.4}"),
        }
    }
}

impl fmt::Display for EpochRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {:>3}  loss {:.4}  {}",
            self.epoch, self.train_loss, self.train_metrics
        )?;
        if let (Some(l), Some(m)) = (self.val_loss, &self.val_metrics) {
            let m = m
                .to_string()
                .replace("acc", "val_acc")
                .replace("mae", "val_mae")
                .replace("r2", "val_r2");
            write!(f, "  val_loss {l:.4}  {m}")?;
        }
        write!(
            f,
            "  lr {:.2e}  {:.2}s  {:.0} samples/s",
            self.learning_rate, self.seconds, self.samples_per_second
        )
    }
}

/// Why training ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs ran.
    Completed,
    /// Early stopping ran out of patience.
    EarlyStopping,
    /// A callback asked to stop.
    Callback,
}

/// Training history: one record per epoch that ran.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The epochs, in order.
    pub epochs: Vec<EpochRecord>,
    /// Why training ended.
    pub stop: StopReason,
    /// The epoch (from 1) whose weights the network holds at the end when early stopping
    /// restored the best weights; `None` when it holds the last epoch's.
    pub restored_epoch: Option<usize>,
    /// The warnings `fit` gave before training (on standard error unless `Progress::Off`),
    /// such as early stopping on fewer than
    /// [`MIN_VALIDATION_SAMPLES`](crate::train::MIN_VALIDATION_SAMPLES) validation samples.
    pub warnings: Vec<String>,
}

impl History {
    /// The last epoch's record.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.epochs {
            writeln!(f, "{e}")?;
        }
        write!(f, "stopped: {:?}", self.stop)?;
        if let Some(e) = self.restored_epoch {
            write!(f, " (restored the weights of epoch {e})")?;
        }
        Ok(())
    }
}
