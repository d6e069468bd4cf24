//! Feature scaling fitted on a training set and applied to any set, and one-hot encoding.

use super::{DataError, Dataset};
use crate::network::Batch;
use crate::scalar::Float;

/// Per-feature standardization: `x' = (x - mean) / scale`, where `mean` and the population
/// standard deviation `std = sqrt(sum (x - mean)^2 / n)` come from the training set, and
/// `scale = std`, or 1 for a (near-)constant feature whose `std <= floor` (as scikit-learn's
/// `StandardScaler` does), so such a feature becomes `x - mean` instead of blowing up.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T, const IN: usize> {
    mean: Vec<T>,
    scale: Vec<T>,
}

/// The default `floor` of [`Standardizer::fit`]: a standard deviation at or below it counts
/// as zero.
pub const STD_FLOOR: f64 = 1e-8;

impl<T: Float, const IN: usize> Standardizer<T, IN> {
    /// Fits the per-feature mean and scale on `train` (in `f64`), with [`STD_FLOOR`].
    pub fn fit(train: &Dataset<T, IN>) -> Result<Self, DataError> {
        Self::fit_with_floor(train, STD_FLOOR)
    }

    /// Fits with a chosen floor for the standard deviation.
    pub fn fit_with_floor(train: &Dataset<T, IN>, floor: f64) -> Result<Self, DataError> {
        let n = train.len();
        if n == 0 {
            return Err(DataError::Invalid(
                "cannot fit a standardizer on an empty data set".into(),
            ));
        }
        let x = train.inputs().as_slice();
        let mut mean = vec![0.0f64; IN];
        for col in x.chunks_exact(IN) {
            mean.iter_mut()
                .zip(col)
                .for_each(|(m, v)| *m += Float::to_f64(*v));
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; IN];
        for col in x.chunks_exact(IN) {
            for ((s, v), m) in var.iter_mut().zip(col).zip(&mean) {
                *s += (Float::to_f64(*v) - m).powi(2);
            }
        }
        let scale = var
            .iter()
            .map(|s| (s / n as f64).sqrt())
            .map(|sd| T::of(if sd <= floor { 1.0 } else { sd }))
            .collect();
        Ok(Self {
            mean: mean.into_iter().map(T::of).collect(),
            scale,
        })
    }

    /// The per-feature means.
    pub fn mean(&self) -> &[T] {
        &self.mean
    }

    /// The per-feature divisors (the standard deviation, or 1 for constant features).
    pub fn scale(&self) -> &[T] {
        &self.scale
    }

    /// Standardizes a batch in place.
    pub fn transform_batch(&self, x: &mut Batch<T, IN>) {
        for col in x.as_mut_slice().chunks_exact_mut(IN) {
            for ((v, m), s) in col.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - *m) / *s;
            }
        }
    }

    /// Standardizes a data set's inputs in place (its labels are unchanged).
    pub fn transform(&self, data: &mut Dataset<T, IN>) {
        self.transform_batch(data.inputs_mut());
    }
}

/// Per-feature min-max scaling to `[0, 1]`: `x' = (x - min) / (max - min)` with `min` and
/// `max` from the training set; a constant feature (`max = min`) becomes `x - min`. Values
/// outside the training range map outside `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler<T, const IN: usize> {
    min: Vec<T>,
    range: Vec<T>,
}

impl<T: Float, const IN: usize> MinMaxScaler<T, IN> {
    /// Fits the per-feature minimum and range on `train`.
    pub fn fit(train: &Dataset<T, IN>) -> Result<Self, DataError> {
        if train.is_empty() {
            return Err(DataError::Invalid(
                "cannot fit a min-max scaler on an empty data set".into(),
            ));
        }
        let mut min = vec![T::infinity(); IN];
        let mut max = vec![T::neg_infinity(); IN];
        for col in train.inputs().as_slice().chunks_exact(IN) {
            for ((lo, hi), &v) in min.iter_mut().zip(max.iter_mut()).zip(col) {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        }
        let range = min
            .iter()
            .zip(&max)
            .map(|(&lo, &hi)| if hi > lo { hi - lo } else { T::one() })
            .collect();
        Ok(Self { min, range })
    }

    /// The per-feature minima.
    pub fn min(&self) -> &[T] {
        &self.min
    }

    /// The per-feature divisors (`max - min`, or 1 for constant features).
    pub fn range(&self) -> &[T] {
        &self.range
    }

    /// Scales a batch in place.
    pub fn transform_batch(&self, x: &mut Batch<T, IN>) {
        for col in x.as_mut_slice().chunks_exact_mut(IN) {
            for ((v, lo), r) in col.iter_mut().zip(&self.min).zip(&self.range) {
                *v = (*v - *lo) / *r;
            }
        }
    }

    /// Scales a data set's inputs in place (its labels are unchanged).
    pub fn transform(&self, data: &mut Dataset<T, IN>) {
        self.transform_batch(data.inputs_mut());
    }
}

/// One-hot encodes class labels: an `n x labels.len()` column-major matrix whose column `i`
/// is 1 in row `labels[i]` and 0 elsewhere. An error names the first label `>= n`.
pub fn one_hot<T: Float>(labels: &[usize], n: usize) -> Result<Vec<T>, DataError> {
    let mut out = vec![T::zero(); n * labels.len()];
    for (sample, &label) in labels.iter().enumerate() {
        if label >= n {
            return Err(DataError::LabelOutOfRange {
                sample,
                label,
                classes: n,
            });
        }
        out[sample * n + label] = T::one();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Labels;

    fn set(x: &[f64]) -> Dataset<f64, 2> {
        let n = x.len() / 2;
        Dataset::from_slices(
            x,
            Labels::Classes {
                labels: vec![0; n],
                classes: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn data_standardizer_fits_and_applies() {
        // feature 0: 1, 3 -> mean 2, std 1; feature 1 constant 5.
        let train = set(&[1.0, 5.0, 3.0, 5.0]);
        let s = Standardizer::fit(&train).unwrap();
        assert_eq!((s.mean(), s.scale()), (&[2.0, 5.0][..], &[1.0, 1.0][..]));
        let mut t = train.clone();
        s.transform(&mut t);
        assert_eq!(t.inputs().as_slice(), &[-1.0, 0.0, 1.0, 0.0]);
        let mut test = set(&[6.0, 7.0]);
        s.transform(&mut test);
        assert_eq!(test.inputs().as_slice(), &[4.0, 2.0]);
        assert!(Standardizer::fit(&set(&[])).is_err());
    }

    #[test]
    fn data_min_max_scaler() {
        let train = set(&[1.0, 5.0, 3.0, 5.0, 2.0, 5.0]);
        let m = MinMaxScaler::fit(&train).unwrap();
        let mut t = train.clone();
        m.transform(&mut t);
        assert_eq!(t.inputs().as_slice(), &[0.0, 0.0, 1.0, 0.0, 0.5, 0.0]);
        let mut test = set(&[5.0, 4.0]);
        m.transform(&mut test);
        assert_eq!(test.inputs().as_slice(), &[2.0, -1.0]);
    }

    #[test]
    fn data_one_hot() {
        assert_eq!(
            one_hot::<f32>(&[2, 0], 3).unwrap(),
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
        );
        let e = one_hot::<f32>(&[1, 3], 3).unwrap_err().to_string();
        assert_eq!(e, "sample 1: label 3 is out of range for 3 classes");
    }
}
