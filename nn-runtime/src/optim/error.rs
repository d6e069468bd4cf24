//! Errors of optimizers, schedules and penalties.

/// An invalid hyperparameter, schedule or penalty setting, or an optimizer state that does
/// not fit.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A hyperparameter outside its valid range (PyTorch's constraint).
    #[error("{optimizer}: invalid {name} = {value}: must be {requirement}")]
    Hyperparameter {
        /// The optimizer, schedule or penalty, e.g. `Adam`.
        optimizer: &'static str,
        /// The hyperparameter, e.g. `betas[0]`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy, e.g. `in [0, 1)`.
        requirement: &'static str,
    },
    /// An invalid combination of hyperparameters.
    #[error("{optimizer}: {message}")]
    Combination {
        /// The optimizer.
        optimizer: &'static str,
        /// What is wrong, e.g. `Nesterov momentum requires a momentum and zero dampening`.
        message: &'static str,
    },
    /// An optimizer state that does not fit this optimizer.
    #[error("optimizer state: {0}")]
    State(String),
}
