//! Evaluation in inference mode: the loss and metrics of a network on a data set.

use super::step::Workspace;
use super::tally::{Tally, TaskKind};
use super::{Metrics, TrainError};
use crate::data::{Dataset, Labels};
use crate::loss::{loss_on_output, Loss};
use crate::network::{Network, Tape};
use crate::scalar::Float;

/// Refuses targets that do not fit the network's output.
pub(crate) fn check_targets<T: Float, const IN: usize, const OUT: usize>(
    data: &Dataset<T, IN>,
    which: &str,
) -> Result<(), TrainError> {
    match data.labels() {
        Labels::Classes { labels, .. } => {
            if let Some((sample, &class)) = labels.iter().enumerate().find(|(_, &c)| c >= OUT) {
                return Err(TrainError::Config(format!(
                    "{which} set: sample {sample} has class {class}, but the network has {OUT} outputs"
                )));
            }
        }
        Labels::Values { rows, .. } if *rows != OUT => {
            return Err(TrainError::Config(format!(
                "{which} set: targets have {rows} values, but the network has {OUT} outputs"
            )));
        }
        Labels::Values { .. } => {}
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
