//! The trainer end to end: determinism, checkpoints and exact resumption, persistence,
//! and refusing bad data or a diverging run with errors that say where.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::{CrossEntropy, Mse};
use nn::runtime::optim::{Adam, Sgd};
use nn::runtime::persist;
use nn::runtime::train::{
    evaluate, CheckpointEvery, Control, EarlyStopping, EpochRecord, Metrics, Monitor, Progress,
    StopReason, TrainError, Trainer,
};

network! { Net < dense(6 -> 16, relu), dropout(0.25), dense(16 -> 3, softmax) > }
network! { #[derive(Debug)] Reg < dense(2 -> 8, tanh), dense(8 -> 1) > }
network! { Reg2: f64 < dense(2 -> 8, tanh), dense(8 -> 2) > }

/// Three noisy clusters in six dimensions.
fn clusters(n: usize, seed: u64) -> Dataset<f32, 6> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(6 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 3;
        for f in 0..6 {
            let center = if f % 3 == class { 1.5 } else { -0.5 };
            x.push(center + rng.random_range(-0.8..0.8));
        }
        y.push(class);
    }
    Dataset::from_slices(
        &x,
        Labels::Classes {
            labels: y,
            classes: 3,
        },
    )
    .expect("valid data")
}

fn trainer(epochs: usize) -> Trainer<'static, CrossEntropy, Adam<f32>> {
    Trainer::new(CrossEntropy, Adam::new(0.01))
        .epochs(epochs)
        .batch_size(16)
        .seed(9)
        .progress(Progress::Off)
}

#[test]
fn same_seed_same_weights_bit_for_bit() {
    let data = clusters(300, 1);
    let run = || {
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        trainer(3).fit(&mut net, &data, None).expect("training");
        net.to_flat()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    // A different seed gives different weights (the comparison above can fail).
    let mut net = Net::new(&mut StdRng::seed_from_u64(4));
    trainer(3)
        .seed(10)
        .fit(&mut net, &data, None)
        .expect("training");
    assert_ne!(net.to_flat(), a);
}

#[test]
fn learns_and_reports_history() {
    let data = clusters(600, 2);
    let val = clusters(150, 3);
    let mut net = Net::new(&mut StdRng::seed_from_u64(5));
    let history = trainer(8)
        .fit(&mut net, &data, Some(&val))
        .expect("training");
    assert_eq!(history.epochs.len(), 8);
    assert_eq!(history.stop, StopReason::Completed);
    let last = history.last().expect("an epoch");
    let acc = last
        .val_metrics
        .and_then(|m| m.accuracy())
        .expect("accuracy");
    assert!(acc > 0.95, "validation accuracy {acc}");
    assert!(last.train_loss < history.epochs[0].train_loss);
}

#[test]
fn resuming_from_a_checkpoint_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = clusters(200, 6);
    let path = dir.path().join("ck.safetensors");

    let mut straight = Net::new(&mut StdRng::seed_from_u64(7));
    trainer(4)
        .fit(&mut straight, &data, None)
        .expect("training");

    let mut first = Net::new(&mut StdRng::seed_from_u64(7));
    trainer(2)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut first, &data, None)
        .expect("first half");
    // A different network object, as after a restart: everything comes from the checkpoint.
    let mut resumed = Net::new(&mut StdRng::seed_from_u64(99));
    let history = trainer(4)
        .resume_from(&path)
        .fit(&mut resumed, &data, None)
        .expect("second half");
    assert_eq!(history.epochs.first().map(|e| e.epoch), Some(3));
    assert_eq!(resumed.to_flat(), straight.to_flat());
}

#[test]
fn save_and_load_give_identical_predictions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = clusters(120, 8);
    let mut net = Net::new(&mut StdRng::seed_from_u64(1));
    trainer(2).fit(&mut net, &data, None).expect("training");
    let path = dir.path().join("net.safetensors");
    persist::save(&net, &path).expect("save");
    let loaded: Net = persist::load(&path).expect("load");
    assert_eq!(loaded.forward(data.inputs()), net.forward(data.inputs()));
    // A network of another shape refuses the file, naming what differs.
    let err = persist::load::<Reg, 2, 1>(&path).expect_err("shapes differ");
    assert!(err.to_string().contains("dense0.weight"), "{err}");
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let data = clusters(60, 11);
    let val = clusters(60, 12);
    let mut net = Net::new(&mut StdRng::seed_from_u64(2));
    let mut best = (f64::INFINITY, Vec::new());
    let history = Trainer::new(CrossEntropy, Adam::new(0.05))
        .epochs(40)
        .batch_size(8)
        .progress(Progress::Off)
        .early_stopping(EarlyStopping::new(2))
        .fit(&mut net, &data, Some(&val))
        .expect("training");
    for e in &history.epochs {
        if let Some(l) = e.val_loss {
            if l < best.0 {
                best = (l, vec![e.epoch]);
            }
        }
    }
    assert_eq!(history.stop, StopReason::EarlyStopping, "{history}");
    let kept = history.restored_epoch.unwrap_or(history.epochs.len());
    assert_eq!(vec![kept], best.1);
    let (loss, _) = nn::runtime::train::evaluate(&net, &CrossEntropy, &val).expect("evaluate");
    assert!(
        (loss - best.0).abs() < 1e-6,
        "restored weights give {loss}, best epoch had {}",
        best.0
    );
}

