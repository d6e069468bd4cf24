//! Feature scaling fitted on a training set and applied to any set, and one-hot encoding.
//!
//! Both scalers fit and transform in `f64`, so extreme finite `f32` inputs (such as ±3e38,
//! whose differences and squares overflow `f32`) give the correctly rounded results. A result
//! that does not fit in the scalar type is refused with an error naming the sample and
//! feature, leaving the batch unchanged: no scaler turns finite inputs into inf or NaN.

mod pipeline;
mod scaler;

pub use pipeline::Preprocessing;
pub use scaler::{Scaler, ScalerKind};

use super::{DataError, Dataset};
use crate::network::Batch;
use crate::scalar::Float;
use std::marker::PhantomData;

/// Per-feature standardization: `x' = (x - mean) / scale`, where `mean` and the population
/// standard deviation `std = sqrt(sum (x - mean)^2 / n)` come from the training set, and
/// `scale = std`, or 1 for a (near-)constant feature whose `std <= floor` (as scikit-learn's
/// `StandardScaler` does), so such a feature becomes `x - mean` instead of blowing up.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T, const IN: usize> {
    mean: Vec<f64>,
    scale: Vec<f64>,
    scalar: PhantomData<T>,
}

/// The default `floor` of [`Standardizer::fit`]: a standard deviation at or below it counts
/// as zero.
pub const STD_FLOOR: f64 = 1e-8;

impl<T: Float, const IN: usize> Standardizer<T, IN> {
    /// Fits the per-feature mean and scale on `train` (in `f64`), with [`STD_FLOOR`].
    pub fn fit(train: &Dataset<T, IN>) -> Result<Self, DataError> {
        Self::fit_with_floor(train, STD_FLOOR)
    }

    /// Fits with a chosen floor (`>= 0`) for the standard deviation.
    ///
    /// Each feature is first scaled by the power of two `2^-e` that brings its largest
    /// magnitude into `[0.5, 1)`: exact, and neither the sum nor the squares can then overflow,
    /// even for `f64` inputs near `f64::MAX`.
    pub fn fit_with_floor(train: &Dataset<T, IN>, floor: f64) -> Result<Self, DataError> {
        // A negative or NaN floor would let a zero deviation through as the divisor.
        if floor.is_nan() || floor < 0.0 {
            return Err(DataError::Invalid(format!(
                "the standard deviation floor {floor} is not a number >= 0"
            )));
        }
        if train.is_empty() {
            return Err(DataError::Invalid(
                "cannot fit a standardizer on an empty data set".into(),
            ));
        }
        let (mean, scale) = standardize_columns(train.inputs().as_slice(), IN, floor);
        Ok(Self {
            mean,
            scale,
            scalar: PhantomData,
        })
    }

    /// The per-feature means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The per-feature divisors (the standard deviation, or 1 for constant features).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Standardizes a batch in place, or leaves it unchanged and names the first value that
    /// is not finite or whose result does not fit in `T`.
    pub fn transform_batch(&self, x: &mut Batch<T, IN>) -> Result<(), DataError> {
        affine(
            x.as_mut_slice(),
            &self.mean,
            &self.scale,
            Direction::Forward,
            Role::Feature,
        )
    }

    /// Standardizes a data set's inputs in place (its labels are unchanged); errors as
    /// [`transform_batch`](Self::transform_batch).
    pub fn transform(&self, data: &mut Dataset<T, IN>) -> Result<(), DataError> {
        self.transform_batch(data.inputs_mut())
    }
}

/// Per-feature min-max scaling to `[0, 1]`: `x' = (x - min) / (max - min)` with `min` and
/// `max` from the training set; a constant feature (`max = min`) becomes `x - min`. Values
/// outside the training range map outside `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler<T, const IN: usize> {
    min: Vec<f64>,
    range: Vec<f64>,
    scalar: PhantomData<T>,
}

impl<T: Float, const IN: usize> MinMaxScaler<T, IN> {
    /// Fits the per-feature minimum and range on `train`, in `f64`: `max - min` of `f32`
    /// values may exceed `f32::MAX`. Only `f64` values whose range exceeds `f64::MAX` are
    /// refused, naming the feature.
    pub fn fit(train: &Dataset<T, IN>) -> Result<Self, DataError> {
        if train.is_empty() {
            return Err(DataError::Invalid(
                "cannot fit a min-max scaler on an empty data set".into(),
            ));
        }
        let (min, range) = min_max_columns(train.inputs().as_slice(), IN, "feature")?;
        Ok(Self {
            min,
            range,
            scalar: PhantomData,
        })
    }

    /// The per-feature minima.
    pub fn min(&self) -> &[f64] {
        &self.min
    }

