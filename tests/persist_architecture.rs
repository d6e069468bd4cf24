//! Loading checks the architecture a file records: another activation, layer kind or option
//! is refused (also when resuming), formatting and `const` widths are not differences, a
//! file recording none (as PyTorch writes) loads, and `load_weights_into` loads any file
//! whose tensors match.

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::Mse;
use nn::runtime::optim::Adam;
use nn::runtime::persist::{self, LoadOptions, PersistError};
use nn::runtime::train::{CheckpointEvery, Progress, TrainError, Trainer};

network! { Relu < dense(2 -> 3, relu), dense(3 -> 1) > }
network! { Tanh < dense(2 -> 3, tanh), dense(3 -> 1) > }
network! { Dropped < dense(2 -> 3, relu), dropout(0.5), dense(3 -> 1) > }
const HIDDEN: usize = 3;
// The same architecture as `Relu`, written with a const width and other spacing.
network! { Spaced < dense( 2->HIDDEN , relu ),dense(HIDDEN -> 1) > }

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn another_activation_is_refused_showing_both_texts() {
    let d = dir();
    let path = d.path().join("relu.safetensors");
    let relu = Relu::new(&mut StdRng::seed_from_u64(1));
    persist::save(&relu, &path).expect("saved");

    let mut tanh = Tanh::new(&mut StdRng::seed_from_u64(2));
    let before = tanh.to_flat();
    let e = persist::load_into(&mut tanh, &path).expect_err("another activation");
    let PersistError::Architecture {
        recorded, expected, ..
    } = &e
    else {
        panic!("not an architecture error: {e}");
    };
    assert_eq!(recorded, "dense(2 -> 3, relu), dense(3 -> 1)");
    assert_eq!(expected, "dense(2 -> 3, tanh), dense(3 -> 1)");
    let message = e.to_string();
    for part in [
        path.display().to_string(),
        "dense(2 -> 3, relu), dense(3 -> 1)".into(),
        "dense(2 -> 3, tanh), dense(3 -> 1)".into(),
        "load_weights_into".into(),
    ] {
        assert!(message.contains(&part), "{message} lacks {part}");
    }
    assert_eq!(tanh.to_flat(), before, "a refused file changed the network");
    assert!(matches!(
        persist::load::<Tanh, 2, 1>(&path),
        Err(PersistError::Architecture { .. })
    ));
    // A dropout layer has no tensors: only the recorded text tells the two apart.
    assert!(matches!(
        persist::load::<Dropped, 2, 1>(&path),
        Err(PersistError::Architecture { .. })
    ));

    // Loading the weights regardless, explicitly, gives the file's values.
    let meta = persist::load_weights_into(&mut tanh, &path).expect("the tensors match");
    assert_eq!(meta.dsl, Relu::DSL);
    assert_eq!(tanh.to_flat(), relu.to_flat());
    let options = LoadOptions {
        ignore_architecture: true,
        ..LoadOptions::default()
    };
    let mut again = Tanh::new(&mut StdRng::seed_from_u64(3));
    persist::load_into_with(&mut again, &path, options).expect("ignored");
    assert_eq!(again.to_flat(), relu.to_flat());
    // The loaders over any `Parameters` compare tensors only.
    let mut params = Tanh::new(&mut StdRng::seed_from_u64(4));
    persist::load_parameters_into(&mut params, &path).expect("tensors match");
    assert_eq!(params.to_flat(), relu.to_flat());
}

#[test]
fn formatting_and_const_widths_are_no_difference() {
    let d = dir();
    let path = d.path().join("relu.safetensors");
    let relu = Relu::new(&mut StdRng::seed_from_u64(1));
    persist::save(&relu, &path).expect("saved");
    assert_ne!(Spaced::DSL, Relu::DSL);
    let spaced: Spaced = persist::load(&path).expect("the same architecture");
    assert_eq!(spaced.to_flat(), relu.to_flat());
}

/// A safetensors file as PyTorch's `save_file(state_dict)` writes it: `F32` tensors in this
/// order, row-major, and no `__metadata__`.
fn pytorch_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let from = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [from, data.len()]}),
        );
    }
    let mut json = serde_json::Value::Object(header).to_string();
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn a_file_recording_no_architecture_loads_on_its_tensors() {
    let d = dir();
    let path = d.path().join("torch.safetensors");
    let w0: Vec<f32> = (0..6).map(|i| i as f32 / 10.0).collect();
    let file = pytorch_file(&[
        ("dense0.weight", vec![3, 2], w0.clone()),
        ("dense0.bias", vec![3], vec![0.5, -0.5, 0.25]),
        ("dense1.weight", vec![1, 3], vec![1.0, 2.0, 3.0]),
        ("dense1.bias", vec![1], vec![-1.0]),
    ]);
    std::fs::write(&path, file).expect("written");
    for net in [
        persist::load::<Tanh, 2, 1>(&path).map(|n| n.to_flat()),
        persist::load::<Relu, 2, 1>(&path).map(|n| n.to_flat()),
    ] {
        let flat = net.expect("no recorded architecture to compare");
        // dense0.weight is stored column-major: row-major [[0, .1], [.2, .3], [.4, .5]].
        assert_eq!(&flat[..6], &[0.0, 0.2, 0.4, 0.1, 0.3, 0.5]);
        assert_eq!(&flat[6..], &[0.5, -0.5, 0.25, 1.0, 2.0, 3.0, -1.0]);
    }
}

fn data() -> Dataset<f32, 2> {
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<f32> = x.chunks(2).map(|p| p[0] - p[1]).collect();
    Dataset::from_slices(&x, Labels::Values { values: y, rows: 1 }).expect("valid data")
}

fn trainer(epochs: usize) -> Trainer<'static, Mse, Adam<f32>> {
    Trainer::new(Mse, Adam::new(1e-2))
        .epochs(epochs)
        .batch_size(4)
        .progress(Progress::Off)
}

#[test]
fn resuming_another_architecture_is_refused() {
    let d = dir();
    let path = d.path().join("ckpt.safetensors");
    let mut relu = Relu::new(&mut StdRng::seed_from_u64(1));
    trainer(2)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut relu, &data(), None)
        .expect("trained");

    let mut tanh = Tanh::new(&mut StdRng::seed_from_u64(2));
    let before = tanh.to_flat();
    let e = trainer(4)
        .resume_from(&path)
        .fit(&mut tanh, &data(), None)
        .expect_err("another architecture");
    assert!(
        matches!(e, TrainError::Persist(PersistError::Architecture { .. })),
        "{e}"
    );
    assert_eq!(
        tanh.to_flat(),
        before,
        "a refused checkpoint changed the network"
    );
    let e = persist::load_network_checkpoint_into(&mut tanh, &path, LoadOptions::default())
        .expect_err("another architecture");
    assert!(matches!(e, PersistError::Architecture { .. }), "{e}");

    // The same architecture resumes; the explicit option loads the other one's weights.
    let mut same = Relu::new(&mut StdRng::seed_from_u64(3));
    let h = trainer(4)
        .resume_from(&path)
        .fit(&mut same, &data(), None)
        .expect("resumed");
    assert_eq!(h.epochs[0].epoch, 3);
    let options = LoadOptions {
        ignore_architecture: true,
        ..LoadOptions::default()
    };
    let (_, ck) = persist::load_network_checkpoint_into(&mut tanh, &path, options)
        .expect("the tensors match");
    assert_eq!(ck.epoch, 2);
    assert_eq!(tanh.to_flat(), relu.to_flat());
}
