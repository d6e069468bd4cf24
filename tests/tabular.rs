//! Tabular data as users meet it: scalers of features and regression targets fitted on the
//! training set (checked against the textbook formulas), saved with the model and loaded
//! back so a second program predicts the same bits from raw values, refused when they do
//! not fit, and a warning when the training loss barely moves.

use nn::nalgebra::SVector;
use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels, Preprocessing, Scaler, ScalerKind};
use nn::runtime::loss::Mse;
use nn::runtime::optim::Adam;
use nn::runtime::persist::{self, PersistError, PreprocessingProblem};
use nn::runtime::train::{detect_stall, Metrics, Progress, Trainer};

network! { House < dense(3 -> 16, relu), dense(16 -> 1) > }
network! { Two < dense(3 -> 4, tanh), dense(4 -> 2) > }

/// `n` rows of three features on different scales and a target in the hundreds.
fn table(n: usize, seed: u64) -> Dataset<f32, 3> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let (a, b, c): (f32, f32, f32) = (
            rng.random_range(40.0..250.0),
            rng.random_range(0.0..80.0),
            rng.random_range(0.5..5.0),
        );
        x.extend([a, b, c]);
        y.push((20.0 + 1.2 * a - 0.8 * b + 10.0 * c).clamp(25.0, 350.0));
    }
    Dataset::from_slices(&x, Labels::Values { values: y, rows: 1 }).expect("valid")
}

fn targets(d: &Dataset<f32, 3>) -> Vec<f64> {
    match d.labels() {
        Labels::Values { values, .. } => values.iter().map(|&v| f64::from(v)).collect(),
        Labels::Classes { .. } => panic!("targets expected"),
    }
}

