//! An in-memory data set: `IN` features per sample, one column per sample, and its labels.

use super::DataError;
use crate::loss::Targets;
use crate::network::Batch;
use crate::scalar::Float;
use nalgebra::{Const, Dyn, SVector};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The labels of a data set: one class index per sample, or one target vector per sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels<T> {
    /// Class indices, each below `classes`.
    Classes {
        /// One class index per sample.
        labels: Vec<usize>,
        /// Number of classes.
        classes: usize,
    },
    /// Target vectors of `rows` values each, column-major: sample `i`'s target is
    /// `values[i * rows..(i + 1) * rows]`.
    Values {
        /// The targets, `rows x n` column-major.
        values: Vec<T>,
        /// Values per target.
        rows: usize,
    },
}

impl<T> Labels<T> {
    fn kind(&self) -> &'static str {
        match self {
            Labels::Classes { .. } => "class labels",
            Labels::Values { .. } => "target vectors",
        }
    }
}

/// `n` samples of `IN` features (a [`Batch`], one column per sample) with their [`Labels`].
///
/// Every constructor checks that inputs and targets are finite and that class labels are in
/// range, so a `Dataset` always holds valid data.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T: Float, const IN: usize> {
    inputs: Batch<T, IN>,
    labels: Labels<T>,
}

impl<T: Float, const IN: usize> Dataset<T, IN> {
    /// A data set from a batch of inputs and their labels, after validating both.
    pub fn new(inputs: Batch<T, IN>, labels: Labels<T>) -> Result<Self, DataError> {
        let n = inputs.ncols();
        if let Some((sample, feature, value)) = first_non_finite(inputs.as_slice(), IN) {
            return Err(DataError::NonFinite {
                sample,
                feature,
                value,
            });
        }
        match &labels {
            Labels::Classes { labels, classes } => {
                check_len("class labels", n, labels.len())?;
                if let Some((sample, &label)) =
                    labels.iter().enumerate().find(|(_, &l)| l >= *classes)
                {
                    return Err(DataError::LabelOutOfRange {
                        sample,
                        label,
                        classes: *classes,
                    });
                }
            }
            Labels::Values { values, rows } => {
                if *rows == 0 {
                    return Err(DataError::Invalid(
                        "target vectors need at least one row".into(),
                    ));
                }
                check_len("target values (rows x samples)", rows * n, values.len())?;
                if let Some((sample, row, value)) = first_non_finite(values, *rows) {
                    return Err(DataError::NonFiniteTarget { sample, row, value });
                }
            }
        }
        Ok(Self { inputs, labels })
    }

    /// A data set from a flat slice of inputs, one sample after another: sample `i`'s features
    /// are `inputs[i * IN..(i + 1) * IN]`. This is a row-major `n x IN` table (one row per
    /// sample), which is the same memory as our column-major `IN x n` batch.
    pub fn from_slices(inputs: &[T], labels: Labels<T>) -> Result<Self, DataError> {
        if IN == 0 {
            return Err(DataError::Invalid(
                "samples need at least one feature".into(),
            ));
        }
        if !inputs.len().is_multiple_of(IN) {
            return Err(DataError::Length {
                what: "input values (a multiple of the feature count)",
                expected: IN * inputs.len().div_ceil(IN),
                actual: inputs.len(),
            });
        }
        let n = inputs.len() / IN;
        Self::new(
            Batch::from_column_slice_generic(Const::<IN>, Dyn(n), inputs),
            labels,
        )
    }

    /// A classification data set: `labels[i]` is the class of column `i`, below `classes`.
    pub fn from_classes(
        inputs: Batch<T, IN>,
        labels: Vec<usize>,
        classes: usize,
    ) -> Result<Self, DataError> {
        Self::new(inputs, Labels::Classes { labels, classes })
    }

