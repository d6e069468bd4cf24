//! Loss and accuracy curves as SVG (feature `plot`, drawn with plotters).

use crate::train::History;
use plotters::prelude::*;
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

/// Writes the training curves of `history` to an SVG file: loss (train and validation) on
/// the left, accuracy (train and validation, classification only) on the right.
pub fn write_curves(history: &History, path: impl AsRef<Path>) -> Result<(), PlotError> {
    let path = path.as_ref();
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(480);

    let series = |f: &dyn Fn(&crate::train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    let train_loss = series(&|e| Some(e.train_loss));
    let val_loss = series(&|e| e.val_loss);
    let train_acc = series(&|e| e.train_metrics.accuracy());
    let val_acc = series(&|e| e.val_metrics.and_then(|m| m.accuracy()));

    draw_panel(&left, "loss", &train_loss, &val_loss).map_err(|e| err(&e))?;
    draw_panel(&right, "accuracy", &train_acc, &val_acc).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{EpochRecord, Metrics, StopReason};

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
}
