//! A fitted scaler as one value for inputs or targets alike, independent of the scalar type
//! and width, so it can be saved with a model and loaded back.

use super::{affine, min_max_columns, standardize_columns, Direction, Role, STD_FLOOR};
use super::{MinMaxScaler, Standardizer};
use crate::data::{DataError, Dataset, Labels};
use crate::network::Batch;
use crate::scalar::Float;
use nalgebra::{Const, Dyn};

/// How a [`Scaler`] was fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalerKind {
    /// `x' = (x − μ) / σ` with the training set's mean `μ` and population standard deviation
    /// `σ` (1 where `σ <= STD_FLOOR`), as [`Standardizer`].
    Standardize,
    /// `x' = (x − min) / (max − min)` with the training set's range (1 where it is 0), as
    /// [`MinMaxScaler`].
    MinMax,
}

impl ScalerKind {
    /// The name files record: `standardize` or `min_max`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Standardize => "standardize",
            Self::MinMax => "min_max",
        }
    }

    /// The kind named `name` (as [`name`](Self::name) gives it), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Standardize, Self::MinMax]
            .into_iter()
            .find(|k| k.name() == name)
    }

    /// The names of its offset and divisor: `mean`, `scale` or `min`, `range`.
    pub const fn parameter_names(self) -> [&'static str; 2] {
        match self {
            Self::Standardize => ["mean", "scale"],
            Self::MinMax => ["min", "range"],
        }
    }
}

/// A fitted per-row affine map of vectors of [`width`](Self::width) values (features or
/// targets): `x'_j = (x_j − offset_j) / divisor_j`, undone by `x_j = x'_j · divisor_j +
/// offset_j`, computed in `f64`. For [`ScalerKind::Standardize`] the offset is the mean and
/// the divisor the standard deviation; for [`ScalerKind::MinMax`] the minimum and the range.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaler {
    kind: ScalerKind,
    offset: Vec<f64>,
    divisor: Vec<f64>,
}

impl Scaler {
    /// A scaler from its parameters: as many offsets as divisors (at least one), every
    /// offset finite and every divisor finite and positive; otherwise an error naming the
    /// first row at fault.
    pub fn new(kind: ScalerKind, offset: Vec<f64>, divisor: Vec<f64>) -> Result<Self, DataError> {
        if offset.is_empty() {
            return Err(DataError::Invalid("a scaler needs at least one row".into()));
        }
        if offset.len() != divisor.len() {
            return Err(DataError::Length {
                what: "scaler divisors (one per offset)",
                expected: offset.len(),
                actual: divisor.len(),
            });
        }
        let [o_name, d_name] = kind.parameter_names();
        for (row, (&o, &d)) in offset.iter().zip(&divisor).enumerate() {
            if !o.is_finite() {
                return Err(DataError::Invalid(format!(
                    "scaler row {row}: {o_name} {o} is not finite"
                )));
            }
            if !(d.is_finite() && d > 0.0) {
                return Err(DataError::Invalid(format!(
                    "scaler row {row}: {d_name} {d} is not finite and positive"
                )));
            }
        }
        Ok(Self {
            kind,
            offset,
            divisor,
        })
    }

    /// Fits a scaler of `kind` on the features of `train` (as [`Standardizer::fit`] or
    /// [`MinMaxScaler::fit`]).
    pub fn fit_inputs<T: Float, const IN: usize>(
        kind: ScalerKind,
        train: &Dataset<T, IN>,
    ) -> Result<Self, DataError> {
        Ok(match kind {
            ScalerKind::Standardize => Self::from(&Standardizer::fit(train)?),
            ScalerKind::MinMax => Self::from(&MinMaxScaler::fit(train)?),
        })
    }

    /// Fits a scaler of `kind` on the target vectors of `train` (`Labels::Values`), row by
    /// row, with the formulas of the input scalers: for a regression target of values 25 to
    /// 350, `Standardize` gives targets of mean 0 and standard deviation 1.
    pub fn fit_targets<T: Float, const IN: usize>(
        kind: ScalerKind,
        train: &Dataset<T, IN>,
    ) -> Result<Self, DataError> {
        let (values, rows) = target_values(train.labels())?;
        if train.is_empty() {
            return Err(DataError::Invalid(
                "cannot fit a target scaler on an empty data set".into(),
            ));
        }
        let (offset, divisor) = match kind {
            ScalerKind::Standardize => standardize_columns(values, rows, STD_FLOOR),
            ScalerKind::MinMax => min_max_columns(values, rows, "target")?,
        };
        Ok(Self {
            kind,
            offset,
            divisor,
        })
    }

    /// How it was fitted.
    pub fn kind(&self) -> ScalerKind {
        self.kind
    }