    /// A regression data set: `values` holds `rows` target values per sample, column-major.
    pub fn from_values(
        inputs: Batch<T, IN>,
        values: Vec<T>,
        rows: usize,
    ) -> Result<Self, DataError> {
        Self::new(inputs, Labels::Values { values, rows })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.ncols()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs, one column per sample.
    pub fn inputs(&self) -> &Batch<T, IN> {
        &self.inputs
    }

    /// Sample `i`'s features (`None` if out of range).
    pub fn input(&self, i: usize) -> Option<&[T]> {
        self.inputs.as_slice().get(i * IN..(i + 1) * IN)
    }

    /// Sample `i`'s features as the vector [`Network::predict`](crate::Network::predict)
    /// takes; an error naming the index and the length if `i` is out of range.
    ///
    /// ```
    /// use nn_runtime::data::{Dataset, Labels};
    /// use nn_runtime::nalgebra::SVector;
    ///
    /// let labels = Labels::Classes { labels: vec![0, 1], classes: 2 };
    /// let data = Dataset::<f32, 2>::from_slices(&[1.0, 2.0, 3.0, 4.0], labels).unwrap();
    /// assert_eq!(data.sample(1).unwrap(), SVector::from([3.0, 4.0]));
    /// assert_eq!(
    ///     data.sample(2).unwrap_err().to_string(),
    ///     "sample index 2 is out of range for a data set of 2 samples"
    /// );
    /// ```
    pub fn sample(&self, i: usize) -> Result<SVector<T, IN>, DataError> {
        self.input(i)
            .map(SVector::from_column_slice)
            .ok_or(DataError::Index {
                index: i,
                len: self.len(),
            })
    }

    /// The same samples with class labels one-hot encoded
    /// ([`one_hot`](super::one_hot)): each label `c` of `k` classes becomes a target vector
    /// of `k` values, 1 in row `c`, for losses that need target vectors (`Mse`, `Huber`, ...);
    /// an error for a data set of target vectors.
    ///
    /// ```
    /// use nn_runtime::data::{Dataset, Labels};
    ///
    /// let labels = Labels::Classes { labels: vec![2, 0], classes: 3 };
    /// let data = Dataset::<f32, 1>::from_slices(&[0.5, 1.5], labels).unwrap();
    /// let encoded = data.one_hot().unwrap();
    /// assert_eq!(
    ///     encoded.labels(),
    ///     &Labels::Values { values: vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0], rows: 3 }
    /// );
    /// assert_eq!(encoded.inputs(), data.inputs());
    /// ```
    pub fn one_hot(&self) -> Result<Self, DataError> {
        match &self.labels {
            Labels::Classes { labels, classes } => Self::new(
                self.inputs.clone(),
                Labels::Values {
                    values: super::one_hot(labels, *classes)?,
                    rows: *classes,
                },
            ),
            other => Err(DataError::LabelKind {
                needed: "class labels",
                found: other.kind(),
            }),
        }
    }

    /// The labels.
    pub fn labels(&self) -> &Labels<T> {
        &self.labels
    }

    /// The labels in the form losses take.
    pub fn targets(&self) -> Targets<'_, T> {
        match &self.labels {
            Labels::Classes { labels, .. } => Targets::Classes(labels),
            Labels::Values { values, .. } => Targets::Values(values),
        }
    }

    /// The class labels; an error for a data set of target vectors.
    pub fn labels_as_classes(&self) -> Result<&[usize], DataError> {
        match &self.labels {
            Labels::Classes { labels, .. } => Ok(labels),
            other => Err(DataError::LabelKind {
                needed: "class labels",
                found: other.kind(),
            }),
        }
    }

    /// Number of classes, for a classification data set.
    pub fn classes(&self) -> Option<usize> {
        match self.labels {
            Labels::Classes { classes, .. } => Some(classes),
            Labels::Values { .. } => None,
        }
    }

    /// The inputs and labels, consumed.
    pub fn into_parts(self) -> (Batch<T, IN>, Labels<T>) {
        (self.inputs, self.labels)
    }

    /// The inputs, mutably, for transforms that keep every value finite.
    pub(crate) fn inputs_mut(&mut self) -> &mut Batch<T, IN> {
        &mut self.inputs
    }