    /// The per-feature divisors (`max - min`, or 1 for constant features).
    pub fn range(&self) -> &[f64] {
        &self.range
    }

    /// Scales a batch in place, or leaves it unchanged and names the first value that is not
    /// finite or whose result does not fit in `T`.
    pub fn transform_batch(&self, x: &mut Batch<T, IN>) -> Result<(), DataError> {
        affine(
            x.as_mut_slice(),
            &self.min,
            &self.range,
            Direction::Forward,
            Role::Feature,
        )
    }

    /// Scales a data set's inputs in place (its labels are unchanged); errors as
    /// [`transform_batch`](Self::transform_batch).
    pub fn transform(&self, data: &mut Dataset<T, IN>) -> Result<(), DataError> {
        self.transform_batch(data.inputs_mut())
    }
}

/// The per-row mean and divisor of `values` (column-major, `width` rows, at least one
/// column), in `f64`: the population standard deviation, or 1 where it is `<= floor`.
///
/// Each row is first scaled by the power of two `2^-e` that brings its largest magnitude
/// into `[0.5, 1)`: exact, and neither the sum nor the squares can then overflow, even for
/// `f64` values near `f64::MAX`.
pub(super) fn standardize_columns<T: Float>(
    values: &[T],
    width: usize,
    floor: f64,
) -> (Vec<f64>, Vec<f64>) {
    let n = values.len() / width.max(1);
    let columns = || values.chunks_exact(width.max(1));
    let mut largest = vec![0.0f64; width];
    for col in columns() {
        for (m, v) in largest.iter_mut().zip(col) {
            *m = m.max(Float::to_f64(*v).abs());
        }
    }
    // `largest = f * 2^e` with `f` in [0.5, 1); 0 for an all-zero row.
    let exponent: Vec<i32> = largest.iter().map(|&m| libm::frexp(m).1).collect();
    let scaled = |v: &T, e: &i32| libm::scalbn(Float::to_f64(*v), -e);
    let mut mean = vec![0.0f64; width];
    for col in columns() {
        for ((m, v), e) in mean.iter_mut().zip(col).zip(&exponent) {
            *m += scaled(v, e);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; width];
    for col in columns() {
        for (((s, v), e), m) in var.iter_mut().zip(col).zip(&exponent).zip(&mean) {
            *s += (scaled(v, e) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .zip(&exponent)
        // `std <= (max - min) / 2 <= f64::MAX`; the `min` only catches a rounding up.
        .map(|(s, &e)| libm::scalbn((s / n as f64).sqrt(), e).min(f64::MAX))
        .map(|sd| if sd <= floor { 1.0 } else { sd })
        .collect();
    let mean = mean
        .iter()
        .zip(&exponent)
        .map(|(&m, &e)| libm::scalbn(m, e))
        .collect();
    (mean, scale)
}

/// The per-row minimum and range (`max - min`, or 1 for a constant row) of `values`
/// (column-major, `width` rows), in `f64`; a range beyond `f64::MAX` is refused, naming the
/// row as a `what` (`feature`, `target`).
pub(super) fn min_max_columns<T: Float>(
    values: &[T],
    width: usize,
    what: &str,
) -> Result<(Vec<f64>, Vec<f64>), DataError> {
    let mut min = vec![f64::INFINITY; width];
    let mut max = vec![f64::NEG_INFINITY; width];
    for col in values.chunks_exact(width.max(1)) {
        for ((lo, hi), v) in min.iter_mut().zip(max.iter_mut()).zip(col) {
            *lo = lo.min(Float::to_f64(*v));
            *hi = hi.max(Float::to_f64(*v));
        }
    }
    let mut range = Vec::with_capacity(width);
    for (row, (&lo, &hi)) in min.iter().zip(&max).enumerate() {
        let r = if hi > lo { hi - lo } else { 1.0 };
        if !r.is_finite() {
            return Err(DataError::Invalid(format!(
                "{what} {row}: max - min = {hi:e} - {lo:e} overflows f64"
            )));
        }
        range.push(r);
    }
    Ok((min, range))
}

/// Which way [`affine`] maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// `x' = (x - offset) / divisor`.
    Forward,
    /// `x = x' * divisor + offset`.
    Inverse,
}

/// What the rows of the values [`affine`] maps are, for its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Input features.
    Feature,
    /// Target values.
    Target,
    /// A network's outputs.
    Output,
}

/// `x' = (x - offset) / divisor` (or its inverse `x = x' * divisor + offset`) per row of
/// column-major `values` with `offset.len()` rows, in `f64`. Every value is checked before
/// any is written: a non-finite value, or a result that overflows `T`, is an error naming
/// the sample and row, and `values` is left unchanged.
pub(super) fn affine<T: Float>(
    values: &mut [T],
    offset: &[f64],
    divisor: &[f64],
    direction: Direction,
    role: Role,
) -> Result<(), DataError> {
    let map = |v: f64, o: f64, d: f64| match direction {
        Direction::Forward => {
            let r = (v - o) / d;
            // `v - o` overflows only for f64 values beyond half its range; halved it cannot.
            if r.is_finite() {
                r
            } else {
                (v / 2.0 - o / 2.0) / d * 2.0
            }
        }
        Direction::Inverse => {
            let r = v * d + o;
            if r.is_finite() {
                r
            } else {
                (v / 2.0 * d + o / 2.0) * 2.0
            }
        }
    };
    let width = offset.len().max(1);
    for (sample, col) in values.chunks_exact(width).enumerate() {
        for (row, ((v, &o), &d)) in col.iter().zip(offset).zip(divisor).enumerate() {
            let value = Float::to_f64(*v);
            if !v.is_finite() {
                return Err(match role {
                    Role::Feature => DataError::NonFinite {
                        sample,
                        feature: row,
                        value,
                    },
                    Role::Target | Role::Output => {
                        DataError::NonFiniteTarget { sample, row, value }
                    }
                });
            }
            let r = map(value, o, d);
            if !T::of(r).is_finite() {
                let what = match role {
                    Role::Feature => "feature",
                    Role::Target => "target",
                    Role::Output => "output",
                };
                return Err(DataError::Invalid(format!(
                    "sample {sample}, {what} {row}: {v:?} maps to {r:.3e}, outside the \
                     range of {}",
                    T::NAME
                )));
            }
        }
    }
    for col in values.chunks_exact_mut(width) {
        for ((v, &o), &d) in col.iter_mut().zip(offset).zip(divisor) {
            *v = T::of(map(Float::to_f64(*v), o, d));
        }
    }
    Ok(())
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
        s.transform(&mut t).unwrap();
        assert_eq!(t.inputs().as_slice(), &[-1.0, 0.0, 1.0, 0.0]);
        let mut test = set(&[6.0, 7.0]);
        s.transform(&mut test).unwrap();
        assert_eq!(test.inputs().as_slice(), &[4.0, 2.0]);
        assert!(Standardizer::fit(&set(&[])).is_err());
    }

    #[test]
    fn data_min_max_scaler() {
        let train = set(&[1.0, 5.0, 3.0, 5.0, 2.0, 5.0]);
        let m = MinMaxScaler::fit(&train).unwrap();
        let mut t = train.clone();
        m.transform(&mut t).unwrap();
        assert_eq!(t.inputs().as_slice(), &[0.0, 0.0, 1.0, 0.0, 0.5, 0.0]);
        let mut test = set(&[5.0, 4.0]);
        m.transform(&mut test).unwrap();
        assert_eq!(test.inputs().as_slice(), &[2.0, -1.0]);
    }

    /// Two features per sample, given sample by sample.
    fn pairs<T: Float>(x: &[T]) -> Dataset<T, 2> {
        let labels = vec![0; x.len() / 2];
        Dataset::from_slices(x, Labels::Classes { labels, classes: 1 }).unwrap()
    }

    /// Feature `f` of every sample, widened to f64.
    fn feature(x: &[f32], f: usize) -> Vec<f64> {
        x.iter().skip(f).step_by(2).map(|&v| f64::from(v)).collect()
    }

    /// Within 2 ulp of f32 at the reference, or 1e-30 near zero.
    fn close(got: f32, want: f64) -> bool {
        (f64::from(got) - want).abs() <= 2.0 * f64::from(f32::EPSILON) * want.abs() + 1e-30
    }

    // Feature 0 spans ±3e38, so `x - mean` overflows f32 (4.5e38 for 3e38 against a mean of
    // -1.5e38); feature 1 is a constant at f32::MAX.
    const EXTREME: [f32; 8] = [
        3e38,
        f32::MAX,
        -3e38,
        f32::MAX,
        -3e38,
        f32::MAX,
        -3e38,
        f32::MAX,
    ];

    #[test]
    fn data_standardizer_extreme_f32_matches_f64_reference() {
        assert!((3e38f32 - -1.5e38f32).is_infinite());
        let train = pairs(&EXTREME);
        let s = Standardizer::fit(&train).unwrap();
        let mut t = train.clone();
        s.transform(&mut t).unwrap();
        let got = t.inputs().as_slice();
        for f in 0..2 {
            // The textbook formulas in f64, where f32 inputs cannot overflow.
            let x = feature(&EXTREME, f);
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let scale = if std <= STD_FLOOR { 1.0 } else { std };
            assert!((s.mean()[f] - mean).abs() <= 1e-15 * mean.abs(), "{f}");
            assert!((s.scale()[f] - scale).abs() <= 1e-15 * scale, "{f}");
            for (i, v) in x.iter().enumerate() {
                let want = (v - mean) / scale;
                assert!(
                    close(got[2 * i + f], want),
                    "{i}, {f}: {} vs {want}",
                    got[2 * i + f]
                );
            }
        }
        // Feature 0 is (1, -1/3, -1/3, -1/3) / sqrt(1/3) = (sqrt 3, -1/sqrt 3, ...).
        assert!(close(got[0], 3f64.sqrt()) && close(got[2], -1.0 / 3f64.sqrt()));
        assert_eq!(feature(got, 1), [0.0; 4]);
    }

    #[test]
    fn data_min_max_extreme_f32_matches_f64_reference() {
        // max - min = 6e38 overflows f32.
        assert!((3e38f32 - -3e38f32).is_infinite());
        let x = [
            3e38f32,
            f32::MAX,
            -3e38,
            f32::MAX,
            0.0,
            f32::MAX,
            1e38,
            f32::MAX,
        ];
        let m = MinMaxScaler::fit(&pairs(&x)).unwrap();
        let (lo, hi) = (f64::from(-3e38f32), f64::from(3e38f32));
        assert_eq!(m.min(), [lo, f64::from(f32::MAX)]);
        assert_eq!(m.range(), [hi - lo, 1.0]);
        let mut t = pairs(&x);
        m.transform(&mut t).unwrap();
        let got = t.inputs().as_slice();
        let x0 = feature(&x, 0);
        for (i, v) in x0.iter().enumerate() {
            let want = (v - lo) / (hi - lo);
            assert!(close(got[2 * i], want), "{i}: {} vs {want}", got[2 * i]);
        }
        assert_eq!(&feature(got, 0)[..2], [1.0, 0.0]);
        assert_eq!(feature(got, 1), [0.0; 4]);
    }

    #[test]
    fn data_scalers_refuse_results_outside_the_scalar_type() {
        // The constant feature at f32::MAX has scale 1: -f32::MAX maps to -2 f32::MAX.
        let s = Standardizer::fit(&pairs(&EXTREME)).unwrap();
        let m = MinMaxScaler::fit(&pairs(&EXTREME)).unwrap();
        let x = [0.0f32, 1.0, 3e38, -f32::MAX];
        for e in [
            s.transform(&mut pairs(&x)).unwrap_err(),
            m.transform(&mut pairs(&x)).unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                "invalid argument: sample 1, feature 1: -3.4028235e38 maps to -6.806e38, \
                 outside the range of f32"
            );
        }
        // Nothing is written on an error, though sample 0 alone would scale.
        let mut batch = pairs(&x).into_parts().0;
        assert!(s.transform_batch(&mut batch).is_err());
        assert_eq!(batch.as_slice(), &x);
        // A raw batch may hold what a data set refuses.
        let mut batch = Batch::<f32, 2>::from_column_slice(&[1.0, f32::NAN]);
        let e = m.transform_batch(&mut batch).unwrap_err().to_string();
        assert_eq!(e, "sample 0, feature 1: value NaN is not finite");
        // A floor that would let a zero deviation through as the divisor.
        for floor in [-1.0, f64::NAN] {
            assert!(Standardizer::fit_with_floor(&pairs(&EXTREME), floor).is_err());
        }
    }

    #[test]
    fn data_scalers_on_extreme_f64() {
        // sum (x - mean)^2 overflows f64 here; by symmetry mean = 0 and std = 1e300.
        let x = [1e300, f64::MAX, -1e300, -f64::MAX];
        let s = Standardizer::fit(&pairs(&x)).unwrap();
        assert_eq!(
            (s.mean(), s.scale()),
            (&[0.0, 0.0][..], &[1e300, f64::MAX][..])
        );
        let mut t = pairs(&x);
        s.transform(&mut t).unwrap();
        assert_eq!(t.inputs().as_slice(), &[1.0, 1.0, -1.0, -1.0]);
        // `max - min` itself is not an f64: refused, naming the feature.
        let e = MinMaxScaler::fit(&pairs(&x)).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid argument: feature 1: max - min"),
            "{e}"
        );
        let m = MinMaxScaler::fit(&pairs(&[1e300, 0.0, -1e300, 1.0])).unwrap();
        let mut t = pairs(&[f64::MAX, 0.5]);
        m.transform(&mut t).unwrap();
        // (MAX + 1e300) / 2e300 without overflowing in the difference.
        let want = f64::MAX / 2e300 + 0.5;
        assert!(
            (t.inputs()[0] - want).abs() <= 1e-15 * want,
            "{}",
            t.inputs()[0]
        );
        assert_eq!(t.inputs()[1], 0.5);
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
