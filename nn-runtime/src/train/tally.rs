//! Running sums of the loss and metrics of a pass over a data set, batch by batch.

use super::history::Metrics;
use crate::data::{Dataset, Labels};
use crate::loss::Targets;
use crate::metrics::{argmax, r2_of_sums};
use crate::network::OutputActivation;
use crate::scalar::Float;

/// Running sums for the loss and metrics of one pass.
pub(crate) struct Tally {
    /// `Σ_b n_b · loss_b`: each batch loss is a mean over its `n_b` samples, so the pass's
    /// loss is the mean over samples (PyTorch's convention), whatever the last batch's size.
    weighted_loss: f64,
    samples: usize,
    correct: usize,
    /// Values whose side of 0.5 matches the target's (binary classification by a sigmoid).
    binary_correct: usize,
    values: usize,
    abs_err: f64,
    /// The network's output width: class labels on one output are counted as 0/1 targets.
    outputs: usize,
    /// Per output row, for R² (regression only).
    rows: Vec<RowSums>,
}

/// Sums over one output row: targets shifted by the row's first target (so the variance
/// does not cancel for targets with a large mean), and squared errors.
#[derive(Clone, Copy, Default)]
struct RowSums {
    shift: Option<f64>,
    sum: f64,
    sum_sq: f64,
    sq_err: f64,
}

impl Tally {
    pub(crate) fn new(kind: TaskKind, rows: usize) -> Self {
        let kind = kind.on_outputs(rows);
        Self {
            weighted_loss: 0.0,
            samples: 0,
            correct: 0,
            binary_correct: 0,
            values: 0,
            abs_err: 0.0,
            outputs: rows,
            rows: if kind == TaskKind::Regression {
                vec![RowSums::default(); rows]
            } else {
                Vec::new()
            },
        }
    }

    /// Starts over (a new epoch), keeping the per-row buffer so no epoch allocates.
    pub(crate) fn reset(&mut self) {
        self.weighted_loss = 0.0;
        self.samples = 0;
        self.correct = 0;
        self.binary_correct = 0;
        self.values = 0;
        self.abs_err = 0.0;
        self.rows.fill(RowSums::default());
    }

    /// Adds a batch: its mean loss, its outputs (`rows x n`) and targets.
    pub(crate) fn add<T: Float>(
        &mut self,
        loss: f64,
        output: &[T],
        rows: usize,
        targets: Targets<'_, T>,
    ) {
        let n = match targets {
            Targets::Classes(labels) => {
                for (col, &y) in output.chunks_exact(rows).zip(labels) {
                    self.correct += usize::from(argmax(col) == y);
                }
                labels.len()
            }
            Targets::Values(y) => {
                for (out, target) in output.chunks_exact(rows).zip(y.chunks_exact(rows)) {
                    for (j, (&o, &t)) in out.iter().zip(target).enumerate() {
                        let (o, t) = (o.to_f64(), t.to_f64());
                        self.binary_correct += usize::from((o > 0.5) == (t > 0.5));
                        self.abs_err += (o - t).abs();
                        if let Some(r) = self.rows.get_mut(j) {
                            let d = t - *r.shift.get_or_insert(t);
                            r.sum += d;
                            r.sum_sq += d * d;
                            r.sq_err += (o - t) * (o - t);
                        }
                    }
                }
                self.values += y.len();
                y.len() / rows.max(1)
            }
        };
        self.weighted_loss += loss * n as f64;
        self.samples += n;
    }

    /// The mean loss over the samples so far, `Σ_b n_b · loss_b / Σ_b n_b`.
    pub(crate) fn loss(&self) -> f64 {
        self.weighted_loss / self.samples.max(1) as f64
    }

    /// Accuracy for class labels (on one output, by the 0.5 threshold) and for 0/1 targets of
    /// a sigmoid output; `None` otherwise.
    pub(crate) fn accuracy(&self, kind: TaskKind) -> Option<f64> {
        match kind.on_outputs(self.outputs) {
            TaskKind::Classes => Some(self.correct as f64 / self.samples.max(1) as f64),
            TaskKind::Binary => Some(self.binary_correct as f64 / self.values.max(1) as f64),
            TaskKind::Regression => None,
        }
    }

