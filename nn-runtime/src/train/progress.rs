//! Progress output: a bar per epoch on a terminal, plain lines elsewhere.

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::io::IsTerminal;

/// How training reports progress on standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// A progress bar when standard error is a terminal, else one line per epoch.
    #[default]
    Auto,
    /// One line per epoch, never a bar (logs, CI).
    Lines,
    /// Nothing.
    Off,
}

/// The reporter for one epoch.
pub(crate) struct EpochProgress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl EpochProgress {
    pub(crate) fn start(mode: Progress, epoch: usize, epochs: usize, samples: usize) -> Self {
        let bar = (mode == Progress::Auto && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(samples as u64);
            // Fits an 80-column terminal: "epoch 3/10 [====>       ] 19200/55000 14523
            // samples/s loss 0.0712 acc 0.9783".
            let style =
                ProgressStyle::with_template("epoch {prefix} [{bar:12}] {pos}/{len} {rate} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} samples/s", s.per_sec());
                    })
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar
        });
        Self {
            bar,
            lines: mode != Progress::Off,
        }
    }

    /// After a batch: samples done so far and running loss/accuracy.
    pub(crate) fn batch(&self, done: usize, loss: f64, accuracy: Option<f64>) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            match accuracy {
                Some(a) => bar.set_message(format!("loss {loss:.4} acc {a:.4}")),
                None => bar.set_message(format!("loss {loss:.4}")),
            }
        }
    }

    /// Training stopped in the middle of the epoch: clears the bar, prints no summary.
    pub(crate) fn abandon(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The epoch's summary line.
    pub(crate) fn finish(self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.lines {
            eprintln!("{line}");
        }
    }
}
