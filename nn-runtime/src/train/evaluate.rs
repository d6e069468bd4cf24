//! Evaluation in inference mode: the loss and metrics of a network on a data set.

use super::step::{reads_classes_as_values, Workspace};
use super::tally::{Tally, TaskKind};
use super::{Metrics, TrainError};
use crate::data::{Dataset, Labels};
use crate::loss::{loss_on_output, Loss, Targets};
use crate::network::{Network, OutputParts, Tape};
use crate::scalar::Float;

/// Refuses targets that do not fit the network's output, saying what would fit.
///
/// Class labels need one output per class, except on a network of one output (a binary
/// classifier, usually a sigmoid), which takes two classes: class `c` is the target value
/// `c` ([`reads_classes_as_values`]).
pub(crate) fn check_targets<T: Float, const IN: usize, const OUT: usize>(
    data: &Dataset<T, IN>,
    which: &str,
) -> Result<(), TrainError> {
    match data.labels() {
        Labels::Classes { classes, .. } if reads_classes_as_values(OUT) && *classes > 2 => {
            return Err(TrainError::Config(format!(
                "{which} set: the data set has {classes} classes, but the network has one \
                 output, which classifies two (labels 0 and 1); give the output layer \
                 {classes} outputs (softmax) to tell {classes} classes apart"
            )));
        }
        Labels::Classes { labels, .. } => {
            let outputs = if reads_classes_as_values(OUT) { 2 } else { OUT };
            if let Some((sample, &class)) = labels.iter().enumerate().find(|(_, &c)| c >= outputs) {
                return Err(TrainError::Config(format!(
                    "{which} set: sample {sample} has class {class}, but the network has {OUT} \
                     outputs, one per class (classes 0 to {}); give the output layer {} \
                     outputs",
                    outputs - 1,
                    class + 1
                )));
            }
        }
        Labels::Values { rows, .. } if *rows != OUT => {
            let hint = if *rows == 1 {
                "; if the column holds class labels, load them as classes \
                 (`CsvOptions::classes(k)`, `Labels::Classes`)"
            } else {
                ""
            };
            return Err(TrainError::Config(format!(
                "{which} set: targets have {rows} values, but the network has {OUT} outputs{hint}"
            )));
        }
        Labels::Values { .. } => {}
    }
    Ok(())
}

/// Refuses class labels for a loss that needs target vectors (`Mse`, `Huber`,
/// `BinaryCrossEntropy`, ...) before anything is computed, saying how to convert them. A
/// loss is asked with an empty batch (no allocation, nothing computed) whether it takes
/// class labels on this network's output; one that refuses empty batches of either kind is
/// left to report its own error.
pub(crate) fn check_loss<N, T, L, const IN: usize, const OUT: usize>(
    loss: &L,
    data: &Dataset<T, IN>,
    which: &str,
) -> Result<(), TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + ?Sized,
{
    let Labels::Classes { classes, .. } = data.labels() else {
        return Ok(());
    };
    if reads_classes_as_values(OUT) {
        return Ok(());
    }
    let refuses = |targets: Targets<'_, T>| {
        let parts = OutputParts {
            rows: OUT,
            batch: 0,
            logits: &[],
            output: &[],
            grad: &mut [],
        };
        loss_on_output(loss, N::OUTPUT_ACTIVATION, parts, targets).is_err()
    };
    if refuses(Targets::Classes(&[])) && !refuses(Targets::Values(&[])) {
        return Err(TrainError::Config(format!(
            "{which} set: the loss `{}` needs target vectors, but the data set has class \
             labels ({classes} classes); one-hot encode them with `dataset.one_hot()?` \
             (`Dataset::one_hot`, or `nn_runtime::data::one_hot(&labels, {classes})` on the \
             labels alone), or train with a loss that takes class labels, such as \
             `CrossEntropy`",
            loss.name()
        )));
    }
    Ok(())
}

pub(crate) fn evaluate_with<N, T, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN>,
    chunk: usize,
    tape: &mut N::Tape,
    ws: &mut Workspace<T>,
) -> Result<(f64, Metrics), TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + ?Sized,
{
    check_loss::<N, T, L, IN, OUT>(loss, data, "validation")?;
    let kind = TaskKind::of(data, N::OUTPUT_ACTIVATION);
    let mut tally = Tally::new(kind, OUT);
    let all: Vec<usize> = (0..data.len()).collect();
    if ws.inputs.len() < IN * chunk {
        ws.inputs.resize(IN * chunk, T::zero());
    }
    for idx in all.chunks(chunk) {
        let n = idx.len();
        ws.gather(data, idx)?;
        net.forward_eval(ws.view::<IN>(n), tape);
        let targets = ws.targets(data.labels(), n);
        let (value, _) = loss_on_output(loss, N::OUTPUT_ACTIVATION, tape.output_parts(), targets)
            .map_err(|source| TrainError::Loss {
            epoch: 0,
            batch: 0,
            source,
        })?;
        tally.add(
            value.to_f64(),
            tape.output_parts().output,
            OUT,
            ws.targets(data.labels(), n),
        );
    }
    Ok((tally.loss(), tally.metrics(kind)))
}

/// The loss (data loss, mean over samples) and metrics of `net` on `data`, in inference mode.
pub fn evaluate<N, T, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN>,
) -> Result<(f64, Metrics), TrainError>
where
    N: Network<IN, OUT, Scalar = T>,
    T: Float,
    L: Loss<T> + ?Sized,
{
    check_targets::<T, IN, OUT>(data, "evaluation")?;
    check_loss::<N, T, L, IN, OUT>(loss, data, "evaluation")?;
    if data.is_empty() {
        return Err(TrainError::Config(
            "the evaluation set is empty: there is no loss or accuracy to compute".into(),
        ));
    }
    let chunk = 512;
    let mut ws = Workspace::new(IN, OUT, chunk);
    let mut tape = net.new_tape();
    evaluate_with(net, loss, data, chunk, &mut tape, &mut ws)
}
