//! Undoing a step that turned a value non-finite: the checked state at the start of an
//! epoch, and the deterministic replay of the epoch's steps up to the one that did it.

use super::step::{state_not_finite, step, NonFinite, StepBuffers, StepOutcome, StepRules};
use super::TrainError;
use crate::data::{BatchOrder, Dataset};
use crate::loss::Loss;
use crate::network::{Network, Parameters};
use crate::optim::{Optimizer, OptimizerState};
use crate::scalar::Float;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The dropout rng of `epoch`, seeded by (seed, epoch): a resumed run, and a replay of the
/// epoch, draw the same masks as an uninterrupted one.
pub(crate) fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03))
}

/// The checked state at the start of an epoch: the weights and the optimizer's state, in
/// buffers reused from epoch to epoch.
pub(crate) struct Snapshot<T> {
    weights: Vec<T>,
    optimizer: OptimizerState<T>,
}

impl<T: Float> Snapshot<T> {
    pub(crate) fn of<P: Parameters<T>, O: Optimizer<T>>(net: &P, optimizer: &O) -> Self {
        Self {
            weights: net.to_flat(),
            optimizer: optimizer.state(),
        }
    }

    /// Copies the current state in (allocating only while the optimizer's buffers grow).
    pub(crate) fn update<P: Parameters<T>, O: Optimizer<T>>(&mut self, net: &P, optimizer: &O) {
        self.weights.clear();
        net.for_each_tensor(&mut |_, v| self.weights.extend_from_slice(v));
        optimizer.state_into(&mut self.optimizer);
    }
}

/// Re-runs the first steps of an epoch from its snapshot. Training is deterministic (the
/// same batches, dropout masks, and bits on one thread or several), so this reproduces the
/// state after any step of the epoch exactly.
pub(crate) struct Replay<'r, 'b, 'p, N: Network<IN, OUT>, L, O, const IN: usize, const OUT: usize> {
    pub(crate) net: &'r mut N,
    pub(crate) loss: &'r L,
    pub(crate) optimizer: &'r mut O,
    pub(crate) rules: &'r StepRules<'p>,
    pub(crate) buf: &'r mut StepBuffers<'b, N, IN, OUT>,
    pub(crate) train: &'r Dataset<N::Scalar, IN>,
    pub(crate) order: &'r BatchOrder,
    pub(crate) snap: &'r Snapshot<N::Scalar>,
    pub(crate) seed: u64,
    pub(crate) epoch: usize,
    pub(crate) lr: f64,
}

impl<N, L, O, const IN: usize, const OUT: usize> Replay<'_, '_, '_, N, L, O, IN, OUT>
where
    N: Network<IN, OUT>,
    L: Loss<N::Scalar>,
    O: Optimizer<N::Scalar>,
{
    /// Puts the snapshot back.
    fn restore(&mut self) -> Result<(), TrainError> {
        self.net.copy_from_flat(&self.snap.weights);
        self.optimizer
            .load_state(&self.snap.optimizer)
            .map_err(|e| TrainError::Config(format!("restoring the optimizer's state: {e}")))?;
        self.optimizer.set_learning_rate(self.lr);
        Ok(())
    }

    /// Runs steps from the snapshot while `go_on(steps run, network, optimizer)` holds (asked
    /// before each step and after the last); returns how many ran. Should a step not
    /// reproduce (its loss or a gradient turn non-finite), the snapshot is put back and 0
    /// returned.
    fn run(&mut self, mut go_on: impl FnMut(usize, &N, &O) -> bool) -> Result<usize, TrainError> {
        self.restore()?;
        let mut rng = epoch_rng(self.seed, self.epoch);
        let mut ran = 0;
        for (b, idx) in self.order.batches().enumerate() {
            if !go_on(b, self.net, self.optimizer) {
                return Ok(b);
            }
            let outcome = step(
                self.net,
                self.loss,
                self.optimizer,
                self.rules,
                self.buf,
                self.train,
                idx,
                &mut rng,
                (self.epoch, b),
            )?;
            if let StepOutcome::NonFinite(_) = outcome {
                self.restore()?;
                return Ok(0);
            }
            ran = b + 1;
        }
        go_on(ran, self.net, self.optimizer);
        Ok(ran)
    }

    /// Finds the first step of the epoch after which a weight or the optimizer's state is
    /// not finite, leaves the state after the step before it, and returns the error that
    /// names it. (Should the replay not reproduce it, the state of the epoch's start.)
    pub(crate) fn undo_first_bad_step(&mut self) -> Result<TrainError, TrainError> {
        let mut bad = None;
        self.run(|b, net, o| {
            if b > 0 && bad.is_none() {
                bad = state_not_finite(net, o).map(|what| (b - 1, what));
            }
            bad.is_none()
        })?;
        let (batch, what) = bad.unwrap_or((0, NonFinite::Parameters));
        self.run(|b, _, _| b < batch)?;
        Ok(TrainError::NonFinite {
            epoch: self.epoch,
            batch,
            what: what.what(),
        })
    }
}
