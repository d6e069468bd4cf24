//! Loss and accuracy (or R²) curves as SVG (feature `plot`, drawn with plotters).

use crate::train::{EpochRecord, History, Metrics};
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One panel: the training series in blue and the validation series in red, over epochs.
fn draw_panel(
    area: &Area<'_>,
    title: &str,
    train: &[(f64, f64)],
    val: &[(f64, f64)],
) -> Result<(), String> {
    if train.is_empty() {
        return Ok(());
    }
    let epochs = train.iter().chain(val).map(|p| p.0).fold(2.0, f64::max);
    let (lo, hi) = train
        .iter()
        .chain(val)
        .map(|p| p.1)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, (lo - pad)..(hi + pad))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(train.iter().copied(), &BLUE))
        .map_err(|x| e(&x))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val.iter().copied(), &RED))
            .map_err(|x| e(&x))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|x| e(&x))
}

/// Writes the training curves of `history` to an SVG file, atomically (a temporary file
/// renamed over `path`): loss (train and validation) on the left; on the right accuracy for
/// classification, or R² for regression. Non-finite values are left out.
pub fn write_curves(history: &History, path: impl AsRef<Path>) -> Result<(), PlotError> {
    let path = path.as_ref();
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let series = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| f(e).filter(|v| v.is_finite()).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let train_loss = series(&|e| Some(e.train_loss));
    let val_loss = series(&|e| e.val_loss);
    let regression = history
        .epochs
        .first()
        .is_some_and(|e| e.train_metrics.accuracy().is_none());
    let (title, metric): (&str, fn(&Metrics) -> Option<f64>) = if regression {
        ("R²", |m| match m {
            Metrics::Regression { r2, .. } => Some(*r2),
            Metrics::Classification { .. } => None,
        })
    } else {
        ("accuracy", Metrics::accuracy)
    };
    let train_metric = series(&|e| metric(&e.train_metrics));
    let val_metric = series(&|e| e.val_metrics.as_ref().and_then(metric));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (left, right) = root.split_horizontally(480);
        draw_panel(&left, "loss", &train_loss, &val_loss).map_err(|e| err(&e))?;
        draw_panel(&right, title, &train_metric, &val_metric).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    crate::persist::write_atomic(path, |f| f.write_all(svg.as_bytes())).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::StopReason;

    #[test]
    fn writes_loss_and_accuracy_curves() {
        let epochs = (1..=5)
            .map(|e| EpochRecord {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_metrics: Metrics::Classification {
                    accuracy: 0.5 + 0.08 * e as f64,
                },
                val_loss: Some(1.2 / e as f64),
                val_metrics: Some(Metrics::Classification {
                    accuracy: 0.45 + 0.08 * e as f64,
                }),
                learning_rate: 1e-3,
                seconds: 1.0,
                samples_per_second: 1000.0,
            })
            .collect();
        let history = History {
            epochs,
            stop: StopReason::Completed,
            restored_epoch: None,
            warnings: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("curves.svg");
        write_curves(&history, &path).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("svg written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in ["loss", "accuracy", "train", "validation", "epoch"] {
            assert!(svg.contains(text), "no `{text}` in the plot");
        }
        assert!(
            svg.matches("<polyline").count() >= 4,
            "two curves per panel"
        );
    }

    #[test]
    fn regression_histories_plot_r2_and_skip_non_finite_values() {
        let epochs = (1..=4)
            .map(|e| EpochRecord {
                epoch: e,
                train_loss: if e == 2 { f64::NAN } else { 2.0 / e as f64 },
                train_metrics: Metrics::Regression {
                    mae: 1.0 / e as f64,
                    mse: 1.0 / e as f64,
                    r2: 1.0 - 1.0 / e as f64,
                },
                val_loss: None,
                val_metrics: None,
                learning_rate: 1e-3,
                seconds: 1.0,
                samples_per_second: 1000.0,
            })
            .collect();
        let history = History {
            epochs,
            stop: StopReason::Completed,
            restored_epoch: None,
            warnings: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("curves.svg");
        write_curves(&history, &path).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("svg written");
        assert!(svg.contains("R²") && !svg.contains("accuracy"));
        assert!(!svg.contains("NaN"), "a NaN reached the drawing");
        // Per panel, the training curve and its legend sample in blue, no validation in red.
        let blue = svg.matches("stroke=\"#0000FF\"").count();
        assert_eq!(blue, 4, "one training curve per panel");
        assert!(!svg.contains("#FF0000"), "no validation curve");
        // Only the SVG is left in the directory: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