    /// Accuracy for class labels, and for 0/1 targets of a sigmoid output (each value on the
    /// right side of 0.5); for other targets the MAE and MSE over all values and R² averaged
    /// over the outputs, as [`crate::metrics::mae`], [`crate::metrics::mse`] and
    /// [`crate::metrics::r2`].
    pub(crate) fn metrics(&self, kind: TaskKind) -> Metrics {
        if let Some(accuracy) = self.accuracy(kind) {
            return Metrics::Classification { accuracy };
        }
        let n = self.samples.max(1) as f64;
        let r2 = self
            .rows
            .iter()
            .map(|r| {
                let ss_tot = (r.sum_sq - r.sum * r.sum / n).max(0.0);
                r2_of_sums(r.sq_err, ss_tot)
            })
            .sum::<f64>()
            / self.rows.len().max(1) as f64;
        let values = self.values.max(1) as f64;
        Metrics::Regression {
            mae: self.abs_err / values,
            mse: self.rows.iter().map(|r| r.sq_err).sum::<f64>() / values,
            r2,
        }
    }
}

/// What the metrics of a data set are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// Class labels: accuracy by arg-max.
    Classes,
    /// 0/1 target values on a sigmoid output: accuracy by thresholding at 0.5.
    Binary,
    /// Other target values: MAE and R².
    Regression,
}

impl TaskKind {
    /// The kind on a network of `outputs` outputs: class labels on one output are 0/1 targets
    /// (accuracy by the 0.5 threshold), as the trainer gives them to the loss.
    pub(crate) fn on_outputs(self, outputs: usize) -> Self {
        match self {
            TaskKind::Classes if super::step::reads_classes_as_values(outputs) => TaskKind::Binary,
            other => other,
        }
    }

    pub(crate) fn of<T: Float, const IN: usize>(
        data: &Dataset<T, IN>,
        output: OutputActivation,
    ) -> Self {
        match data.labels() {
            Labels::Classes { .. } => TaskKind::Classes,
            Labels::Values { values, .. }
                if output == OutputActivation::Sigmoid
                    && values.iter().all(|&v| v == T::zero() || v == T::one()) =>
            {
                TaskKind::Binary
            }
            Labels::Values { .. } => TaskKind::Regression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_sums_match_the_metrics_functions() {
        // Two outputs, the first with a mean of 1e6 (where sum-of-squares formulas lose every
        // digit without the shift), fed in batches of 3, 3 and 1 samples.
        let rows = 2;
        let target: Vec<f64> = (0..7)
            .flat_map(|i| [1e6 + (i * i) as f64 * 0.25, (i as f64).sin()])
            .collect();
        let output: Vec<f64> = (0..7)
            .flat_map(|i| [1e6 + i as f64, (i as f64).sin() + 0.1 * (i % 2) as f64])
            .collect();
        let losses = [0.5, 2.0, 8.0];
        let mut tally = Tally::new(TaskKind::Regression, rows);
        let mut at = 0;
        for (n, loss) in [3, 3, 1].into_iter().zip(losses) {
            let r = at * rows..(at + n) * rows;
            tally.add(loss, &output[r.clone()], rows, Targets::Values(&target[r]));
            at += n;
        }
        let r2 = crate::metrics::r2(&output, &target, rows).unwrap();
        let mae = crate::metrics::mae(&output, &target).unwrap();
        let mse = crate::metrics::mse(&output, &target).unwrap();
        match tally.metrics(TaskKind::Regression) {
            Metrics::Regression {
                mae: m,
                mse: s,
                r2: r,
            } => {
                assert!((r - r2).abs() < 1e-12, "{r} vs {r2}");
                assert!((m - mae).abs() < 1e-12, "{m} vs {mae}");
                assert!((s - mse).abs() < 1e-12 * mse, "{s} vs {mse}");
            }
            other => panic!("{other:?}"),
        }
        // The per-sample mean loss: (3·0.5 + 3·2 + 1·8) / 7.
        assert!((tally.loss() - 15.5 / 7.0).abs() < 1e-15);
        assert_eq!(tally.accuracy(TaskKind::Regression), None);
    }

    #[test]
    fn class_accuracy_counts_arg_max_hits() {
        let mut tally = Tally::new(TaskKind::Classes, 3);
        let output = [0.1f32, 0.7, 0.2, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6];
        tally.add(1.0, &output, 3, Targets::Classes(&[1, 0, 0]));
        assert_eq!(tally.accuracy(TaskKind::Classes), Some(2.0 / 3.0));
        assert_eq!(tally.loss(), 1.0);
    }

    #[test]
    fn class_labels_on_one_output_count_by_the_half_threshold() {
        // The trainer hands class labels on one output to the tally as the values 0 and 1.
        let mut tally = Tally::new(TaskKind::Classes, 1);
        let output = [0.9f64, 0.4, 0.6, 0.2];
        tally.add(0.5, &output, 1, Targets::Values(&[1.0, 1.0, 0.0, 0.0]));
        // Right: samples 0 and 3.
        assert_eq!(tally.accuracy(TaskKind::Classes), Some(0.5));
        assert_eq!(
            tally.metrics(TaskKind::Classes),
            Metrics::Classification { accuracy: 0.5 }
        );
    }
}