    /// A new data set of the samples at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self, DataError> {
        let len = self.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::Index { index, len });
        }
        let mut inputs = Batch::<T, IN>::zeros(indices.len());
        self.gather_inputs(indices, inputs.as_mut_slice());
        let labels = match &self.labels {
            Labels::Classes { classes, .. } => {
                let mut labels = Vec::with_capacity(indices.len());
                self.gather_classes(indices, &mut labels)?;
                Labels::Classes {
                    labels,
                    classes: *classes,
                }
            }
            Labels::Values { rows, .. } => {
                let mut values = vec![T::zero(); rows * indices.len()];
                self.gather_values(indices, &mut values)?;
                Labels::Values {
                    values,
                    rows: *rows,
                }
            }
        };
        Ok(Self { inputs, labels })
    }

    /// Splits into `(train, validation)` with `round(len * validation_fraction)` samples in
    /// validation. Unshuffled (`seed = None`), validation is the last samples, in order;
    /// with a seed, both parts are drawn from a seeded permutation (reproducible).
    pub fn split(
        &self,
        validation_fraction: f64,
        seed: Option<u64>,
    ) -> Result<(Self, Self), DataError> {
        if !(0.0..=1.0).contains(&validation_fraction) {
            return Err(DataError::Invalid(format!(
                "validation fraction {validation_fraction} is not in [0, 1]"
            )));
        }
        let n = self.len();
        let n_val = ((n as f64) * validation_fraction).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(seed) = seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        let (train, val) = order.split_at(n - n_val.min(n));
        Ok((self.subset(train)?, self.subset(val)?))
    }

    /// Writes the inputs of samples `idx` into `out[..IN * idx.len()]`, column-major (one
    /// column per sample): a reusable mini-batch buffer, filled without allocating.
    ///
    /// # Panics
    /// If an index is out of range or `out` is shorter than `IN * idx.len()`.
    pub fn gather_inputs(&self, idx: &[usize], out: &mut [T]) {
        let src = self.inputs.as_slice();
        for (dst, &i) in out[..IN * idx.len()].chunks_exact_mut(IN.max(1)).zip(idx) {
            dst.copy_from_slice(&src[i * IN..(i + 1) * IN]);
        }
    }

    /// Replaces the contents of `out` with the class labels of samples `idx` (no allocation
    /// once `out` has the capacity); an error for a data set of target vectors.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn gather_classes(&self, idx: &[usize], out: &mut Vec<usize>) -> Result<(), DataError> {
        match &self.labels {
            Labels::Classes { labels, .. } => {
                out.clear();
                out.extend(idx.iter().map(|&i| labels[i]));
                Ok(())
            }
            other => Err(DataError::LabelKind {
                needed: "class labels",
                found: other.kind(),
            }),
        }
    }

    /// Writes the target vectors of samples `idx` into `out[..rows * idx.len()]`,
    /// column-major; an error for a data set of class labels.
    ///
    /// # Panics
    /// If an index is out of range or `out` is shorter than `rows * idx.len()`.
    pub fn gather_values(&self, idx: &[usize], out: &mut [T]) -> Result<(), DataError> {
        match &self.labels {
            Labels::Values { values, rows } => {
                let r = *rows;
                for (dst, &i) in out[..r * idx.len()].chunks_exact_mut(r).zip(idx) {
                    dst.copy_from_slice(&values[i * r..(i + 1) * r]);
                }
                Ok(())
            }
            other => Err(DataError::LabelKind {
                needed: "target vectors",
                found: other.kind(),
            }),
        }
    }
}

/// Checks that a count matches.
fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), DataError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DataError::Length {
            what,
            expected,
            actual,
        })
    }
}

