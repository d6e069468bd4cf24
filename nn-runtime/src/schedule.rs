//! Learning-rate schedules: the learning rate of an epoch as a closed form of the base
//! learning rate and the epoch number, with the semantics of PyTorch's `torch.optim.lr_scheduler`.
//!
//! A [`Schedule`] maps `(base_lr, epoch)` to the learning rate of that epoch, `epoch`
//! counting from 0 (PyTorch's `last_epoch` after `epoch` calls of `scheduler.step()`). The
//! trainer evaluates it at the start of every epoch and hands the value to the optimizer
//! with [`crate::optim::Optimizer::set_learning_rate`], so every schedule composes with every
//! optimizer. With $\eta_0$ the base learning rate and $e$ the epoch:
//!
//! | schedule | learning rate at epoch $e$ | PyTorch |
//! | --- | --- | --- |
//! | [`Constant`] | $\eta_0$ | none |
//! | [`StepLr`] | $\eta_0 \gamma^{\lfloor e / s \rfloor}$ | `StepLR(step_size=s, gamma=γ)` |
//! | [`ExponentialLr`] | $\eta_0 \gamma^{e}$ | `ExponentialLR(gamma=γ)` |
//! | [`CosineAnnealing`] | $\eta_{min} + (\eta_0 - \eta_{min}) (1 + \cos(\pi e / T_{max})) / 2$ | `CosineAnnealingLR(T_max, eta_min)` |
//! | [`Warmup`] | $\eta_0 (f + (1 - f) e / w)$ for $e < w$, then the next schedule at $e - w$ | `SequentialLR([LinearLR(f, 1, w), next], [w])` |
//! | [`Lambda`] | $\eta_0 \cdot \lambda(e)$ | `LambdaLR(lr_lambda)` |
//!
//! Schedules compose: [`Warmup`] wraps any schedule, `Box<dyn Schedule>` and `&S` are
//! schedules, and [`LrSchedule`] is a closed enum of the built-in ones (handy in
//! configuration). [`Schedule::lr`] never panics; [`Schedule::validate`] reports invalid
//! settings as an [`OptimError`].

use crate::optim::OptimError;

/// A learning-rate schedule: the learning rate of `epoch` (from 0) given the base rate.
pub trait Schedule {
    /// The learning rate of `epoch` (0-based) for base learning rate `base_lr`.
    fn lr(&self, base_lr: f64, epoch: usize) -> f64;

    /// Checks the schedule's settings. The default accepts everything.
    fn validate(&self) -> Result<(), OptimError> {
        Ok(())
    }
}

impl<S: Schedule + ?Sized> Schedule for &S {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        (**self).lr(base_lr, epoch)
    }
    fn validate(&self) -> Result<(), OptimError> {
        (**self).validate()
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        (**self).lr(base_lr, epoch)
    }
    fn validate(&self) -> Result<(), OptimError> {
        (**self).validate()
    }
}

fn check(
    schedule: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    requirement: &'static str,
) -> Result<(), OptimError> {
    crate::optim::require(schedule, name, value, ok, requirement)
}

/// The base learning rate at every epoch: $\eta_e = \eta_0$.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl Schedule for Constant {
    fn lr(&self, base_lr: f64, _epoch: usize) -> f64 {
        base_lr
    }
}

/// Step decay, PyTorch `StepLR`: $\eta_e = \eta_0 \, \gamma^{\lfloor e / s \rfloor}$ with step
/// size $s \ge 1$ (a step size of 0 is rejected by `validate` and treated as "never decay").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Epochs between decays, $s$.
    pub step_size: usize,
    /// Multiplicative decay $\gamma$ (PyTorch default 0.1).
    pub gamma: f64,
}

impl StepLr {
    /// Decay by `gamma` every `step_size` epochs.
    pub fn new(step_size: usize, gamma: f64) -> Self {
        Self { step_size, gamma }
    }
}

impl Schedule for StepLr {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        let k = epoch.checked_div(self.step_size).unwrap_or(0);
        base_lr * self.gamma.powf(k as f64)
    }
    fn validate(&self) -> Result<(), OptimError> {
        check(
            "StepLR",
            "step_size",
            self.step_size as f64,
            self.step_size >= 1,
            ">= 1",
        )?;
        check(
            "StepLR",
            "gamma",
            self.gamma,
            crate::optim::non_negative(self.gamma),
            "finite and >= 0",
        )
    }
}