    /// The offsets (means or minima), one per row.
    pub fn offset(&self) -> &[f64] {
        &self.offset
    }

    /// The divisors (standard deviations or ranges), one per row.
    pub fn divisor(&self) -> &[f64] {
        &self.divisor
    }

    /// Values per vector (features or target rows).
    pub fn width(&self) -> usize {
        self.offset.len()
    }

    /// Scales column-major vectors of `width()` values in place, `x' = (x − offset) /
    /// divisor`; all or nothing: a length that is no multiple of the width, a non-finite
    /// value or a result outside `T` is an error naming the sample and row.
    pub fn transform<T: Float>(&self, values: &mut [T]) -> Result<(), DataError> {
        self.map(values, Direction::Forward, Role::Target)
    }

    /// Undoes [`transform`](Self::transform) in place, `x = x' · divisor + offset`: a
    /// network's scaled outputs back to the target's units. Errors as `transform`.
    pub fn inverse<T: Float>(&self, values: &mut [T]) -> Result<(), DataError> {
        self.map(values, Direction::Inverse, Role::Output)
    }

    /// Scales a batch of inputs in place; its width must be `IN`. Errors as
    /// [`Standardizer::transform_batch`].
    pub fn transform_batch<T: Float, const IN: usize>(
        &self,
        x: &mut Batch<T, IN>,
    ) -> Result<(), DataError> {
        self.check_width("scaler width (the input features)", IN)?;
        affine(
            x.as_mut_slice(),
            &self.offset,
            &self.divisor,
            Direction::Forward,
            Role::Feature,
        )
    }

    /// Scales a data set's inputs in place (its labels are unchanged).
    pub fn transform_inputs<T: Float, const IN: usize>(
        &self,
        data: &mut Dataset<T, IN>,
    ) -> Result<(), DataError> {
        self.transform_batch(data.inputs_mut())
    }

    /// Scales a data set's target vectors (`Labels::Values` of `width()` rows) in place, its
    /// inputs unchanged; on an error the data set is unchanged.
    pub fn transform_targets<T: Float, const IN: usize>(
        &self,
        data: &mut Dataset<T, IN>,
    ) -> Result<(), DataError> {
        let (_, rows) = target_values(data.labels())?;
        self.check_width("target rows of the data set", rows)?;
        let empty = Dataset::new(
            Batch::zeros_generic(Const::<IN>, Dyn(0)),
            Labels::Classes {
                labels: Vec::new(),
                classes: 0,
            },
        )?;
        let (inputs, labels) = std::mem::replace(data, empty).into_parts();
        let (labels, mapped) = match labels {
            Labels::Values { mut values, rows } => {
                let mapped = self.transform(&mut values);
                (Labels::Values { values, rows }, mapped)
            }
            classes => (classes, Ok(())),
        };
        // Scaled values are finite (checked), so the data set is valid again.
        *data = Dataset::new(inputs, labels)?;
        mapped
    }

    fn map<T: Float>(
        &self,
        values: &mut [T],
        direction: Direction,
        role: Role,
    ) -> Result<(), DataError> {
        if !values.len().is_multiple_of(self.width()) {
            return Err(DataError::Length {
                what: "values to scale (a multiple of the scaler's width)",
                expected: self.width() * values.len().div_ceil(self.width()),
                actual: values.len(),
            });
        }
        affine(values, &self.offset, &self.divisor, direction, role)
    }

    fn check_width(&self, what: &'static str, width: usize) -> Result<(), DataError> {
        if self.width() == width {
            return Ok(());
        }
        Err(DataError::Length {
            what,
            expected: self.width(),
            actual: width,
        })
    }
}

/// The target values and rows of `labels`, or an error for class labels.
fn target_values<T>(labels: &Labels<T>) -> Result<(&[T], usize), DataError> {
    match labels {
        Labels::Values { values, rows } => Ok((values, *rows)),
        Labels::Classes { .. } => Err(DataError::LabelKind {
            needed: "target vectors",
            found: "class labels",
        }),
    }
}

impl<T: Float, const IN: usize> From<&Standardizer<T, IN>> for Scaler {
    fn from(s: &Standardizer<T, IN>) -> Self {
        Self {
            kind: ScalerKind::Standardize,
            offset: s.mean().to_vec(),
            divisor: s.scale().to_vec(),
        }
    }
}

impl<T: Float, const IN: usize> From<&MinMaxScaler<T, IN>> for Scaler {
    fn from(s: &MinMaxScaler<T, IN>) -> Self {
        Self {
            kind: ScalerKind::MinMax,
            offset: s.min().to_vec(),
            divisor: s.range().to_vec(),
        }
    }
}
