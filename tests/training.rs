//! The trainer end to end: determinism, checkpoints and exact resumption, persistence,
//! and refusing bad data or a diverging run with errors that say where.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::{CrossEntropy, Mse};
use nn::runtime::optim::{Adam, Sgd};
use nn::runtime::persist;
use nn::runtime::train::{
    CheckpointEvery, EarlyStopping, Progress, StopReason, TrainError, Trainer,
};

network! { Net < dense(6 -> 16, relu), dropout(0.25), dense(16 -> 3, softmax) > }
network! { #[derive(Debug)] Reg < dense(2 -> 8, tanh), dense(8 -> 1) > }

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