/// Exponential decay, PyTorch `ExponentialLR`: $\eta_e = \eta_0 \, \gamma^{e}$.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Multiplicative decay per epoch $\gamma$.
    pub gamma: f64,
}

impl ExponentialLr {
    /// Decay by `gamma` every epoch.
    pub fn new(gamma: f64) -> Self {
        Self { gamma }
    }
}

impl Schedule for ExponentialLr {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * self.gamma.powf(epoch as f64)
    }
    fn validate(&self) -> Result<(), OptimError> {
        check(
            "ExponentialLR",
            "gamma",
            self.gamma,
            crate::optim::non_negative(self.gamma),
            "finite and >= 0",
        )
    }
}

/// Cosine annealing, PyTorch `CosineAnnealingLR`'s closed form:
/// $\eta_e = \eta_{min} + (\eta_0 - \eta_{min}) \, (1 + \cos(\pi e / T_{max})) / 2$.
///
/// The rate falls from $\eta_0$ at $e = 0$ to $\eta_{min}$ at $e = T_{max}$; past
/// $T_{max}$ the closed form continues periodically (it rises again), as PyTorch's does.
/// $T_{max} = 0$ is rejected by `validate` and gives $\eta_{min}$.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    /// Half period in epochs, $T_{max}$.
    pub t_max: usize,
    /// Floor $\eta_{min}$ (absolute, not relative to the base rate; PyTorch default 0).
    pub eta_min: f64,
}

impl CosineAnnealing {
    /// Anneal to `eta_min` over `t_max` epochs.
    pub fn new(t_max: usize, eta_min: f64) -> Self {
        Self { t_max, eta_min }
    }
}

impl Schedule for CosineAnnealing {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        if self.t_max == 0 {
            return self.eta_min;
        }
        let phase = std::f64::consts::PI * epoch as f64 / self.t_max as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
    fn validate(&self) -> Result<(), OptimError> {
        check(
            "CosineAnnealingLR",
            "t_max",
            self.t_max as f64,
            self.t_max >= 1,
            ">= 1",
        )?;
        check(
            "CosineAnnealingLR",
            "eta_min",
            self.eta_min,
            crate::optim::non_negative(self.eta_min),
            "finite and >= 0",
        )
    }
}

/// Linear warmup, then another schedule: PyTorch
/// `SequentialLR([LinearLR(start_factor=f, end_factor=1, total_iters=w), then], milestones=[w])`.
///
/// $\eta_e = \eta_0 \, (f + (1 - f)\, e / w)$ for $e < w$, and `then.lr(η₀, e − w)` from
/// epoch $w$ on (the next schedule starts at its own epoch 0). $f$ is in $(0, 1]$
/// (PyTorch's `LinearLR` default is $1/3$); $w = 0$ means no warmup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup<S> {
    /// Warmup length in epochs, $w$.
    pub epochs: usize,
    /// The factor of the first epoch, $f$.
    pub start_factor: f64,
    /// The schedule after the warmup.
    pub then: S,
}

impl<S: Schedule> Warmup<S> {
    /// `epochs` epochs of linear warmup from `start_factor · η₀` toward `η₀`, then `then`.
    pub fn new(epochs: usize, start_factor: f64, then: S) -> Self {
        Self {
            epochs,
            start_factor,
            then,
        }
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        if epoch < self.epochs {
            let f = self.start_factor;
            base_lr * (f + (1.0 - f) * epoch as f64 / self.epochs as f64)
        } else {
            self.then.lr(base_lr, epoch - self.epochs)
        }
    }
    fn validate(&self) -> Result<(), OptimError> {
        let f = self.start_factor;
        check(
            "Warmup",
            "start_factor",
            f,
            f > 0.0 && f <= 1.0,
            "in (0, 1]",
        )?;
        self.then.validate()
    }
}

/// A factor from a function, PyTorch `LambdaLR`: $\eta_e = \eta_0 \cdot \lambda(e)$.
#[derive(Clone, Copy, Debug)]
pub struct Lambda<F>(pub F);

impl<F: Fn(usize) -> f64> Schedule for Lambda<F> {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * (self.0)(epoch)
    }
}

/// The built-in schedules as one type (for configuration), each as its struct documents.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// [`Constant`].
    Constant,
    /// [`StepLr`].
    Step(StepLr),
    /// [`ExponentialLr`].
    Exponential(ExponentialLr),
    /// [`CosineAnnealing`].
    Cosine(CosineAnnealing),
    /// [`Warmup`] followed by another built-in schedule.
    Warmup(Box<Warmup<LrSchedule>>),
}

