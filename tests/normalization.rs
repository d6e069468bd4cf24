//! `batch_norm` and `layer_norm` through the DSL: the running statistics a training-mode
//! forward moves (PyTorch's rule, computed here by hand), inference with them, their place
//! in the tensor list, the save/load round trip, and training end to end with the trainer.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::persist;
use nn::runtime::train::{evaluate, Progress, Trainer};

network! {
    Normed: f64 < dense(3 -> 4, bias = false), batch_norm(momentum = 0.25), tanh,
        dense(4 -> 2), layer_norm >
}

network! {
    Classifier < dense(6 -> 16, bias = false), batch_norm, relu, dense(16 -> 8),
        layer_norm, relu, dense(8 -> 3, softmax) >
}

fn batch<const IN: usize>(n: usize, seed: u64) -> Batch<f64, IN> {
    let mut rng = StdRng::seed_from_u64(seed);
    Batch::<f64, IN>::from_fn(n, |_, _| rng.random_range(-1.5..1.5))
}

/// `z = W x` of the bias-free first layer, feature-major: `z[i][j]` for feature `i`, sample `j`.
fn first_layer(net: &Normed, x: &Batch<f64, 3>) -> Vec<Vec<f64>> {
    let w = net.dense0.weight.as_slice(); // 4 x 3, column-major
    (0..4)
        .map(|i| {
            (0..x.ncols())
                .map(|j| (0..3).map(|k| w[i + 4 * k] * x[(k, j)]).sum())
                .collect()
        })
        .collect()
}

#[test]
fn training_moves_the_running_statistics_by_pytorchs_rule() {
    let mut net = Normed::new(&mut StdRng::seed_from_u64(1));
    let mut tape = net.new_tape();
    let (mut mean, mut var) = (vec![0.0; 4], vec![1.0; 4]);
    for (step, n) in [5, 8, 3].into_iter().enumerate() {
        let x = batch::<3>(n, 10 + step as u64);
        let z = first_layer(&net, &x);
        net.forward_train(x.as_view(), &mut tape, &mut StdRng::seed_from_u64(2));
        for i in 0..4 {
            let m = z[i].iter().sum::<f64>() / n as f64;
            let unbiased = z[i].iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            mean[i] = 0.75 * mean[i] + 0.25 * m;
            var[i] = 0.75 * var[i] + 0.25 * unbiased;
        }
        let bn = &net.batch_norm0;
        for i in 0..4 {
            assert!(
                (bn.running_mean[i] - mean[i]).abs() < 1e-12,
                "step {step} mean {i}"
            );
            assert!(
                (bn.running_var[i] - var[i]).abs() < 1e-12,
                "step {step} var {i}"
            );
        }
        assert_eq!(bn.num_batches_tracked, (step + 1) as f64);
    }
    // Inference-mode passes leave them alone.
    let before = net.batch_norm0.clone();
    net.forward_eval(batch::<3>(4, 20).as_view(), &mut tape);
    let _ = net.forward(&batch::<3>(4, 21));
    assert_eq!(net.batch_norm0, before);
}

#[test]
fn inference_uses_the_running_statistics_for_each_sample_alone() {
    let mut net = Normed::new(&mut StdRng::seed_from_u64(3));
    let mut tape = net.new_tape();
    net.forward_train(
        batch::<3>(7, 4).as_view(),
        &mut tape,
        &mut StdRng::seed_from_u64(5),
    );
    let x = batch::<3>(6, 6);
    let y = net.forward(&x);
    let z = first_layer(&net, &x);
    let bn = &net.batch_norm0;
    for j in 0..6 {
        // The same sample alone: `predict` agrees with the batch, bit for bit.
        let xj = SVector::<f64, 3>::from_fn(|k, _| x[(k, j)]);
        let yj = net.predict(&xj);
        assert_eq!(yj.as_slice(), y.column(j).as_slice(), "sample {j}");
        // Layer 2 by hand with the running statistics: tanh(γ (z - μ) / √(σ² + ε) + β).
        let h: Vec<f64> = (0..4)
            .map(|i| {
                let n = (z[i][j] - bn.running_mean[i]) / (bn.running_var[i] + 1e-5).sqrt();
                (bn.weight[i] * n + bn.bias[i]).tanh()
            })
            .collect();
        let w = net.dense1.weight.as_slice(); // 2 x 4
        let b = net.dense1.bias.as_ref().expect("a bias").as_slice();
        let o: Vec<f64> = (0..2)
            .map(|r| b[r] + (0..4).map(|i| w[r + 2 * i] * h[i]).sum::<f64>())
            .collect();
        // Layer norm over the two outputs, γ = 1, β = 0 as initialized.
        let m = (o[0] + o[1]) / 2.0;
        let v = ((o[0] - m).powi(2) + (o[1] - m).powi(2)) / 2.0;
        for r in 0..2 {
            let want = (o[r] - m) / (v + 1e-5).sqrt();
            assert!((yj[r] - want).abs() < 1e-12, "sample {j} output {r}");
        }
    }
}

