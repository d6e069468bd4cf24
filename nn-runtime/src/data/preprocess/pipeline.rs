//! The scalers a model's raw data goes through, as one value: fitted on the training set,
//! applied to every set, undone on the network's outputs, and saved with the model
//! ([`persist::save_with_preprocessing`](crate::persist::save_with_preprocessing)).

use super::{Scaler, ScalerKind};
use crate::data::{DataError, Dataset};
use crate::network::{Batch, Network};
use crate::scalar::Float;
use crate::train::Metrics;
use nalgebra::SVector;

/// A model's preprocessing: an optional scaler of the input features and an optional scaler
/// of the regression targets. The network sees `x' = input(x)` and is trained on targets
/// `t' = target(t)`; [`predict`](Self::predict) maps a raw input to a prediction in the
/// target's units, `y = target⁻¹(net(input(x)))`. The default scales nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Preprocessing {
    /// Applied to the input features (width `IN`).
    pub input: Option<Scaler>,
    /// Applied to the targets and undone on the outputs (width `OUT`).
    pub target: Option<Scaler>,
}

impl Preprocessing {
    /// Fits the scalers asked for on `train`: features with `input`, target vectors with
    /// `target` (an error for class labels).
    pub fn fit<T: Float, const IN: usize>(
        train: &Dataset<T, IN>,
        input: Option<ScalerKind>,
        target: Option<ScalerKind>,
    ) -> Result<Self, DataError> {
        Ok(Self {
            input: input.map(|k| Scaler::fit_inputs(k, train)).transpose()?,
            target: target.map(|k| Scaler::fit_targets(k, train)).transpose()?,
        })
    }

    /// Scales a data set's inputs and (when there is a target scaler) its targets in place,
    /// all or nothing.
    pub fn apply<T: Float, const IN: usize>(
        &self,
        data: &mut Dataset<T, IN>,
    ) -> Result<(), DataError> {
        let mut scaled = data.clone();
        if let Some(s) = &self.input {
            s.transform_inputs(&mut scaled)?;
        }
        if let Some(s) = &self.target {
            s.transform_targets(&mut scaled)?;
        }
        *data = scaled;
        Ok(())
    }

    /// Refuses scalers whose widths are not `inputs` and `outputs`.
    pub fn check_widths(&self, inputs: usize, outputs: usize) -> Result<(), DataError> {
        let checks = [
            (
                &self.input,
                inputs,
                "input scaler width (the network's inputs)",
            ),
            (
                &self.target,
                outputs,
                "target scaler width (the network's outputs)",
            ),
        ];
        for (scaler, width, what) in checks {
            if let Some(s) = scaler.as_ref().filter(|s| s.width() != width) {
                return Err(DataError::Length {
                    what,
                    expected: width,
                    actual: s.width(),
                });
            }
        }
        Ok(())
    }

    /// The prediction for one raw input, in the target's units:
    /// `y = target⁻¹(net.predict(input(x)))`.
    pub fn predict<N, T, const IN: usize, const OUT: usize>(
        &self,
        net: &N,
        raw: &SVector<T, IN>,
    ) -> Result<SVector<T, OUT>, DataError>
    where
        N: Network<IN, OUT, Scalar = T>,
        T: Float,
    {
        self.check_widths(IN, OUT)?;
        let mut x = *raw;
        if let Some(s) = &self.input {
            let mut column = Batch::<T, IN>::from_column_slice(raw.as_slice());
            s.transform_batch(&mut column)?;
            x.copy_from_slice(column.as_slice());
        }
        let mut y = net.predict(&x);
        if let Some(s) = &self.target {
            s.inverse(y.as_mut_slice())?;
        }
        Ok(y)
    }

    /// The predictions for a batch of raw inputs (one column per sample), in the target's
    /// units, with the network's batched [`forward`](Network::forward).
    pub fn predict_batch<N, T, const IN: usize, const OUT: usize>(
        &self,
        net: &N,
        raw: &Batch<T, IN>,
    ) -> Result<Batch<T, OUT>, DataError>
    where
        N: Network<IN, OUT, Scalar = T>,
        T: Float,
    {
        self.check_widths(IN, OUT)?;
        let mut y = match &self.input {
            Some(s) => {
                let mut x = raw.clone();
                s.transform_batch(&mut x)?;
                net.forward(&x)
            }
            None => net.forward(raw),
        };
        if let Some(s) = &self.target {
            s.inverse(y.as_mut_slice())?;
        }
        Ok(y)
    }

    /// Regression metrics of `net` on a raw (unscaled) data set with target vectors, in the
    /// target's units: the mean absolute and squared errors and `R² = 1 − SS_res / SS_tot` of
    /// [`predict_batch`](Self::predict_batch) against the raw targets.
    pub fn evaluate<N, T, const IN: usize, const OUT: usize>(
        &self,
        net: &N,
        raw: &Dataset<T, IN>,
    ) -> Result<Metrics, DataError>
    where
        N: Network<IN, OUT, Scalar = T>,
        T: Float,
    {
        let crate::data::Labels::Values { values, rows } = raw.labels() else {
            return Err(DataError::LabelKind {
                needed: "target vectors",
                found: "class labels",
            });
        };
        if *rows != OUT {
            return Err(DataError::Length {
                what: "target rows (the network's outputs)",
                expected: OUT,
                actual: *rows,
            });
        }
        if raw.is_empty() {
            return Err(DataError::Invalid(
                "cannot evaluate on an empty data set".into(),
            ));
        }
        let y = self.predict_batch(net, raw.inputs())?;
        let metric = |e: crate::metrics::MetricsError| DataError::Invalid(e.to_string());
        Ok(Metrics::Regression {
            mae: crate::metrics::mae(y.as_slice(), values).map_err(metric)?,
            mse: crate::metrics::mse(y.as_slice(), values).map_err(metric)?,
            r2: crate::metrics::r2(y.as_slice(), values, OUT).map_err(metric)?,
        })
    }
}