impl LrSchedule {
    /// Prepends a linear warmup of `epochs` epochs from `start_factor` to this schedule.
    pub fn with_warmup(self, epochs: usize, start_factor: f64) -> Self {
        Self::Warmup(Box::new(Warmup::new(epochs, start_factor, self)))
    }
}

impl Schedule for LrSchedule {
    fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        match self {
            Self::Constant => Constant.lr(base_lr, epoch),
            Self::Step(s) => s.lr(base_lr, epoch),
            Self::Exponential(s) => s.lr(base_lr, epoch),
            Self::Cosine(s) => s.lr(base_lr, epoch),
            Self::Warmup(s) => s.lr(base_lr, epoch),
        }
    }
    fn validate(&self) -> Result<(), OptimError> {
        match self {
            Self::Constant => Ok(()),
            Self::Step(s) => s.validate(),
            Self::Exponential(s) => s.validate(),
            Self::Cosine(s) => s.validate(),
            Self::Warmup(s) => s.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn step_lr_matches_torch_closed_form() {
        // StepLR(step_size=3, gamma=0.1), lr 0.1: 0.1 x3, 0.01 x3, 0.001 ...
        let s = StepLr::new(3, 0.1);
        let want = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001];
        for (e, w) in want.iter().enumerate() {
            close(s.lr(0.1, e), *w);
        }
    }

    #[test]
    fn exponential_matches_torch_closed_form() {
        let s = ExponentialLr::new(0.5);
        for (e, w) in [1.0, 0.5, 0.25, 0.125].iter().enumerate() {
            close(s.lr(1.0, e), *w);
        }
    }

    #[test]
    fn cosine_matches_torch_closed_form() {
        // CosineAnnealingLR(T_max=4, eta_min=0.01), base 0.1:
        // e=1: 0.01 + 0.09*(1+cos(pi/4))/2 = 0.01 + 0.09*0.853553390593 = 0.086819805153
        let s = CosineAnnealing::new(4, 0.01);
        close(s.lr(0.1, 0), 0.1);
        close(
            s.lr(0.1, 1),
            0.01 + 0.09 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0,
        );
        close(s.lr(0.1, 2), 0.055);
        close(s.lr(0.1, 4), 0.01);
        // Periodic past T_max, like torch's closed form.
        close(s.lr(0.1, 6), 0.055);
        close(s.lr(0.1, 8), 0.1);
    }

    #[test]
    fn warmup_then_cosine() {
        let s = Warmup::new(4, 0.25, CosineAnnealing::new(2, 0.0));
        let got: Vec<f64> = (0..7).map(|e| s.lr(1.0, e)).collect();
        let want = [0.25, 0.4375, 0.625, 0.8125, 1.0, 0.5, 0.0];
        for (g, w) in got.iter().zip(want) {
            close(*g, w);
        }
        assert!(s.validate().is_ok());
    }

    #[test]
    fn enum_and_boxed_compose() {
        let e = LrSchedule::Step(StepLr::new(2, 0.5)).with_warmup(2, 0.5);
        let b: Box<dyn Schedule> = Box::new(e.clone());
        for epoch in 0..8 {
            close(b.lr(0.2, epoch), e.lr(0.2, epoch));
        }
        close(e.lr(0.2, 0), 0.1);
        close(e.lr(0.2, 1), 0.15);
        close(e.lr(0.2, 2), 0.2);
        close(e.lr(0.2, 4), 0.1);
        close(Lambda(|e| 1.0 / (e as f64 + 1.0)).lr(0.3, 2), 0.1);
    }

    #[test]
    fn invalid_settings_are_errors_not_panics() {
        assert!(StepLr::new(0, 0.1).validate().is_err());
        assert_eq!(StepLr::new(0, 0.1).lr(0.1, 5), 0.1);
        assert!(CosineAnnealing::new(0, 0.0).validate().is_err());
        assert_eq!(CosineAnnealing::new(0, 0.0).lr(0.1, 3), 0.0);
        assert!(ExponentialLr::new(-1.0).validate().is_err());
        assert!(Warmup::new(3, 0.0, Constant).validate().is_err());
        assert!(LrSchedule::Warmup(Box::new(Warmup::new(
            1,
            0.5,
            LrSchedule::Step(StepLr::new(0, 0.1))
        )))
        .validate()
        .is_err());
    }
}
