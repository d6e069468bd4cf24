//! Noticing a run whose training loss has barely moved after its first epochs, the usual
//! sign of unscaled regression targets (values in the hundreds against outputs near 0) or
//! of a learning rate far too small.

use super::history::{EpochRecord, Metrics};
use std::fmt;

/// Epochs after which [`detect_stall`] looks.
pub const STALL_EPOCHS: usize = 5;

/// A regression run stalls when its loss fell by less than this fraction over the first
/// [`STALL_EPOCHS`] epochs while its training R² is below [`STALL_R2`].
pub const STALL_REGRESSION_DROP: f64 = 0.1;

/// The training R² under which a slowly moving regression loss counts as stalled.
pub const STALL_R2: f64 = 0.5;

/// A classification run stalls when its loss fell by less than this fraction over the
/// first [`STALL_EPOCHS`] epochs.
pub const STALL_CLASSIFICATION_DROP: f64 = 0.01;

/// A run whose training loss has barely moved: the trainer prints it on standard error
/// after epoch [`STALL_EPOCHS`] (unless `Progress::Off`), and [`detect_stall`] finds it in
/// any history.
#[derive(Clone, Debug, PartialEq)]
pub struct Stall {
    /// The epochs compared, first and last.
    pub epochs: (usize, usize),
    /// The training loss of the first and of the last.
    pub loss: (f64, f64),
    /// The training R² of the last, for regression.
    pub r2: Option<f64>,
    /// The mean and standard deviation of the (first row of the) training targets, when the
    /// trainer knows them.
    pub targets: Option<(f64, f64)>,
}

impl Stall {
    /// The relative drop of the loss, `(L_first − L_last) / |L_first|`.
    pub fn drop(&self) -> f64 {
        let (first, last) = self.loss;
        (first - last) / first.abs().max(f64::MIN_POSITIVE)
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.epochs;
        let (first, last) = self.loss;
        write!(
            f,
            "the training loss has barely moved: {first:.4} at epoch {a}, {last:.4} at epoch {b} \
             ({:+.1} %)",
            -100.0 * self.drop()
        )?;
        if let Some(r2) = self.r2 {
            write!(f, ", training R² {r2:.3}")?;
        }
        match self.targets {
            Some((mean, sd)) => write!(
                f,
                "; the targets have mean {mean:.4} and standard deviation {sd:.4}: scale them \
                 (`Preprocessing::fit(&train, .., Some(ScalerKind::Standardize))`, undone by \
                 `Preprocessing::predict`) or raise the learning rate"
            ),
            None => f.write_str(
                "; scale the inputs (and regression targets) or raise the learning rate",
            ),
        }
    }
}

/// The stall in a run's records, judged at its [`STALL_EPOCHS`]-th record against its
/// first: a regression loss that fell by less than [`STALL_REGRESSION_DROP`] with a
/// training R² below [`STALL_R2`], or a classification loss that fell by less than
/// [`STALL_CLASSIFICATION_DROP`]. `None` before that many records, or when the loss moved.
pub fn detect_stall(records: &[EpochRecord]) -> Option<Stall> {
    let (first, last) = (records.first()?, records.get(STALL_EPOCHS - 1)?);
    let mut stall = Stall {
        epochs: (first.epoch, last.epoch),
        loss: (first.train_loss, last.train_loss),
        r2: None,
        targets: None,
    };
    let stalled = match last.train_metrics {
        Metrics::Regression { r2, .. } => {
            stall.r2 = Some(r2);
            stall.drop() < STALL_REGRESSION_DROP && r2 < STALL_R2
        }
        Metrics::Classification { .. } => stall.drop() < STALL_CLASSIFICATION_DROP,
    };
    stalled.then_some(stall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, train_loss: f64, metrics: Metrics) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss,
            train_metrics: metrics,
            val_loss: None,
            val_metrics: None,
            learning_rate: 1e-3,
            seconds: 0.0,
            samples_per_second: 0.0,
        }
    }

    fn run(losses: &[f64], metrics: Metrics) -> Vec<EpochRecord> {
        let epochs = losses.iter().enumerate();
        epochs.map(|(i, &l)| record(i + 1, l, metrics)).collect()
    }

    #[test]
    fn train_stall_is_a_loss_that_barely_moved() {
        let poor = Metrics::Regression {
            mae: 140.0,
            mse: 26_000.0,
            r2: -3.3,
        };
        // The raw-target run of the tabular example: 26017 -> 24553 is a 5.6 % drop.
        let raw = run(&[26016.7, 25678.5, 25326.0, 24961.7, 24552.6], poor);
        let s = detect_stall(&raw).expect("a stall");
        assert_eq!(
            (s.epochs, s.loss, s.r2),
            ((1, 5), (26016.7, 24552.6), Some(-3.3))
        );
        assert!((s.drop() - (26016.7 - 24552.6) / 26016.7).abs() < 1e-15);
        let text = s.to_string();
        assert!(
            text.contains("-5.6 %") && text.contains("R² -3.300"),
            "{text}"
        );
        // Before the fifth epoch nothing is judged.
        assert_eq!(detect_stall(&raw[..4]), None);
        // A loss that fell by 90 % has not stalled; nor a slow one that already fits.
        let scaled = run(&[1.26, 0.59, 0.29, 0.18, 0.13], poor);
        assert_eq!(detect_stall(&scaled), None);
        let good = Metrics::Regression {
            mae: 0.1,
            mse: 0.02,
            r2: 0.97,
        };
        assert_eq!(
            detect_stall(&run(&[0.03, 0.03, 0.03, 0.03, 0.03], good)),
            None
        );
        // Classification: under a 1 % drop only.
        let acc = Metrics::Classification { accuracy: 0.5 };
        assert!(detect_stall(&run(&[0.6920, 0.6920, 0.6919, 0.6919, 0.6918], acc)).is_some());
        assert_eq!(
            detect_stall(&run(&[0.70, 0.66, 0.62, 0.60, 0.58], acc)),
            None
        );
    }
}