#[test]
fn statistics_are_tensors_saved_with_pytorchs_names_but_no_parameters() {
    let names: Vec<&str> = Normed::TENSORS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "dense0.weight",
            "batch_norm0.weight",
            "batch_norm0.bias",
            "batch_norm0.running_mean",
            "batch_norm0.running_var",
            "batch_norm0.num_batches_tracked",
            "dense1.weight",
            "dense1.bias",
            "layer_norm0.weight",
            "layer_norm0.bias",
        ]
    );
    let trainable: usize = Normed::TENSORS
        .iter()
        .filter(|t| t.trainable)
        .map(|t| t.len())
        .sum();
    assert_eq!(trainable, Normed::PARAMS);
    assert_eq!(Normed::PARAMS, 3 * 4 + 2 * 4 + 4 * 2 + 2 + 2 * 2);
    // The gradients hold the trainable tensors only.
    let mut seen = Vec::new();
    Normed::new(&mut StdRng::seed_from_u64(1))
        .zero_gradients()
        .for_each_tensor(&mut |t, g| seen.push((t.name, g.len())));
    assert!(seen.iter().all(|(name, _)| !name.contains("running")));
    assert_eq!(seen.iter().map(|(_, l)| l).sum::<usize>(), Normed::PARAMS);

    // Saved and loaded: the running statistics come back and the predictions are identical.
    let mut net = Normed::new(&mut StdRng::seed_from_u64(7));
    let mut tape = net.new_tape();
    for s in 0..3 {
        let x = batch::<3>(6, 30 + s);
        net.forward_train(x.as_view(), &mut tape, &mut StdRng::seed_from_u64(s));
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("normed.safetensors");
    persist::save(&net, &path).expect("saved");
    let loaded = persist::load::<Normed, 3, 2>(&path).expect("loaded");
    assert_eq!(loaded.batch_norm0, net.batch_norm0);
    let x = batch::<3>(9, 40);
    assert_eq!(loaded.forward(&x), net.forward(&x));
}

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
    let labels = Labels::Classes {
        labels: y,
        classes: 3,
    };
    Dataset::from_slices(&x, labels).expect("valid data")
}

#[test]
fn trains_with_the_trainer_and_keeps_statistics_of_the_data() {
    let (data, test) = (clusters(600, 1), clusters(150, 2));
    let mut net = Classifier::new(&mut StdRng::seed_from_u64(3));
    Trainer::new(CrossEntropy, Adam::new(0.01))
        .epochs(5)
        .batch_size(32)
        .seed(4)
        .progress(Progress::Off)
        .fit(&mut net, &data, None)
        .expect("training");
    let (_, metrics) = evaluate(&net, &CrossEntropy, &test).expect("evaluated");
    let accuracy = metrics.accuracy().expect("classes");
    assert!(accuracy > 0.95, "test accuracy {accuracy}");
    let bn = &net.batch_norm0;
    assert_eq!(bn.num_batches_tracked, (5 * 600_usize.div_ceil(32)) as f32);
    // Every running variance moved away from its initial 1 towards the data's.
    assert!(bn
        .running_var
        .iter()
        .all(|&v| v > 0.0 && (v - 1.0).abs() > 1e-3));
}

#[test]
fn a_batch_of_one_sample_is_refused_or_skipped() {
    use nn::runtime::train::TrainError;
    let data = clusters(33, 5);
    let trainer = |batch: usize| {
        Trainer::new(CrossEntropy, Adam::new(0.01))
            .epochs(2)
            .batch_size(batch)
            .progress(Progress::Off)
    };
    let mut net = Classifier::new(&mut StdRng::seed_from_u64(3));
    let before = net.to_flat();
    let e = trainer(1)
        .fit(&mut net, &data, None)
        .expect_err("batches of one");
    assert!(
        matches!(&e, TrainError::Config(m) if m.contains("batch_norm")),
        "{e}"
    );
    assert_eq!(net.to_flat(), before, "a refused run changed the network");
    // 33 samples in batches of 16: the last batch of each epoch (one sample) is skipped.
    trainer(16).fit(&mut net, &data, None).expect("training");
    assert_eq!(net.batch_norm0.num_batches_tracked, 4.0);
    assert!(net.to_flat().iter().all(|v| v.is_finite()));
}
