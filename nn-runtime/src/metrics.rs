//! Evaluation metrics: accuracy and the confusion matrix (with per-class precision, recall
//! and F1) for classification, MSE, MAE and R² for regression.
//!
//! Outputs are column-major `rows x n` slices, one column per sample (a [`crate::Batch`]'s
//! `as_slice()`). Sizes that do not agree give a [`MetricsError`], never a panic.

use crate::scalar::Float;
use std::fmt;

/// Why a metric could not be computed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two lengths that must agree do not.
    #[error("{what}: expected {expected}, got {actual}")]
    Length {
        /// What was being measured.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A class index is not below the number of classes.
    #[error("sample {sample}: class {class} is out of range for {classes} classes")]
    ClassOutOfRange {
        /// Sample index.
        sample: usize,
        /// The class.
        class: usize,
        /// Number of classes.
        classes: usize,
    },
    /// There are no samples (or no output rows).
    #[error("no samples to compute a metric on")]
    Empty,
}

fn check(what: &'static str, expected: usize, actual: usize) -> Result<(), MetricsError> {
    if expected == actual {
        Ok(())
    } else {
        Err(MetricsError::Length {
            what,
            expected,
            actual,
        })
    }
}

/// Checks `output` is `rows x n` for `n` samples and returns `n`.
fn samples<T>(output: &[T], rows: usize) -> Result<usize, MetricsError> {
    if rows == 0 || output.is_empty() {
        return Err(MetricsError::Empty);
    }
    check(
        "output length (a multiple of rows)",
        output.len().div_ceil(rows) * rows,
        output.len(),
    )?;
    Ok(output.len() / rows)
}

/// The index of the largest value (the first one on ties; NaN never wins; 0 if all are NaN).
pub fn argmax<T: Float>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

/// The class a network's output column predicts: its [`argmax`], or for a single output
/// (a binary classifier, one sigmoid probability) 1 when the value is above 0.5, else 0 (NaN
/// gives 0).
///
/// ```
/// use nn_runtime::metrics::class_of;
/// assert_eq!(class_of(&[0.1f32, 0.7, 0.2]), 1);
/// assert_eq!(class_of(&[0.7f32]), 1);
/// assert_eq!(class_of(&[0.5f32]), 0);
/// ```
pub fn class_of<T: Float>(column: &[T]) -> usize {
    match column {
        [p] => usize::from(Float::to_f64(*p) > 0.5),
        _ => argmax(column),
    }
}

/// The predicted class of each sample: the [`class_of`] each `rows`-value column (arg-max, or
/// the 0.5 threshold for one row).
pub fn predictions<T: Float>(output: &[T], rows: usize) -> Result<Vec<usize>, MetricsError> {
    samples(output, rows)?;
    Ok(output.chunks_exact(rows).map(class_of).collect())
}

/// Accuracy, `(1/n) * #{i : class_of(output_i) = labels_i}`: arg-max, or for one output row
/// the 0.5 threshold (see [`class_of`]).
pub fn accuracy<T: Float>(
    output: &[T],
    rows: usize,
    labels: &[usize],
) -> Result<f64, MetricsError> {
    let n = samples(output, rows)?;
    check("labels (one per sample)", n, labels.len())?;
    let hits = output
        .chunks_exact(rows)
        .zip(labels)
        .filter(|(col, &l)| class_of(col) == l)
        .count();
    Ok(hits as f64 / n as f64)
}