#[test]
fn a_diverging_run_stops_with_the_last_finite_weights() {
    let x: Vec<f32> = (0..40).map(|i| i as f32 * 1e18).collect();
    let y: Vec<f32> = (0..20).map(|i| i as f32 * 1e19).collect();
    let data = Dataset::<f32, 2>::from_slices(&x, Labels::Values { values: y, rows: 1 })
        .expect("finite data");
    let mut net = Reg::new(&mut StdRng::seed_from_u64(3));
    let err = Trainer::new(Mse, Sgd::new(10.0))
        .epochs(5)
        .batch_size(4)
        .progress(Progress::Off)
        .fit(&mut net, &data, None)
        .expect_err("diverges");
    match err {
        TrainError::NonFinite { epoch, batch, .. } => {
            assert!(epoch >= 1);
            assert!(
                err.to_string()
                    .contains(&format!("epoch {epoch}, batch {batch}")),
                "{err}"
            );
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
    assert!(
        net.to_flat().iter().all(|w| w.is_finite()),
        "weights stay finite"
    );
}

#[test]
fn bad_data_is_refused_naming_the_sample() {
    let err = Dataset::<f32, 2>::from_slices(
        &[0.0, 1.0, f32::NAN, 2.0],
        Labels::Classes {
            labels: vec![0, 1],
            classes: 2,
        },
    )
    .expect_err("NaN input");
    assert!(err.to_string().contains("sample 1"), "{err}");
    let err = Dataset::<f32, 2>::from_slices(
        &[0.0, 1.0, 3.0, 2.0],
        Labels::Classes {
            labels: vec![0, 5],
            classes: 2,
        },
    )
    .expect_err("label out of range");
    assert!(err.to_string().contains("sample 1"), "{err}");
    // Labels beyond the network's outputs are refused by the trainer.
    let data = Dataset::<f32, 6>::from_slices(
        &[0.5; 12],
        Labels::Classes {
            labels: vec![0, 4],
            classes: 5,
        },
    )
    .expect("valid");
    let mut net = Net::new(&mut StdRng::seed_from_u64(0));
    let err = trainer(1)
        .fit(&mut net, &data, None)
        .expect_err("class 4 of a 3-output net");
    assert!(err.to_string().contains("sample 1 has class 4"), "{err}");
}

#[test]
fn invalid_settings_are_errors() {
    let data = clusters(30, 1);
    let mut net = Net::new(&mut StdRng::seed_from_u64(0));
    assert!(trainer(1).batch_size(0).fit(&mut net, &data, None).is_err());
    assert!(Trainer::new(CrossEntropy, Adam::new(-1.0))
        .progress(Progress::Off)
        .fit(&mut net, &data, None)
        .is_err());
    assert!(trainer(1)
        .validation_fraction(1.5)
        .fit(&mut net, &data, None)
        .is_err());
    assert!(trainer(1).l2(-0.1).fit(&mut net, &data, None).is_err());
}

#[test]
fn the_epoch_loss_is_the_mean_over_samples_with_a_partial_last_batch() {
    // 10 samples in batches of 4, 4 and 2, and a learning rate of 0 so the weights stay put:
    // the epoch's loss must be the per-sample mean, which `evaluate` computes independently.
    let data = clusters(10, 21);
    let mut net = Plain::new(&mut StdRng::seed_from_u64(3));
    let history = Trainer::new(CrossEntropy, Sgd::new(0.0))
        .epochs(1)
        .batch_size(4)
        .shuffle(false)
        .progress(Progress::Off)
        .fit(&mut net, &data, None)
        .expect("training");
    let (mean, _) = evaluate(&net, &CrossEntropy, &data).expect("evaluate");
    let train = history.epochs[0].train_loss;
    assert!(
        (train - mean).abs() < 1e-6 * mean,
        "epoch loss {train}, per-sample mean {mean}"
    );
    // Averaging the three batch means instead would give another number.
    let batch_mean = |idx: &[usize]| {
        let part = data.subset(idx).expect("subset");
        evaluate(&net, &CrossEntropy, &part).expect("evaluate").0
    };
    let unweighted =
        (batch_mean(&[0, 1, 2, 3]) + batch_mean(&[4, 5, 6, 7]) + batch_mean(&[8, 9])) / 3.0;
    assert!(
        (unweighted - mean).abs() > 1e-4,
        "the test data must tell them apart"
    );
}

network! { Plain < dense(6 -> 8, tanh), dense(8 -> 3, softmax) > }

/// Trains with early stopping on the validation loss, as `trainer`, for `epochs`.
fn early(epochs: usize, patience: usize) -> Trainer<'static, CrossEntropy, Adam<f32>> {
    Trainer::new(CrossEntropy, Adam::new(0.05))
        .epochs(epochs)
        .batch_size(8)
        .seed(3)
        .progress(Progress::Off)
        .early_stopping(EarlyStopping::new(patience))
}

#[test]
fn a_callback_stopping_mid_epoch_restores_the_best_weights() {
    let data = clusters(64, 13);
    // The training loss falls every epoch here, so the best epoch is the last complete one,
    // and the stop comes after some steps of the next: those steps must be undone.
    let stop_at = (3, 2);
    let mut net = Net::new(&mut StdRng::seed_from_u64(8));
    let history = Trainer::new(CrossEntropy, Adam::new(0.01))
        .epochs(10)
        .batch_size(8)
        .seed(5)
        .progress(Progress::Off)
        .early_stopping(EarlyStopping::new(5).monitor(Monitor::TrainLoss))
        .on_batch(|b| {
            if (b.epoch, b.batch) == stop_at {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .fit(&mut net, &data, None)
        .expect("training");
    assert_eq!(history.stop, StopReason::Callback);
    assert_eq!(history.epochs.len(), 2);
    assert!(history.epochs[1].train_loss < history.epochs[0].train_loss);
    assert_eq!(history.restored_epoch, Some(2), "{history}");
    // Two uninterrupted epochs with the same seed give the weights to expect.
    let mut two = Net::new(&mut StdRng::seed_from_u64(8));
    Trainer::new(CrossEntropy, Adam::new(0.01))
        .epochs(2)
        .batch_size(8)
        .seed(5)
        .progress(Progress::Off)
        .fit(&mut two, &data, None)
        .expect("training");
    assert_eq!(net.to_flat(), two.to_flat());
}

#[test]
fn resuming_with_early_stopping_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ck.safetensors");
    let data = clusters(60, 11);
    let val = clusters(60, 12);
    let mut straight = Net::new(&mut StdRng::seed_from_u64(2));
    let full = early(40, 3)
        .fit(&mut straight, &data, Some(&val))
        .expect("training");
    assert_eq!(full.stop, StopReason::EarlyStopping, "{full}");
    let best = full.restored_epoch.expect("a restored epoch");
    // Interrupt after the best epoch, with the patience partly used.
    let cut = best + 1;
    assert!(cut < full.epochs.len(), "{full}");

    let mut first = Net::new(&mut StdRng::seed_from_u64(2));
    early(cut, 3)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut first, &data, Some(&val))
        .expect("first part");
    let mut resumed = Net::new(&mut StdRng::seed_from_u64(77));
    let rest = early(40, 3)
        .resume_from(&path)
        .fit(&mut resumed, &data, Some(&val))
        .expect("second part");
    assert_eq!(rest.stop, StopReason::EarlyStopping, "{rest}");
    assert_eq!(rest.restored_epoch, Some(best), "{rest}");
    // The same epochs with the same losses, metrics and learning rates (times differ).
    let numbers = |h: &[EpochRecord]| {
        h.iter()
            .map(|e| {
                (
                    e.epoch,
                    e.train_loss,
                    e.train_metrics,
                    e.val_loss,
                    e.val_metrics,
                    e.learning_rate,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(&rest.epochs),
        numbers(&full.epochs[cut..]),
        "{rest}\n{full}"
    );
    assert_eq!(resumed.to_flat(), straight.to_flat());

    // A checkpoint in the form written before `persist::BestEpoch` (the best weights as
    // optimizer buffers `<tensor>.es_best`, the rest under `best` in `nn.extra`) resumes the
    // same way.
    let mut holder = Net::new(&mut StdRng::seed_from_u64(0));
    let (meta, mut ck) = persist::load_checkpoint_into(&mut holder, &path).expect("a checkpoint");
    let b = ck.best.take().expect("the best epoch");
    ck.extra["best"] = serde_json::json!({
        "score_bits": b.score.to_bits(), "epoch": b.epoch, "since": b.since,
    });
    let weights = b.weights.expect("the best weights");
    let mut at = 0;
    for t in <Net as Parameters<f32>>::TENSORS {
        let v = weights[at..at + t.len()].to_vec();
        at += t.len();
        ck.optimizer
            .buffers
            .push((format!("{}.es_best", t.name), v));
    }
    let legacy = dir.path().join("legacy.safetensors");
    persist::save_checkpoint(&holder, &meta, &ck, &legacy).expect("saved");
    let mut from_legacy = Net::new(&mut StdRng::seed_from_u64(78));
    let rest = early(40, 3)
        .resume_from(&legacy)
        .fit(&mut from_legacy, &data, Some(&val))
        .expect("resumed from the older form");
    assert_eq!(rest.restored_epoch, Some(best), "{rest}");
    assert_eq!(from_legacy.to_flat(), straight.to_flat());

    // The checkpoint of the epoch where early stopping ended the run resumes to no more epochs.
    let mut whole = Net::new(&mut StdRng::seed_from_u64(2));
    early(40, 3)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut whole, &data, Some(&val))
        .expect("whole run");
    let mut again = Net::new(&mut StdRng::seed_from_u64(5));
    let none = early(40, 3)
        .resume_from(&path)
        .fit(&mut again, &data, Some(&val))
        .expect("resumed at the end");
    assert!(none.epochs.is_empty(), "{none}");
    assert_eq!(none.stop, StopReason::EarlyStopping);
    assert_eq!(none.restored_epoch, Some(best));
    assert_eq!(again.to_flat(), straight.to_flat());
}

#[test]
fn regression_metrics_average_r2_over_outputs() {
    // Two outputs on very different scales: R² is the mean of the per-output R² (as
    // scikit-learn's `r2_score`), not one R² of all values pooled.
    let mut rng = StdRng::seed_from_u64(4);
    let n = 200;
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (a, b): (f64, f64) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        x.extend([a, b]);
        y.extend([
            5.0 + 2.0 * a + 0.1 * rng.random_range(-1.0..1.0),
            0.3 * (a * b),
        ]);
    }
    let data = Dataset::<f64, 2>::from_slices(
        &x,
        Labels::Values {
            values: y.clone(),
            rows: 2,
        },
    )
    .expect("finite data");
    let mut net = Reg2::new(&mut StdRng::seed_from_u64(1));
    let history = Trainer::new(Mse, Adam::new(0.05))
        .epochs(30)
        .batch_size(16)
        .progress(Progress::Off)
        .fit(&mut net, &data, Some(&data))
        .expect("training");
    let out = net.forward(data.inputs());
    let r2 = nn::runtime::metrics::r2(out.as_slice(), &y, 2).expect("r2");
    let mae = nn::runtime::metrics::mae(out.as_slice(), &y).expect("mae");
    match history.last().and_then(|e| e.val_metrics) {
        Some(Metrics::Regression { mae: m, r2: r, .. }) => {
            assert!((r - r2).abs() < 1e-9, "trainer r2 {r}, metrics::r2 {r2}");
            assert!(
                (m - mae).abs() < 1e-9,
                "trainer mae {m}, metrics::mae {mae}"
            );
        }
        other => panic!("expected regression metrics, got {other:?}"),
    }
}

#[test]
fn a_validation_fraction_holds_out_a_seeded_split() {
    let data = clusters(120, 31);
    let mut net = Net::new(&mut StdRng::seed_from_u64(6));
    let history = trainer(2)
        .validation_fraction(0.25)
        .fit(&mut net, &data, None)
        .expect("training");
    // The held-out quarter is `split(0.25, seed)`'s second part; the first is trained on.
    let (train, val) = data.split(0.25, Some(9)).expect("split");
    assert_eq!((train.len(), val.len()), (90, 30));
    let (loss, metrics) = evaluate(&net, &CrossEntropy, &val).expect("evaluate");
    let last = history.last().expect("an epoch");
    assert_eq!(last.val_loss, Some(loss));
    assert_eq!(last.val_metrics, Some(metrics));
    // The same run given that split explicitly gives the same weights.
    let mut explicit = Net::new(&mut StdRng::seed_from_u64(6));
    trainer(2)
        .fit(&mut explicit, &train, Some(&val))
        .expect("training");
    assert_eq!(explicit.to_flat(), net.to_flat());
}

#[test]
fn an_epoch_callback_stops_and_the_history_has_the_schedule_and_times() {
    let data = clusters(90, 32);
    let mut seen = Vec::new();
    let mut net = Net::new(&mut StdRng::seed_from_u64(6));
    let history = trainer(10)
        .schedule(nn::runtime::schedule::StepLr::new(1, 0.5))
        .on_epoch(|e| {
            seen.push(e.epoch);
            if e.epoch == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .fit(&mut net, &data, None)
        .expect("training");
    assert_eq!(history.stop, StopReason::Callback);
    assert_eq!(seen, [1, 2, 3]);
    let rates: Vec<f64> = history.epochs.iter().map(|e| e.learning_rate).collect();
    assert_eq!(rates, [0.01, 0.005, 0.0025]);
    for e in &history.epochs {
        assert!(e.seconds > 0.0 && e.samples_per_second > 0.0, "{e}");
        assert!(
            (e.samples_per_second * e.seconds - 90.0).abs() < 1e-6,
            "{e}"
        );
    }
}

#[test]
fn the_best_epoch_checkpoint_holds_the_restored_weights() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("best.safetensors");
    let data = clusters(60, 11);
    let val = clusters(60, 12);
    let mut net = Net::new(&mut StdRng::seed_from_u64(2));
    let history = early(40, 3)
        .checkpoint(&path, CheckpointEvery::Best)
        .fit(&mut net, &data, Some(&val))
        .expect("training");
    let best = history.restored_epoch.expect("restored");
    let mut loaded = Net::new(&mut StdRng::seed_from_u64(0));
    let (_, ck) = persist::load_checkpoint_into(&mut loaded, &path).expect("checkpoint");
    assert_eq!(ck.epoch, best as u64);
    assert_eq!(loaded.to_flat(), net.to_flat());
}

// Nothing lost when training goes wrong: a step that makes the weights or the optimizer's
// state non-finite is undone exactly, no checkpoint holds unchecked state, and settings that
// cannot work are refused before anything trains.

/// 300 samples: `clusters` (or all-zero inputs, with `zeros`) where samples 100, 101 and
/// 102 are one outlier, every input `scale`, labelled 0, 1 and 2. At least two of the three
/// are misclassified, so their batches have huge but finite gradients while the losses stay
/// finite.
fn with_outliers(scale: f32, zeros: bool) -> Dataset<f32, 6> {
    let base = clusters(300, 1);
    let mut x = base.inputs().as_slice().to_vec();
    if zeros {
        x.fill(0.0);
    }
    let mut labels = match base.labels() {
        Labels::Classes { labels, .. } => labels.clone(),
        Labels::Values { .. } => unreachable!("clusters have classes"),
    };
    for (i, label) in (100..103).zip(0..3) {
        x[6 * i..6 * i + 6].fill(scale);
        labels[i] = label;
    }
    Dataset::from_slices(&x, Labels::Classes { labels, classes: 3 }).expect("finite data")
}

/// The weights after training with `make()` stopped by a callback after batch `batch` of
/// epoch `epoch` (a reference for the state a refused step must leave).
fn weights_after<O: nn::runtime::optim::Optimizer<f32>>(
    make: impl Fn() -> Trainer<'static, CrossEntropy, O>,
    data: &Dataset<f32, 6>,
    epoch: usize,
    batch: usize,
) -> Vec<f32> {
    let mut net = Net::new(&mut StdRng::seed_from_u64(4));
    make()
        .on_batch(move |b| {
            if (b.epoch, b.batch) == (epoch, batch) {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .fit(&mut net, data, None)
        .expect("training up to the step before");
    net.to_flat()
}

fn expect_non_finite(err: TrainError, what: &str) -> (usize, usize) {
    match err {
        TrainError::NonFinite {
            epoch,
            batch,
            what: w,
        } => {
            assert_eq!(
                w,
                what,
                "{}",
                TrainError::NonFinite {
                    epoch,
                    batch,
                    what: w
                }
            );
            (epoch, batch)
        }
        other => panic!("expected the {what} to be reported non-finite, got: {other}"),
    }
}

#[test]
fn a_step_that_overflows_the_weights_is_undone_exactly_and_never_checkpointed() {
    use nn::runtime::schedule::Lambda;
    // With all other inputs zero, only the output bias learns until an outlier's batch,
    // whose gradient (about 1e36 / 16) times the learning rate of 1e5 overflows f32 in the
    // second epoch when the first, at rate 0, changes nothing. Plain SGD takes the fused path
    // (the step inside the weight-gradient product), SGD with momentum the checked one.
    let data = with_outliers(1e36, true);
    let dir = tempfile::tempdir().expect("temporary directory");
    fn run<O: nn::runtime::optim::Optimizer<f32>>(
        optimizer: impl Fn() -> O,
        first_rate: f64,
        data: &Dataset<f32, 6>,
        dir: &std::path::Path,
    ) {
        let make = || {
            Trainer::new(CrossEntropy, optimizer())
                .epochs(3)
                .batch_size(16)
                .seed(9)
                .schedule(Lambda(move |e| if e == 0 { first_rate } else { 1e5 }))
                .progress(Progress::Off)
        };
        let ck = dir.join(format!("ck-{first_rate}.safetensors"));
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        let err = make()
            .checkpoint(&ck, CheckpointEvery::Epoch)
            .fit(&mut net, data, None)
            .expect_err("overflows");
        let (epoch, batch) = expect_non_finite(err, "weights after the optimizer's step");
        assert_eq!(epoch, if first_rate == 0.0 { 2 } else { 1 });
        assert!(
            batch > 0,
            "the outlier's batch is not the first (seed 9): {batch}"
        );
        let want = weights_after(make, data, epoch, batch - 1);
        assert!(want.iter().all(|w| w.is_finite()));
        assert_eq!(net.to_flat(), want, "the weights after batch {}", batch - 1);
        // A callback that stops training right after the bad step does not hide it.
        let mut stopped = Net::new(&mut StdRng::seed_from_u64(4));
        let err = make()
            .on_batch(move |b| {
                if (b.epoch, b.batch) == (epoch, batch) {
                    Control::Stop
                } else {
                    Control::Continue
                }
            })
            .fit(&mut stopped, data, None)
            .expect_err("overflows before the stop");
        let at = expect_non_finite(err, "weights after the optimizer's step");
        assert_eq!(at, (epoch, batch));
        assert_eq!(stopped.to_flat(), want);
        if epoch == 1 {
            assert!(!ck.exists(), "no checkpoint of the epoch that diverged");
            return;
        }
        // The checkpoint is epoch 1's, finite.
        let mut loaded = Net::new(&mut StdRng::seed_from_u64(0));
        let (_, state) = persist::load_checkpoint_into(&mut loaded, &ck).expect("a checkpoint");
        assert_eq!(state.epoch, 1);
        assert!(loaded.to_flat().iter().all(|w| w.is_finite()));
    }
    run(|| Sgd::new(1.0), 0.0, &data, dir.path());
    run(|| Sgd::new(1.0), 1e5, &data, dir.path());
    // (With momentum, the buffer would carry epoch 1's outlier gradients into epoch 2.)
    run(|| Sgd::new(1.0).momentum(0.5), 1e5, &data, dir.path());

    // A learning rate that is infinite in f32 (1e39): the first step is undone, and the
    // optimizer is back at its start; with Adam, and with SGD with momentum (the checked path
    // with a momentum buffer).
    fn undone_at_the_first_step<O: nn::runtime::optim::Optimizer<f32>>(optimizer: O) {
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        let before = net.to_flat();
        let mut trainer = Trainer::new(CrossEntropy, optimizer)
            .epochs(2)
            .progress(Progress::Off);
        let err = trainer
            .fit(&mut net, &clusters(64, 2), None)
            .expect_err("overflows");
        assert_eq!(
            expect_non_finite(err, "weights after the optimizer's step"),
            (1, 0)
        );
        assert_eq!(net.to_flat(), before);
        let state = trainer.optimizer().state();
        assert_eq!((state.step, state.buffers.len()), (0, 0));
    }
    undone_at_the_first_step(Adam::new(1e39));
    undone_at_the_first_step(Sgd::new(1e39).momentum(0.5));
}

#[test]
fn an_optimizer_state_that_overflows_is_found_and_undone() {
    // A misclassified outlier's gradient (about 1e25 / 16) squared overflows Adam's second
    // moment in f32, while the update m / (√v + ε) is 0 and the weights stay finite: seen at
    // the epoch's end, located by replaying the epoch, undone.
    let data = with_outliers(1e25, false);
    let make = || {
        Trainer::new(CrossEntropy, Adam::new(1e-2))
            .epochs(2)
            .batch_size(16)
            .seed(9)
            .progress(Progress::Off)
    };
    let mut net = Net::new(&mut StdRng::seed_from_u64(4));
    let mut trainer = make();
    let err = trainer.fit(&mut net, &data, None).expect_err("overflows");
    let (epoch, batch) = expect_non_finite(err, "optimizer's state after its step");
    assert_eq!(epoch, 1);
    assert!(batch > 0, "the outlier's batch is not the first (seed 9)");
    assert_eq!(net.to_flat(), weights_after(make, &data, epoch, batch - 1));
    let state = nn::runtime::optim::Optimizer::<f32>::state(trainer.optimizer());
    assert_eq!(
        state.step, batch as u64,
        "the optimizer's step count is put back too"
    );
    assert!(state
        .buffers
        .iter()
        .all(|(_, b)| b.iter().all(|v| v.is_finite())));
}

#[test]
fn empty_validation_sets_are_refused() {
    let tiny = clusters(4, 1);
    let mut net = Net::new(&mut StdRng::seed_from_u64(4));
    let before = net.to_flat();
    let err = trainer(2)
        .validation_fraction(0.1)
        .fit(&mut net, &tiny, None)
        .expect_err("no sample held out");
    let msg = err.to_string();
    assert!(
        msg.contains("validation_fraction(0.1) of 4 training samples holds out no sample"),
        "{msg}"
    );
    let empty = clusters(30, 1).subset(&[]).expect("an empty subset");
    let err = trainer(2)
        .fit(&mut net, &tiny, Some(&empty))
        .expect_err("empty validation set");
    assert!(
        err.to_string().contains("the validation set is empty"),
        "{err}"
    );
    assert_eq!(net.to_flat(), before);
    let err = evaluate(&net, &CrossEntropy, &empty).expect_err("nothing to evaluate");
    assert!(
        err.to_string().contains("the evaluation set is empty"),
        "{err}"
    );
}

#[test]
fn schedule_rates_the_optimizer_refuses_are_errors_before_training() {
    use nn::runtime::schedule::Lambda;
    let data = clusters(64, 1);
    for (factor, shown) in [(-1.0, "-0.01"), (f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        let mut steps = 0;
        let mut t = trainer(6)
            .schedule(Lambda(move |e| if e == 3 { factor } else { 1.0 }))
            .on_batch(|_| {
                steps += 1;
                Control::Continue
            });
        let err = t.fit(&mut net, &data, None).expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("gives epoch 4 the rate {shown}"))
                && msg.contains("Adam: invalid lr"),
            "{msg}"
        );
        assert_eq!(
            nn::runtime::optim::Optimizer::<f32>::learning_rate(t.optimizer()),
            0.01
        );
        drop(t);
        assert_eq!(steps, 0, "refused before training");
    }
}

#[test]
fn an_unwritable_checkpoint_path_is_an_error_before_training() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = clusters(64, 1);
    for (path, needle) in [
        (
            dir.path().join("missing/ck.safetensors"),
            "cannot be written",
        ),
        (dir.path().to_path_buf(), "is a directory"),
    ] {
        let mut steps = 0;
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        let err = trainer(2)
            .checkpoint(&path, CheckpointEvery::Epoch)
            .on_batch(|_| {
                steps += 1;
                Control::Continue
            })
            .fit(&mut net, &data, None)
            .expect_err("unwritable");
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(steps, 0);
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("listing").count(),
        0,
        "no probe left"
    );
}

#[test]
fn resuming_with_other_settings_is_refused_naming_both_values() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ck = dir.path().join("ck.safetensors");
    let data = clusters(64, 1);
    let sgd = || {
        Trainer::new(CrossEntropy, Sgd::new(0.1))
            .epochs(1)
            .batch_size(16)
            .seed(9)
            .progress(Progress::Off)
    };
    let mut net = Net::new(&mut StdRng::seed_from_u64(4));
    sgd()
        .checkpoint(&ck, CheckpointEvery::Epoch)
        .fit(&mut net, &data, None)
        .expect("training");
    let before = net.to_flat();
    let refuse = |err: TrainError, needles: &[&str]| {
        let msg = err.to_string();
        for n in needles {
            assert!(msg.contains(n), "`{msg}` lacks `{n}`");
        }
    };
    let mut other = Net::new(&mut StdRng::seed_from_u64(1));
    let untouched = other.to_flat();
    let err = sgd()
        .batch_size(8)
        .epochs(2)
        .resume_from(&ck)
        .fit(&mut other, &data, None);
    refuse(
        err.expect_err("batch size"),
        &["batch_size = 16", "batch_size = 8"],
    );
    let err = sgd()
        .seed(10)
        .epochs(2)
        .resume_from(&ck)
        .fit(&mut other, &data, None);
    refuse(err.expect_err("seed"), &["seed = 9", "seed = 10"]);
    let err = Trainer::new(CrossEntropy, Sgd::new(0.1).momentum(0.5))
        .epochs(2)
        .batch_size(16)
        .seed(9)
        .progress(Progress::Off)
        .resume_from(&ck)
        .fit(&mut other, &data, None);
    refuse(
        err.expect_err("momentum"),
        &["momentum=0,", "momentum=0.5,"],
    );
    let err = sgd()
        .epochs(2)
        .resume_from(&ck)
        .fit(&mut other, &clusters(60, 1), None);
    refuse(
        err.expect_err("other data"),
        &["training_samples = 64", "training_samples = 60"],
    );
    assert_eq!(
        other.to_flat(),
        untouched,
        "a refused resume changes nothing"
    );
    // The same settings with more epochs go on.
    sgd()
        .epochs(2)
        .resume_from(&ck)
        .fit(&mut other, &data, None)
        .expect("resumes");
    assert_ne!(other.to_flat(), before);
}

// ---------------------------------------------------------------------------------------------
// Tabular data as users meet it: binary class labels on one sigmoid output, class labels with
// a vector loss refused up front, predictions from slices and samples, metric accessors, and
// `summary()` through the trait.
// ---------------------------------------------------------------------------------------------

mod tabular {
    use super::*;
    use nn::runtime::data::csv::{self, CsvOptions};
    use nn::runtime::loss::{BinaryCrossEntropy, Huber};
    use nn::runtime::metrics;
    use nn::runtime::network::InputLengthError;
    use nn::runtime::summary::Summary;

    network! { Bin < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) > }

    /// A CSV of two features and a 0/1 class, `x0 + 0.5 x1 > 0.2`, with a header.
    fn binary_csv(n: usize) -> tempfile::NamedTempFile {
        let mut rng = StdRng::seed_from_u64(3);
        let mut text = String::from("x0,x1,label\n");
        for _ in 0..n {
            let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
            text += &format!("{a},{b},{}\n", u8::from(a + 0.5 * b > 0.2));
        }
        let f = tempfile::NamedTempFile::new().expect("temporary file");
        std::fs::write(f.path(), text).expect("written");
        f
    }

    fn bce_trainer() -> Trainer<'static, BinaryCrossEntropy, Adam<f32>> {
        Trainer::new(BinaryCrossEntropy, Adam::new(0.05))
            .epochs(40)
            .batch_size(16)
            .seed(5)
            .progress(Progress::Off)
    }

    #[test]
    fn binary_class_labels_train_a_one_sigmoid_output_as_the_values_0_and_1() {
        let f = binary_csv(200);
        let classes = csv::load::<f32, 2>(f.path(), &CsvOptions::classes(2)).expect("classes");
        let values = csv::load::<f32, 2>(f.path(), &CsvOptions::values(1)).expect("values");
        let labels = classes.labels_as_classes().expect("class labels").to_vec();

        let mut by_class = Bin::new(&mut StdRng::seed_from_u64(1));
        let mut by_value = by_class.clone_params();
        let h_class = bce_trainer()
            .fit(&mut by_class, &classes, Some(&classes))
            .expect("class labels on one sigmoid output train");
        let h_value = bce_trainer()
            .fit(&mut by_value, &values, Some(&values))
            .expect("0/1 values train");
        // Class c is the target value c: the same steps, bit for bit, and the same metrics.
        assert_eq!(by_class.to_flat(), by_value.to_flat());
        let curve = |h: &nn::runtime::train::History| -> Vec<_> {
            h.epochs
                .iter()
                .map(|e| (e.train_loss, e.train_metrics, e.val_loss, e.val_metrics))
                .collect()
        };
        assert_eq!(curve(&h_class), curve(&h_value));

        // `evaluate` against values computed here from the predictions.
        let (loss, m) = evaluate(&by_class, &BinaryCrossEntropy, &classes).expect("evaluate");
        let p: Vec<f64> = (0..classes.len())
            .map(|i| f64::from(by_class.predict(&classes.sample(i).expect("in range"))[0]))
            .collect();
        let hits = p
            .iter()
            .zip(&labels)
            .filter(|(&p, &y)| usize::from(p > 0.5) == y)
            .count();
        let acc = hits as f64 / labels.len() as f64;
        assert_eq!(m, Metrics::Classification { accuracy: acc });
        assert!(acc > 0.95, "a linearly separable set: accuracy {acc}");
        let bce = p
            .iter()
            .zip(&labels)
            .map(|(&p, &y)| if y == 1 { -p.ln() } else { -(1.0 - p).ln() })
            .sum::<f64>()
            / p.len() as f64;
        assert!((loss - bce).abs() < 1e-5, "loss {loss}, by hand {bce}");
        assert_eq!(
            h_class.last().and_then(|e| e.val_metrics),
            Some(Metrics::Classification { accuracy: acc })
        );
        // The class predictions agree with the threshold and with `metrics`.
        let predicted = by_class.predict_classes(classes.inputs());
        let by_hand: Vec<usize> = p.iter().map(|&p| usize::from(p > 0.5)).collect();
        assert_eq!(predicted, by_hand);
        assert_eq!(
            by_class.predict_class(&classes.sample(0).expect("in range")),
            by_hand[0]
        );
        let out = by_class.forward(classes.inputs());
        assert_eq!(metrics::accuracy(out.as_slice(), 1, &labels), Ok(acc));
    }

    /// A copy of a network through its flat parameters.
    trait CloneParams: Sized {
        fn clone_params(&self) -> Self;
    }

    impl CloneParams for Bin {
        fn clone_params(&self) -> Self {
            let mut copy = Bin::new(&mut StdRng::seed_from_u64(99));
            assert!(copy.copy_from_flat(&self.to_flat()));
            copy
        }
    }

    #[test]
    fn a_one_output_network_refuses_more_than_two_classes_saying_what_fits() {
        let data = Dataset::<f32, 2>::from_slices(
            &[0.0; 6],
            Labels::Classes {
                labels: vec![0, 1, 2],
                classes: 3,
            },
        )
        .expect("valid");
        let mut net = Bin::new(&mut StdRng::seed_from_u64(0));
        let err = bce_trainer().fit(&mut net, &data, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid training setup: training set: the data set has 3 classes, but the network \
             has one output, which classifies two (labels 0 and 1); give the output layer 3 \
             outputs (softmax) to tell 3 classes apart"
        );
        let err = evaluate(&net, &BinaryCrossEntropy, &data).unwrap_err();
        assert!(err
            .to_string()
            .contains("evaluation set: the data set has 3 classes"));
    }

    #[test]
    fn class_labels_with_a_vector_loss_are_refused_before_the_first_step() {
        let data = clusters(48, 2);
        let mut net = Net::new(&mut StdRng::seed_from_u64(4));
        let before = net.to_flat();
        let mut batches = 0;
        let err = Trainer::new(Mse, Adam::new(0.01))
            .epochs(2)
            .progress(Progress::Off)
            .on_batch(|_| {
                batches += 1;
                Control::Continue
            })
            .fit(&mut net, &data, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid training setup: training set: the loss `mse` needs target vectors, but \
             the data set has class labels (3 classes); one-hot encode them with \
             `dataset.one_hot()?` (`Dataset::one_hot`, or \
             `nn_runtime::data::one_hot(&labels, 3)` on the labels alone), or train with a \
             loss that takes class labels, such as `CrossEntropy`"
        );
        assert_eq!(batches, 0, "no step ran");
        assert_eq!(net.to_flat(), before, "no weight changed");
        let err = Trainer::new(Huber::default(), Adam::new(0.01))
            .progress(Progress::Off)
            .fit(&mut net, &data, None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the loss `huber` needs target vectors"),
            "{err}"
        );
        let err = evaluate(&net, &Mse, &data).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "invalid training setup: evaluation set: the loss `mse` needs target vectors"
            ),
            "{err}"
        );
        // The advice works: one-hot targets train with MSE, and cross-entropy takes classes.
        let encoded = data.one_hot().expect("class labels");
        Trainer::new(Mse, Adam::new(0.01))
            .epochs(1)
            .progress(Progress::Off)
            .fit(&mut net, &encoded, None)
            .expect("one-hot targets");
        assert!(evaluate(&net, &CrossEntropy, &data).is_ok());
    }

    #[test]
    fn predictions_from_slices_samples_and_batches_agree() {
        let data = clusters(20, 6);
        let net = Net::new(&mut StdRng::seed_from_u64(8));
        let out = net.forward(data.inputs());
        let mut classes = Vec::new();
        for i in 0..data.len() {
            let slice = data.input(i).expect("in range");
            let x = data.sample(i).expect("in range");
            assert_eq!(x.as_slice(), slice);
            let y = net.predict(&x);
            assert_eq!(net.predict_slice(slice), Ok(y));
            // The arg-max, found here by comparing the three probabilities.
            let best = (0..3)
                .max_by(|&a, &b| y[a].partial_cmp(&y[b]).expect("finite"))
                .expect("three outputs");
            assert_eq!(net.predict_class(&x), best);
            assert!((out.column(i) - y).abs().max() < 1e-5);
            classes.push(best);
        }
        assert_eq!(net.predict_classes(data.inputs()), classes);
        assert_eq!(
            net.predict_slice(&[0.0; 5]),
            Err(InputLengthError {
                expected: 6,
                actual: 5
            })
        );
        let err = data.sample(20).unwrap_err().to_string();
        assert_eq!(
            err,
            "sample index 20 is out of range for a data set of 20 samples"
        );
    }

    #[test]
    fn regression_metrics_have_accessors_and_mse_is_the_mse_loss() {
        let mut rng = StdRng::seed_from_u64(11);
        let x: Vec<f64> = (0..80).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<f64> = x
            .chunks(2)
            .flat_map(|p| [p[0] - p[1], p[0] * p[1] + 0.3])
            .collect();
        let data = Dataset::<f64, 2>::from_slices(
            &x,
            Labels::Values {
                values: y.clone(),
                rows: 2,
            },
        )
        .expect("valid");
        let net = Reg2::new(&mut StdRng::seed_from_u64(2));
        let (loss, m) = evaluate(&net, &Mse, &data).expect("evaluate");
        let out = net.forward(data.inputs());
        let mse = metrics::mse(out.as_slice(), &y).expect("mse");
        // Mse's loss is the mean over every value, as metrics::mse.
        assert!((loss - mse).abs() < 1e-12 * mse, "{loss} vs {mse}");
        assert!((m.mse().expect("regression") - mse).abs() < 1e-12 * mse);
        let mae = metrics::mae(out.as_slice(), &y).expect("mae");
        let r2 = metrics::r2(out.as_slice(), &y, 2).expect("r2");
        assert!((m.mae().expect("regression") - mae).abs() < 1e-12);
        assert!((m.r2().expect("regression") - r2).abs() < 1e-9);
        assert_eq!(m.accuracy(), None);
        assert_eq!(Metrics::Classification { accuracy: 1.0 }.r2(), None);
    }

    fn summary_of<N: Network<IN, OUT>, const IN: usize, const OUT: usize>(net: &N) -> Summary {
        net.summary()
    }

    #[test]
    fn summary_through_the_trait_equals_the_generated_one() {
        let net = Net::new(&mut StdRng::seed_from_u64(0));
        let generic = summary_of(&net);
        assert_eq!(generic, net.summary());
        assert_eq!(generic.to_string(), net.summary().to_string());
        assert_eq!(
            (generic.name, generic.scalar, generic.inputs, generic.params),
            ("Net", "f32", 6, 6 * 16 + 16 + 16 * 3 + 3)
        );
        let reg = Reg2::new(&mut StdRng::seed_from_u64(0));
        assert_eq!(summary_of(&reg), reg.summary());
        assert_eq!(summary_of(&reg).scalar, "f64");
    }
}