/// The first non-finite value of column-major data with `rows` rows: `(column, row, value)`.
fn first_non_finite<T: Float>(values: &[T], rows: usize) -> Option<(usize, usize, f64)> {
    let at = values.iter().position(|v| !v.is_finite())?;
    Some((at / rows.max(1), at % rows.max(1), values[at].to_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dataset<f64, 2> {
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        Dataset::from_slices(
            &x,
            Labels::Classes {
                labels: vec![0, 1, 2, 1],
                classes: 3,
            },
        )
        .unwrap()
    }

    #[test]
    fn data_from_slices_is_sample_major() {
        let d = small();
        assert_eq!(d.len(), 4);
        assert_eq!(d.input(1), Some(&[2.0, 3.0][..]));
        assert_eq!(d.inputs()[(1, 2)], 5.0);
        assert_eq!(d.classes(), Some(3));
    }

    #[test]
    fn data_rejects_non_finite_and_bad_labels() {
        let e = Dataset::<f32, 2>::from_slices(
            &[0.0, 1.0, f32::NAN, 0.0],
            Labels::Classes {
                labels: vec![0, 0],
                classes: 1,
            },
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "sample 1, feature 0: value NaN is not finite"
        );
        let e = Dataset::<f32, 1>::from_slices(
            &[0.0, 1.0, 2.0],
            Labels::Classes {
                labels: vec![0, 3, 1],
                classes: 3,
            },
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "sample 1: label 3 is out of range for 3 classes"
        );
        let e = Dataset::<f32, 1>::from_slices(
            &[0.0, 1.0],
            Labels::Values {
                values: vec![0.0, 1.0, f32::INFINITY, 0.0],
                rows: 2,
            },
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "sample 1, target 0: value inf is not finite"
        );
        let e = Dataset::<f32, 2>::from_slices(
            &[0.0, 1.0, 2.0],
            Labels::Classes {
                labels: vec![0],
                classes: 1,
            },
        );
        assert!(matches!(e, Err(DataError::Length { .. })));
        let e = Dataset::<f32, 1>::from_slices(
            &[0.0, 1.0],
            Labels::Classes {
                labels: vec![0],
                classes: 1,
            },
        );
        assert!(matches!(
            e,
            Err(DataError::Length {
                expected: 2,
                actual: 1,
                ..
            })
        ));
    }

    #[test]
    fn data_subset_and_gather() {
        let d = small();
        let s = d.subset(&[3, 0]).unwrap();
        assert_eq!(s.inputs().as_slice(), &[6.0, 7.0, 0.0, 1.0]);
        assert_eq!(
            s.labels(),
            &Labels::Classes {
                labels: vec![1, 0],
                classes: 3
            }
        );
        assert!(matches!(
            d.subset(&[4]),
            Err(DataError::Index { index: 4, len: 4 })
        ));

        let mut buf = vec![-1.0; 6];
        d.gather_inputs(&[2, 1], &mut buf);
        assert_eq!(buf, [4.0, 5.0, 2.0, 3.0, -1.0, -1.0]);
        assert_eq!(d.labels_as_classes().unwrap(), &[0, 1, 2, 1]);
        let mut cls = Vec::with_capacity(4);
        d.gather_classes(&[2, 1], &mut cls).unwrap();
        assert_eq!(cls, [2, 1]);
        assert!(d.gather_values(&[0], &mut buf).is_err());

        let r = Dataset::<f64, 1>::from_values(
            Batch::from_column_slice(&[1.0, 2.0]),
            vec![1.0, 2.0, 3.0, 4.0],
            2,
        )
        .unwrap();
        let mut t = [0.0; 2];
        r.gather_values(&[1], &mut t).unwrap();
        assert_eq!(t, [3.0, 4.0]);
        assert!(r.gather_classes(&[0], &mut cls).is_err());
        let e = r.labels_as_classes().unwrap_err().to_string();
        assert_eq!(
            e,
            "the data set has target vectors, but class labels are needed"
        );
    }

    #[test]
    fn data_split_by_fraction() {
        let d = small();
        let (tr, va) = d.split(0.25, None).unwrap();
        assert_eq!((tr.len(), va.len()), (3, 1));
        assert_eq!(va.input(0), Some(&[6.0, 7.0][..]));
        let (a, b) = d.split(0.5, Some(7)).unwrap();
        let (a2, b2) = d.split(0.5, Some(7)).unwrap();
        assert_eq!((a.clone(), b.clone()), (a2, b2));
        let mut all: Vec<f64> = a
            .inputs()
            .iter()
            .chain(b.inputs().iter())
            .copied()
            .collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert!(d.split(1.5, None).is_err());
        assert_eq!(d.split(1.0, None).unwrap().0.len(), 0);
    }
}