/// A confusion matrix: `count(t, p)` samples of true class `t` predicted as class `p`.
///
/// From it, for class `c` with true positives `TP = count(c, c)`, false positives
/// `FP = sum_{t != c} count(t, c)` and false negatives `FN = sum_{p != c} count(c, p)`:
/// - precision `= TP / (TP + FP)`,
/// - recall `= TP / (TP + FN)`,
/// - F1 `= 2 * precision * recall / (precision + recall)`,
///
/// each defined as 0 when its denominator is 0 (scikit-learn's `zero_division=0`). Macro
/// averages are the unweighted means over all classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Counts one sample of true class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<(), MetricsError> {
        let classes = self.classes;
        for class in [truth, predicted] {
            if class >= classes {
                return Err(MetricsError::ClassOutOfRange {
                    sample: self.total() as usize,
                    class,
                    classes,
                });
            }
        }
        self.counts[truth * classes + predicted] += 1;
        Ok(())
    }

    /// From true and predicted classes, sample by sample.
    pub fn from_predictions(
        truth: &[usize],
        predicted: &[usize],
        classes: usize,
    ) -> Result<Self, MetricsError> {
        check("predictions (one per label)", truth.len(), predicted.len())?;
        let mut m = Self::new(classes);
        for (&t, &p) in truth.iter().zip(predicted) {
            m.add(t, p)?;
        }
        Ok(m)
    }

    /// From network outputs (`rows x n`, column-major, one class per row, or one row of
    /// probabilities for two classes, see [`class_of`]) and labels.
    pub fn from_outputs<T: Float>(
        output: &[T],
        rows: usize,
        labels: &[usize],
    ) -> Result<Self, MetricsError> {
        let predicted = predictions(output, rows)?;
        let classes = if rows == 1 { 2 } else { rows };
        Self::from_predictions(labels, &predicted, classes)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of true class `truth` predicted as `predicted` (0 out of range).
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        if truth < self.classes && predicted < self.classes {
            self.counts[truth * self.classes + predicted]
        } else {
            0
        }
    }

    /// Number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Correct predictions, the trace.
    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|c| self.count(c, c)).sum()
    }

    /// Accuracy, `trace / total` (0 when empty).
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Samples whose true class is `c` (the row sum).
    pub fn support(&self, c: usize) -> u64 {
        (0..self.classes).map(|p| self.count(c, p)).sum()
    }

    /// Samples predicted as `c` (the column sum).
    pub fn predicted(&self, c: usize) -> u64 {
        (0..self.classes).map(|t| self.count(t, c)).sum()
    }

    /// Precision of class `c`, `TP / (TP + FP)`.
    pub fn precision(&self, c: usize) -> f64 {
        ratio(self.count(c, c), self.predicted(c))
    }

    /// Recall of class `c`, `TP / (TP + FN)`.
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.count(c, c), self.support(c))
    }

    /// F1 of class `c`, `2PR / (P + R)`.
    pub fn f1(&self, c: usize) -> f64 {
        let (p, r) = (self.precision(c), self.recall(c));
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }

    /// Mean precision over classes.
    pub fn macro_precision(&self) -> f64 {
        self.mean(Self::precision)
    }

    /// Mean recall over classes.
    pub fn macro_recall(&self) -> f64 {
        self.mean(Self::recall)
    }

    /// Mean F1 over classes (of the per-class F1 scores, as scikit-learn's `average="macro"`).
    pub fn macro_f1(&self) -> f64 {
        self.mean(Self::f1)
    }

    fn mean(&self, f: fn(&Self, usize) -> f64) -> f64 {
        if self.classes == 0 {
            return 0.0;
        }
        (0..self.classes).map(|c| f(self, c)).sum::<f64>() / self.classes as f64
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// An aligned table: one row per true class, one column per predicted class.
impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let corner = "true\\pred";
        let digits = |v: u64| v.to_string().len();
        let max = self.counts.iter().copied().max().unwrap_or(0);
        let w = digits(max).max(digits(self.classes.saturating_sub(1) as u64));
        write!(f, "{corner}")?;
        for p in 0..self.classes {
            write!(f, " {p:>w$}")?;
        }
        for t in 0..self.classes {
            write!(f, "\n{t:>width$}", width = corner.len())?;
            for p in 0..self.classes {
                write!(f, " {:>w$}", self.count(t, p))?;
            }
        }
        Ok(())
    }
}

/// Checks `output` and `targets` have the same non-zero length.
fn paired<T>(output: &[T], targets: &[T]) -> Result<usize, MetricsError> {
    check(
        "targets (one per output value)",
        output.len(),
        targets.len(),
    )?;
    if output.is_empty() {
        return Err(MetricsError::Empty);
    }
    Ok(output.len())
}