#[test]
fn target_scalers_match_the_textbook_formulas() {
    let train = table(50, 1);
    let t = targets(&train);
    let n = t.len() as f64;
    let mean = t.iter().sum::<f64>() / n;
    let sd = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let s = Scaler::fit_targets(ScalerKind::Standardize, &train).expect("fitted");
    assert!(
        (s.offset()[0] - mean).abs() < 1e-9 * mean.abs(),
        "{:?}",
        s.offset()
    );
    assert!((s.divisor()[0] - sd).abs() < 1e-9 * sd, "{:?}", s.divisor());
    let (lo, hi) = t
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let m = Scaler::fit_targets(ScalerKind::MinMax, &train).expect("fitted");
    assert_eq!((m.offset(), m.divisor()), (&[lo][..], &[hi - lo][..]));

    // Scaled targets: mean 0 and standard deviation 1; min-max ones span [0, 1].
    let mut scaled = train.clone();
    s.transform_targets(&mut scaled).expect("scaled");
    let u = targets(&scaled);
    let mu = u.iter().sum::<f64>() / n;
    let var = u.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / n;
    assert!(mu.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{mu} {var}");
    assert_eq!(scaled.inputs(), train.inputs());
    let mut unit = train.clone();
    m.transform_targets(&mut unit).expect("scaled");
    let u = targets(&unit);
    assert_eq!(u.iter().copied().fold(f64::MAX, f64::min), 0.0);
    assert_eq!(u.iter().copied().fold(f64::MIN, f64::max), 1.0);
    // The inverse gives the raw values back (to f32 rounding).
    let mut back: Vec<f32> = u.iter().map(|&v| v as f32).collect();
    m.inverse(&mut back).expect("inverted");
    for (b, raw) in back.iter().zip(&t) {
        assert!((f64::from(*b) - raw).abs() <= 1e-4 * raw, "{b} vs {raw}");
    }
    // Class labels have no targets to scale; widths must agree.
    let classes = Dataset::<f32, 3>::from_slices(
        &[1.0, 2.0, 3.0],
        Labels::Classes {
            labels: vec![0],
            classes: 2,
        },
    )
    .expect("valid");
    assert!(Scaler::fit_targets(ScalerKind::Standardize, &classes).is_err());
    let wide = Scaler::new(ScalerKind::Standardize, vec![0.0; 2], vec![1.0; 2]).expect("valid");
    assert!(wide.transform_targets(&mut train.clone()).is_err());
    assert!(Scaler::new(ScalerKind::MinMax, vec![0.0], vec![0.0]).is_err());
}

/// A trained model and its preprocessing, fitted on raw rows.
fn trained() -> (House, Preprocessing, Dataset<f32, 3>) {
    let train = table(200, 2);
    let pre = Preprocessing::fit(
        &train,
        Some(ScalerKind::Standardize),
        Some(ScalerKind::Standardize),
    )
    .expect("fitted");
    let mut scaled = train.clone();
    pre.apply(&mut scaled).expect("applied");
    let mut net = House::new(&mut StdRng::seed_from_u64(4));
    Trainer::new(Mse, Adam::new(1e-2))
        .epochs(30)
        .batch_size(32)
        .progress(Progress::Off)
        .fit(&mut net, &scaled, None)
        .expect("trained");
    (net, pre, train)
}

#[test]
fn a_loaded_model_predicts_the_same_bits_from_raw_values() {
    let (net, pre, _) = trained();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("house.safetensors");
    persist::save_with_preprocessing(&net, &pre, &path).expect("saved");
    let (loaded, loaded_pre): (House, Preprocessing) =
        persist::load_with_preprocessing(&path).expect("loaded");
    assert_eq!(loaded_pre, pre);
    let test = table(40, 3);
    let a = pre.predict_batch(&net, test.inputs()).expect("in memory");
    let b = loaded_pre
        .predict_batch(&loaded, test.inputs())
        .expect("loaded");
    let bits = |m: &[f32]| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a.as_slice()), bits(b.as_slice()));
    for i in 0..test.len() {
        let x = SVector::<f32, 3>::from_column_slice(test.input(i).expect("a sample"));
        let (p, q) = (pre.predict(&net, &x), loaded_pre.predict(&loaded, &x));
        assert_eq!(
            p.expect("in memory")[0].to_bits(),
            q.expect("loaded")[0].to_bits()
        );
    }

    // The prediction is the raw-unit inverse of the network's output on scaled inputs,
    // computed here by hand from the scalers' parameters.
    let (input, target) = (
        pre.input.as_ref().expect("input"),
        pre.target.as_ref().expect("target"),
    );
    let x = test.input(0).expect("a sample");
    let scaled: Vec<f32> = (0..3)
        .map(|f| ((f64::from(x[f]) - input.offset()[f]) / input.divisor()[f]) as f32)
        .collect();
    let y = net.predict(&SVector::from_column_slice(&scaled))[0];
    let want = (f64::from(y) * target.divisor()[0] + target.offset()[0]) as f32;
    assert_eq!(a[0], want);

    // Metrics in the target's units: R² from the raw targets by the textbook formula.
    let Metrics::Regression { r2, mae, .. } = pre.evaluate(&net, &test).expect("evaluated") else {
        panic!("regression metrics expected");
    };
    let t = targets(&test);
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let ss_res: f64 = a
        .iter()
        .zip(&t)
        .map(|(&p, q)| (q - f64::from(p)).powi(2))
        .sum();
    let ss_tot: f64 = t.iter().map(|q| (q - mean).powi(2)).sum();
    assert!((r2 - (1.0 - ss_res / ss_tot)).abs() < 1e-12, "{r2}");
    assert!(r2 > 0.9 && mae < 20.0, "r2 {r2}, mae {mae}");

    // Plain loaders ignore the scalers; the preprocessing loader of a plain file gives none.
    let plain: House = persist::load(&path).expect("the weights load alone");
    assert_eq!(plain.to_flat(), net.to_flat());
    let bare = dir.path().join("bare.safetensors");
    persist::save(&net, &bare).expect("saved");
    let (_, none): (House, Preprocessing) =
        persist::load_with_preprocessing(&bare).expect("loaded");
    assert_eq!(none, Preprocessing::default());
}

