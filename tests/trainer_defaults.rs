//! The trainer's defaults (docs/training.md, "Defaults, measured"): the batch size
//! `min(200, n)`, the epochs `clamp(⌈10,000 / steps an epoch⌉, 10, 200)`, explicit values
//! winning over both, and the warning about early stopping on a small validation set.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{
    default_epochs, Control, EarlyStopping, History, Monitor, Progress, Trainer,
    DEFAULT_BATCH_SIZE, MIN_VALIDATION_SAMPLES,
};

network! { Tiny < dense(2 -> 3, relu), dense(3 -> 2, softmax) > }

/// `n` samples of two features, labelled by the sign of their sum.
fn data(n: usize) -> Dataset<f32, 2> {
    let mut rng = StdRng::seed_from_u64(5);
    let x: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let labels = x
        .chunks(2)
        .map(|s| usize::from(s[0] + s[1] > 0.0))
        .collect();
    Dataset::from_slices(&x, Labels::Classes { labels, classes: 2 }).expect("valid")
}

/// Trains `trainer` on `n` samples; returns the history and every batch's size.
fn run(trainer: Trainer<'_, CrossEntropy, Adam<f32>>, n: usize) -> (History, Vec<usize>) {
    let mut sizes = Vec::new();
    let mut net = Tiny::new(&mut StdRng::seed_from_u64(1));
    let history = trainer
        .progress(Progress::Off)
        .on_batch(|b| {
            sizes.push(b.samples);
            Control::Continue
        })
        .fit(&mut net, &data(n), None)
        .expect("trains");
    (history, sizes)
}

#[test]
fn default_epochs_follows_its_formula() {
    // (samples, batch, steps an epoch, epochs): ⌈10,000 / steps⌉ clamped to [10, 200].
    for (n, b, steps, want) in [
        (1usize, 200usize, 1usize, 200usize),
        (120, 200, 1, 200),
        (1_437, 200, 8, 200),
        (10_000, 200, 50, 200),
        (10_001, 200, 51, 197),
        (60_000, 200, 300, 34),
        (60_000, 32, 1_875, 10),
        (1_000_000, 200, 5_000, 10),
    ] {
        assert_eq!(n.div_ceil(b), steps);
        assert_eq!(default_epochs(n, b), want, "{n} samples in batches of {b}");
    }
    assert_eq!(
        default_epochs(0, 0),
        200,
        "no sample and batch 0 count as one step"
    );
    assert_eq!(DEFAULT_BATCH_SIZE, 200);
}

#[test]
fn a_small_set_trains_200_epochs_of_one_full_batch_by_default() {
    let (history, sizes) = run(Trainer::new(CrossEntropy, Adam::default()), 120);
    assert_eq!(history.epochs.len(), 200);
    assert_eq!(sizes, vec![120; 200], "min(200, n) = n: one batch an epoch");
    assert!(history.warnings.is_empty());
}

#[test]
fn a_larger_set_trains_fewer_epochs_by_default() {
    // 3,000 samples in batches of 1: 3,000 steps an epoch, ⌈10,000 / 3,000⌉ = 4, so 10.
    let (history, sizes) = run(
        Trainer::new(CrossEntropy, Adam::default()).batch_size(1),
        3_000,
    );
    assert_eq!(history.epochs.len(), 10);
    assert_eq!(sizes.len(), 30_000);
}

#[test]
fn explicit_batch_size_and_epochs_override_the_defaults() {
    let (history, sizes) = run(
        Trainer::new(CrossEntropy, Adam::default()).batch_size(32),
        120,
    );
    // Batches of 32, 32, 32, 24; ⌈10,000 / 4⌉ clamped: 200 epochs.
    assert_eq!(history.epochs.len(), 200);
    assert_eq!(&sizes[..4], &[32, 32, 32, 24]);
    let (history, sizes) = run(
        Trainer::new(CrossEntropy, Adam::default())
            .batch_size(50)
            .epochs(7),
        120,
    );
    assert_eq!(history.epochs.len(), 7);
    assert_eq!(sizes.len(), 7 * 3);
}

#[test]
fn early_stopping_on_a_small_validation_set_warns_in_the_history() {
    let es = EarlyStopping::new(1_000);
    let trainer = || {
        Trainer::new(CrossEntropy, Adam::default())
            .epochs(2)
            .validation_fraction(0.1)
    };
    // 120 samples: 12 held out, below the minimum.
    let (history, _) = run(trainer().early_stopping(es), 120);
    assert_eq!(history.warnings.len(), 1, "{:?}", history.warnings);
    assert!(
        history.warnings[0].contains("12 samples"),
        "{}",
        history.warnings[0]
    );
    assert!(history.warnings[0].contains(&MIN_VALIDATION_SAMPLES.to_string()));
    // No warning without early stopping, when it watches the training loss, or with
    // 300 samples (30 held out).
    assert!(run(trainer(), 120).0.warnings.is_empty());
    let on_train = es.monitor(Monitor::TrainLoss);
    assert!(run(trainer().early_stopping(on_train), 120)
        .0
        .warnings
        .is_empty());
    assert!(run(trainer().early_stopping(es), 300).0.warnings.is_empty());
}