/// Mean squared error over all values, `(1/m) * sum_k (y_k - t_k)^2`.
pub fn mse<T: Float>(output: &[T], targets: &[T]) -> Result<f64, MetricsError> {
    let m = paired(output, targets)?;
    let s: f64 = output
        .iter()
        .zip(targets)
        .map(|(&y, &t)| (y.to_f64() - t.to_f64()).powi(2))
        .sum();
    Ok(s / m as f64)
}

/// Mean absolute error over all values, `(1/m) * sum_k |y_k - t_k|`.
pub fn mae<T: Float>(output: &[T], targets: &[T]) -> Result<f64, MetricsError> {
    let m = paired(output, targets)?;
    let s: f64 = output
        .iter()
        .zip(targets)
        .map(|(&y, &t)| (y.to_f64() - t.to_f64()).abs())
        .sum();
    Ok(s / m as f64)
}

/// Coefficient of determination of `rows`-value outputs, averaged uniformly over the rows
/// (scikit-learn's `r2_score`, `multioutput="uniform_average"`): for each row `j`,
/// `R²_j = 1 - SS_res / SS_tot` with `SS_res = sum_i (t_ij - y_ij)^2` and
/// `SS_tot = sum_i (t_ij - mean_i t_ij)^2`; when `SS_tot = 0`, `R²_j` is 1 if `SS_res = 0`
/// and 0 otherwise.
pub fn r2<T: Float>(output: &[T], targets: &[T], rows: usize) -> Result<f64, MetricsError> {
    paired(output, targets)?;
    let n = samples(output, rows)?;
    let mut total = 0.0;
    for j in 0..rows {
        let row = |s: &[T], i: usize| s[i * rows + j].to_f64();
        let mean = (0..n).map(|i| row(targets, i)).sum::<f64>() / n as f64;
        let ss_res: f64 = (0..n)
            .map(|i| (row(targets, i) - row(output, i)).powi(2))
            .sum();
        let ss_tot: f64 = (0..n).map(|i| (row(targets, i) - mean).powi(2)).sum();
        total += r2_of_sums(ss_res, ss_tot);
    }
    Ok(total / rows as f64)
}