#[test]
fn scalers_that_do_not_fit_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("m.safetensors");
    let (net, pre, _) = trained();
    // A target scaler of one row cannot go with a network of two outputs: refused on save.
    let two = Two::new(&mut StdRng::seed_from_u64(1));
    let e = persist::save_with_preprocessing(&two, &pre, &path).expect_err("width");
    let PersistError::Preprocessing { problem, .. } = &e else {
        panic!("{e}")
    };
    assert!(
        matches!(**problem, PreprocessingProblem::Width { expected: 2, ref tensor, .. } if tensor == "preprocess.target.mean"),
        "{e}"
    );
    assert!(!path.exists());

    // Files edited by hand: an unknown kind, a scaler of another width.
    persist::save_with_preprocessing(&net, &pre, &path).expect("saved");
    let bytes = std::fs::read(&path).expect("read");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .expect("utf-8")
        .to_owned();
    let edit = |from: &str, to: &str| {
        assert_eq!(from.len(), to.len(), "same length keeps the offsets");
        assert!(header.contains(from), "{from} in {header}");
        let mut b = bytes.clone();
        b[8..8 + n].copy_from_slice(header.replacen(from, to, 1).as_bytes());
        let p = dir.path().join("edited.safetensors");
        std::fs::write(&p, b).expect("written");
        persist::load_with_preprocessing::<House, 3, 1>(&p)
            .map(|_| ())
            .expect_err("refused")
    };
    let e = edit(
        "\"nn.preprocess.input\":\"standardize\"",
        "\"nn.preprocess.input\":\"standardise\"",
    );
    assert!(e.to_string().contains("unknown kind `standardise`"), "{e}");
    // Renaming a tensor: the scaler misses it, and the renamed one belongs to none.
    let e = edit("\"preprocess.target.scale\"", "\"preprocess.target.scalf\"");
    assert!(
        e.to_string()
            .contains("needs tensor `preprocess.target.scale`"),
        "{e}"
    );
}

#[test]
fn a_loss_that_barely_moves_is_reported() {
    // Raw targets in the hundreds, a small learning rate: the loss hardly moves.
    let train = table(64, 5);
    let mut net = House::new(&mut StdRng::seed_from_u64(1));
    let history = Trainer::new(Mse, Adam::new(1e-3))
        .epochs(6)
        .batch_size(64)
        .progress(Progress::Off)
        .fit(&mut net, &train, None)
        .expect("trained");
    let stall = detect_stall(&history.epochs).expect("a stall");
    assert!(
        stall.drop() < 0.1 && stall.r2.is_some_and(|r| r < 0.5),
        "{stall}"
    );
    // Standardized targets: no stall.
    let pre = Preprocessing::fit(
        &train,
        Some(ScalerKind::Standardize),
        Some(ScalerKind::Standardize),
    )
    .expect("fitted");
    let mut scaled = train.clone();
    pre.apply(&mut scaled).expect("applied");
    let mut net = House::new(&mut StdRng::seed_from_u64(1));
    let history = Trainer::new(Mse, Adam::new(1e-2))
        .epochs(6)
        .batch_size(16)
        .progress(Progress::Off)
        .fit(&mut net, &scaled, None)
        .expect("trained");
    assert_eq!(detect_stall(&history.epochs), None);

    // The trainer says so on standard error (checked in a child process of this test).
    if std::env::var_os("NN_TABULAR_STALL_CHILD").is_some() {
        let mut net = House::new(&mut StdRng::seed_from_u64(1));
        Trainer::new(Mse, Adam::new(1e-3))
            .epochs(6)
            .batch_size(64)
            .progress(Progress::Lines)
            .fit(&mut net, &train, None)
            .expect("trained");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_loss_that_barely_moves_is_reported",
            "--nocapture",
        ])
        .env("NN_TABULAR_STALL_CHILD", "1")
        .output()
        .expect("the child ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: the training loss has barely moved"))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    assert!(warning.contains("the targets have mean"), "{warning}");
}
