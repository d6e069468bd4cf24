//! Training: the [`Trainer`] loop, its [`History`], progress output and callbacks.

mod best;
mod config;
mod evaluate;
mod history;
mod progress;
mod replay;
mod resume;
mod stall;
mod step;
mod tally;
mod trainer;

pub use config::{BatchEnd, CheckpointEvery, Clip, Control, EarlyStopping, Monitor};
pub use evaluate::evaluate;
pub use history::{EpochRecord, History, Metrics, StopReason};
pub use progress::Progress;
pub use stall::{
    detect_stall, Stall, STALL_CLASSIFICATION_DROP, STALL_EPOCHS, STALL_R2, STALL_REGRESSION_DROP,
};
pub use trainer::{default_epochs, Trainer, DEFAULT_BATCH_SIZE, MIN_VALIDATION_SAMPLES};

use crate::data::DataError;
use crate::loss::LossError;

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A setting is invalid or the data does not fit the network.
    #[error("invalid training setup: {0}")]
    Config(String),
    /// The data could not be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The loss refused a batch.
    #[error("epoch {epoch}, batch {batch}: {source}")]
    Loss {
        /// Epoch, from 1 (0 during evaluation).
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// The loss's error.
        source: LossError,
    },
    /// An optimizer, penalty or schedule setting is invalid.
    #[error(transparent)]
    Optimizer(#[from] crate::optim::OptimError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Persist(#[from] crate::persist::PersistError),
    /// The loss, a gradient, the weights after the optimizer's step or the optimizer's state
    /// became NaN or infinite; the network and the optimizer hold the state they had before
    /// this batch.
    #[error("epoch {epoch}, batch {batch}: the {what} is not finite (NaN or infinite); training stopped with the weights of the previous step")]
    NonFinite {
        /// Epoch, from 1.
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// `loss`, `gradient`, `weights after the optimizer's step` or `optimizer's state
        /// after its step`.
        what: &'static str,
    },
}