/// `R² = 1 - SS_res / SS_tot` of one output; when `SS_tot = 0` (constant targets), 1 if
/// `SS_res = 0` and 0 otherwise (scikit-learn's convention).
pub(crate) fn r2_of_sums(ss_res: f64, ss_tot: f64) -> f64 {
    match (ss_tot > 0.0, ss_res > 0.0) {
        (true, _) => 1.0 - ss_res / ss_tot,
        (false, false) => 1.0,
        (false, true) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn metrics_argmax_and_accuracy() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.1]), 1);
        // 3 samples of 2 classes: predictions 1, 0, 1; labels 1, 1, 1.
        let out = [0.2, 0.8, 0.9, 0.1, 0.4, 0.6];
        assert_eq!(predictions(&out, 2).unwrap(), [1, 0, 1]);
        close(accuracy(&out, 2, &[1, 1, 1]).unwrap(), 2.0 / 3.0);
        let e = accuracy(&out, 2, &[1]).unwrap_err();
        assert_eq!(e.to_string(), "labels (one per sample): expected 3, got 1");
        assert!(matches!(
            accuracy(&out, 4, &[1]),
            Err(MetricsError::Length { .. })
        ));
        assert_eq!(accuracy::<f32>(&[], 2, &[]), Err(MetricsError::Empty));
    }

    #[test]
    fn metrics_one_output_thresholds_at_one_half() {
        // One sigmoid output per sample: class 1 exactly above 0.5 (0.5 itself and NaN are 0).
        let out = [0.9f32, 0.5, 0.51, 0.1, f32::NAN];
        assert_eq!(predictions(&out, 1).unwrap(), [1, 0, 1, 0, 0]);
        // Labels 1 1 1 0 1: hits at samples 0, 2, 3.
        close(accuracy(&out, 1, &[1, 1, 1, 0, 1]).unwrap(), 3.0 / 5.0);
        let m = ConfusionMatrix::from_outputs(&out, 1, &[1, 1, 1, 0, 1]).unwrap();
        assert_eq!(m.classes(), 2);
        assert_eq!((m.count(1, 1), m.count(1, 0), m.count(0, 0)), (2, 2, 1));
    }

    #[test]
    fn metrics_confusion_precision_recall_f1() {
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        let m =
            ConfusionMatrix::from_predictions(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3).unwrap();
        assert_eq!(
            (
                m.count(0, 0),
                m.count(0, 1),
                m.count(1, 2),
                m.total(),
                m.correct()
            ),
            (2, 1, 1, 6, 4)
        );
        close(m.accuracy(), 4.0 / 6.0);
        // class 0: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 0.8
        close(m.precision(0), 1.0);
        close(m.recall(0), 2.0 / 3.0);
        close(m.f1(0), 0.8);
        // class 1: TP 1, FP 1, FN 1 -> P R F1 all 1/2; class 2: TP 1, FP 1, FN 0 -> P 1/2, R 1, F1 2/3
        close(m.f1(1), 0.5);
        close(m.precision(2), 0.5);
        close(m.recall(2), 1.0);
        close(m.f1(2), 2.0 / 3.0);
        close(m.macro_precision(), (1.0 + 0.5 + 0.5) / 3.0);
        close(m.macro_recall(), (2.0 / 3.0 + 0.5 + 1.0) / 3.0);
        close(m.macro_f1(), (0.8 + 0.5 + 2.0 / 3.0) / 3.0);
        assert_eq!(
            m.to_string(),
            "true\\pred 0 1 2\n        0 2 1 0\n        1 0 1 1\n        2 0 0 1"
        );
        let empty = ConfusionMatrix::new(2);
        assert_eq!(
            (empty.precision(0), empty.f1(1), empty.accuracy()),
            (0.0, 0.0, 0.0)
        );
        let e = ConfusionMatrix::from_predictions(&[0, 3], &[0, 0], 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sample 1: class 3 is out of range for 3 classes"
        );
        let m = ConfusionMatrix::from_outputs(&[0.2f32, 0.8, 0.9, 0.1], 2, &[1, 1]).unwrap();
        assert_eq!((m.count(1, 1), m.count(1, 0)), (1, 1));
    }

    #[test]
    fn metrics_display_aligns_wide_counts() {
        let mut m = ConfusionMatrix::new(2);
        for _ in 0..120 {
            m.add(1, 0).unwrap();
        }
        m.add(0, 0).unwrap();
        assert_eq!(
            m.to_string(),
            "true\\pred   0   1\n        0   1   0\n        1 120   0"
        );
    }

    #[test]
    fn metrics_regression() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let t = [1.0, 3.0, 2.0, 6.0];
        close(mse(&y, &t).unwrap(), (0.0 + 1.0 + 1.0 + 4.0) / 4.0);
        close(mae(&y, &t).unwrap(), (0.0 + 1.0 + 1.0 + 2.0) / 4.0);
        // one row: mean t = 3, SS_tot = 4 + 0 + 1 + 9 = 14, SS_res = 6 -> 1 - 6/14
        close(r2(&y, &t, 1).unwrap(), 1.0 - 6.0 / 14.0);
        // two rows: row 0 (y 1,3 / t 1,2): SS_res 1, SS_tot 0.5 -> -1; row 1 (y 2,4 / t 3,6):
        // SS_res 1 + 4 = 5, SS_tot 4.5 -> 1 - 5/4.5
        close(r2(&y, &t, 2).unwrap(), (-1.0 + (1.0 - 5.0 / 4.5)) / 2.0);
        close(r2(&[2.0, 2.0], &[2.0, 2.0], 1).unwrap(), 1.0);
        close(r2(&[1.0, 2.0], &[2.0, 2.0], 1).unwrap(), 0.0);
        assert!(matches!(mse(&y, &t[..3]), Err(MetricsError::Length { .. })));
        assert_eq!(mae::<f64>(&[], &[]), Err(MetricsError::Empty));
    }
}
