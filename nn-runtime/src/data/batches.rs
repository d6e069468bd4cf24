//! Mini-batch orders: a permutation of sample indices, reshuffled in place each epoch.

use super::DataError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::slice::Chunks;

/// The order in which an epoch visits a data set's samples, cut into mini-batches.
///
/// It holds only a permutation of `0..len` (never a copy of the data). With a seed, the
/// permutation for epoch `e` is the identity shuffled by an rng seeded from `(seed, e)`, so
/// it depends on the seed and epoch number alone: a run resumed at epoch `e` sees exactly
/// the batches the uninterrupted run would have. Without a seed the order is `0..len`.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    order: Vec<usize>,
    batch_size: usize,
    seed: Option<u64>,
    epoch: u64,
}

impl BatchOrder {
    /// An order over `len` samples in batches of `batch_size`, shuffled each epoch if `seed`
    /// is given. An error if `batch_size` is zero.
    pub fn new(len: usize, batch_size: usize, seed: Option<u64>) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::Invalid("batch size must be at least 1".into()));
        }
        Ok(Self {
            order: (0..len).collect(),
            batch_size,
            seed,
            epoch: 0,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Samples per batch (the last batch of an epoch may be smaller).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch, `ceil(len / batch_size)`.
    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// The epoch the next call to [`BatchOrder::next_epoch`] will produce.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Sets the next epoch number (to resume a run).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Arranges the permutation for `epoch` in place (no allocation).
    pub fn shuffle_for(&mut self, epoch: u64) {
        if let Some(seed) = self.seed {
            for (i, v) in self.order.iter_mut().enumerate() {
                *v = i;
            }
            let mixed = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            self.order.shuffle(&mut StdRng::seed_from_u64(mixed));
        }
    }

    /// Shuffles for the next epoch, advances the epoch counter, and returns its batches:
    /// slices of `batch_size` indices, the last one possibly shorter.
    pub fn next_epoch(&mut self) -> Chunks<'_, usize> {
        self.shuffle_for(self.epoch);
        self.epoch += 1;
        self.batches()
    }

    /// The batches of the current permutation, without reshuffling.
    pub fn batches(&self) -> Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }

    /// The current permutation.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_batches_cover_every_sample_once() {
        let mut b = BatchOrder::new(10, 4, Some(3)).unwrap();
        assert_eq!(b.num_batches(), 3);
        let sizes: Vec<usize> = b.next_epoch().map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let mut seen: Vec<usize> = b.batches().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn data_batches_reshuffle_reproducibly() {
        let mut a = BatchOrder::new(50, 8, Some(1)).unwrap();
        let e0: Vec<usize> = a.next_epoch().flatten().copied().collect();
        let e1: Vec<usize> = a.next_epoch().flatten().copied().collect();
        assert_ne!(e0, e1);
        assert_ne!(e0, (0..50).collect::<Vec<_>>());
        let mut resumed = BatchOrder::new(50, 8, Some(1)).unwrap();
        resumed.set_epoch(1);
        assert_eq!(
            resumed.next_epoch().flatten().copied().collect::<Vec<_>>(),
            e1
        );
        let mut plain = BatchOrder::new(5, 2, None).unwrap();
        assert_eq!(
            plain.next_epoch().collect::<Vec<_>>(),
            [&[0, 1][..], &[2, 3], &[4]]
        );
        assert!(BatchOrder::new(5, 0, None).is_err());
    }
}
