use super::atomic::SAVES;
use super::codec::decode;
use super::*;
use crate::network::TensorInfo;
use safetensors::tensor::{Dtype, SafeTensors};
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

const fn info(
    index: usize,
    name: &'static str,
    rows: usize,
    cols: usize,
    is_bias: bool,
) -> TensorInfo {
    TensorInfo {
        index,
        name,
        rows,
        cols,
        is_bias,
        trainable: true,
        l1: 0.0,
        l2: 0.0,
    }
}

/// Parameter layouts: 0 is the reference; 1 and 2 differ from it.
const LAYOUTS: [&[TensorInfo]; 3] = [
    &[
        info(0, "dense0.weight", 3, 2, false),
        info(1, "dense0.bias", 3, 1, true),
    ],
    &[
        info(0, "dense0.weight", 2, 3, false),
        info(1, "dense0.bias", 3, 1, true),
        info(2, "dense1.weight", 1, 3, false),
    ],
    &[info(0, "dense0.weight", 3, 2, false)],
];

/// A hand-written parameter set with layout `K`.
#[derive(Clone, Debug, PartialEq)]
struct Flat<T, const K: usize>(Vec<Vec<T>>);

impl<T: Float, const K: usize> Flat<T, K> {
    fn new(seed: f64) -> Self {
        let v = LAYOUTS[K].iter().map(|t| {
            (0..t.len())
                .map(|i| T::of(seed + i as f64 / 7.0 + t.index as f64))
                .collect()
        });
        Self(v.collect())
    }
}

impl<T: Float, const K: usize> Parameters<T> for Flat<T, K> {
    const TENSORS: &'static [TensorInfo] = LAYOUTS[K];
    fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[T])) {
        Self::TENSORS.iter().zip(&self.0).for_each(|(t, v)| f(t, v));
    }
    fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [T])) {
        Self::TENSORS
            .iter()
            .zip(&mut self.0)
            .for_each(|(t, v)| f(t, v));
    }
}

fn meta() -> Metadata {
    Metadata::new("Tiny", "dense(2 -> 3, relu)", "f32")
}

fn leftovers(dir: &Path) -> Vec<String> {
    let names = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|n| n.contains(".tmp")).collect()
}

#[test]
fn persist_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let mut a = Flat::<f32, 0>::new(0.1);
    a.0[0][1] = f32::MIN_POSITIVE / 3.0; // subnormal
    a.0[1][2] = -0.0;
    save_parameters(&a, &meta(), &path).unwrap();
    let mut b = Flat::<f32, 0>::new(9.0);
    let m = load_parameters_into(&mut b, &path).unwrap();
    let bits = |p: &Flat<f32, 0>| p.to_flat().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(m, meta());
    assert_eq!(m.version, env!("CARGO_PKG_VERSION"));

    let c = Flat::<f64, 0>::new(std::f64::consts::PI);
    save_parameters(&c, &meta(), &path).unwrap();
    let mut d = Flat::<f64, 0>::new(0.0);
    load_parameters_into(&mut d, &path).unwrap();
    assert_eq!(c, d);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn persist_weights_are_stored_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    // Column-major 3 x 2: W = [[0, 3], [1, 4], [2, 5]].
    let p = Flat::<f32, 0>(vec![
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        vec![7.0, 8.0, 9.0],
    ]);
    save_parameters(&p, &meta(), &path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w = st.tensor("dense0.weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[3, 2][..]));
    assert_eq!(decode::<f32>(w.data()), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let b = st.tensor("dense0.bias").unwrap();
    assert_eq!(b.shape(), &[3]);
    let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
    let m = m.metadata().clone().unwrap();
    assert_eq!(
        (
            m["format"].as_str(),
            m["nn.network"].as_str(),
            m["nn.dsl"].as_str()
        ),
        ("pt", "Tiny", "dense(2 -> 3, relu)")
    );
}

#[test]
fn persist_mismatches_are_all_named_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
    let name = path.display();

    let mut other = Flat::<f32, 1>::new(5.0);
    let before = other.clone();
    let e = load_parameters_into(&mut other, &path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{name}: does not match the parameters: tensor `dense0.weight` has shape [3, 2], expected [2, 3]; missing tensor `dense1.weight`")
    );
    assert_eq!(other, before);

    let e = load_parameters_into(&mut Flat::<f32, 2>::new(0.0), &path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{name}: does not match the parameters: unexpected tensor `dense0.bias`")
    );

    let mut wide = Flat::<f64, 0>::new(2.0);
    let e = load_parameters_into(&mut wide, &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tensor `dense0.weight` has dtype F32, expected F64; tensor `dense0.bias` has dtype F32, expected F64"), "{e}");
    assert_eq!(wide, Flat::<f64, 0>::new(2.0));
}

#[test]
fn persist_malformed_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
    let good = fs::read(&path).unwrap();
    let bad = dir.path().join("bad.safetensors");
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        good[..good.len() - 1].to_vec(),
        good[..20].to_vec(),
    ];
    cases.push([u64::MAX.to_le_bytes().as_slice(), &good[8..]].concat());
    cases.push([(1u64 << 40).to_le_bytes().as_slice(), &good[8..]].concat());
    let mut huge = br#"{"dense0.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,24]}}"#.to_vec();
    huge.resize(huge.len().div_ceil(8) * 8, b' ');
    cases.push(
        [
            (huge.len() as u64).to_le_bytes().as_slice(),
            &huge,
            &[0; 24],
        ]
        .concat(),
    );
    for i in 8..good.len() {
        let mut flipped = good.clone();
        flipped[i] ^= 0x5a;
        cases.push(flipped);
    }
    for bytes in cases {
        fs::write(&bad, &bytes).unwrap();
        let mut p = Flat::<f32, 0>::new(3.0);
        // A flip inside the data is still a valid file; anything else must be an error.
        match load_parameters_into(&mut p, &bad) {
            Ok(_) => assert!(bytes.len() == good.len()),
            Err(e) => {
                assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
                assert_eq!(p, Flat::<f32, 0>::new(3.0));
            }
        }
    }
    let e =
        load_parameters_into(&mut Flat::<f32, 0>::new(0.0), dir.path().join("none")).unwrap_err();
    assert!(matches!(e, PersistError::Io { .. }));
}

#[test]
fn persist_saves_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
    let old = fs::read(&path).unwrap();
    // A write that fails half-way leaves the old file and no temporary file.
    let e = write_atomic(&path, |f| {
        f.write_all(&old[..10])?;
        Err(io::Error::other("disk full"))
    });
    assert!(e.unwrap_err().to_string().contains("disk full"));
    assert_eq!(fs::read(&path).unwrap(), old);
    assert!(leftovers(dir.path()).is_empty());
    // A rename that fails (the target is a directory) cleans up too.
    let sub = dir.path().join("sub.safetensors");
    fs::create_dir(&sub).unwrap();
    assert!(save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &sub).is_err());
    assert!(leftovers(dir.path()).is_empty());
    // Overwriting succeeds and replaces the contents.
    save_parameters(&Flat::<f32, 0>::new(2.0), &meta(), &path).unwrap();
    assert_ne!(fs::read(&path).unwrap(), old);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn persist_leftovers_of_killed_saves_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let tmp = |pid: u32, n: u64| dir.path().join(format!("p.safetensors.tmp.{pid}.{n}"));
    // What saves killed before their rename leave: unlocked temporary files, possibly
    // with our own process id (ids are reused) and the counter's next values.
    let next = SAVES.load(Ordering::Relaxed);
    let own: Vec<PathBuf> = (next..next + 3)
        .map(|n| tmp(std::process::id(), n))
        .collect();
    for p in own.iter().chain([&tmp(4_000_001, 0), &tmp(4_000_002, 7)]) {
        fs::write(p, b"half a file").unwrap();
    }
    // A save in progress elsewhere holds its file locked; other files are not ours.
    let live = tmp(4_000_003, 1);
    fs::write(&live, b"being written").unwrap();
    let held = File::open(&live).unwrap();
    held.lock().unwrap();
    let others = [
        "p.safetensors.tmp.backup",
        "q.safetensors.tmp.1.2",
        "p.safetensors.tmp.1",
    ];
    for o in others {
        fs::write(dir.path().join(o), b"keep").unwrap();
    }
    save_parameters(&Flat::<f32, 0>::new(1.0), &meta(), &path).unwrap();
    let mut left = leftovers(dir.path());
    left.sort();
    let mut expected: Vec<String> = others.iter().map(|o| o.to_string()).collect();
    expected.push("p.safetensors.tmp.4000003.1".into());
    expected.sort();
    assert_eq!(left, expected);
    let mut q = Flat::<f32, 0>::new(0.0);
    load_parameters_into(&mut q, &path).unwrap();
    assert_eq!(q, Flat::<f32, 0>::new(1.0));
    // Once its writer is gone, the next save removes it.
    drop(held);
    save_parameters(&Flat::<f32, 0>::new(2.0), &meta(), &path).unwrap();
    assert_eq!(leftovers(dir.path()).len(), others.len());
}

fn checkpoint() -> Checkpoint<f32> {
    let buffers = vec![
        ("dense0.weight.exp_avg".to_owned(), vec![0.5; 6]),
        ("dense0.bias.exp_avg".to_owned(), vec![-1.25, 0.0, 3.0]),
    ];
    let optimizer = OptimizerState {
        name: "Adam".into(),
        step: 1234,
        lr: 1e-3 / 3.0,
        buffers,
    };
    let best = BestEpoch {
        epoch: 5,
        score: 0.1 + 0.2,
        since: 2,
        weights: Some((0..9).map(|i| i as f32 * 0.25 - 1.0).collect()),
    };
    Checkpoint {
        epoch: 7,
        optimizer,
        best: Some(best),
        extra: serde_json::json!({"best": 0.97, "history": [1, 2]}),
    }
}

/// The file's header: tensor names with their shapes.
fn header_shapes(path: &Path) -> Vec<(String, Vec<u64>)> {
    let bytes = fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<(String, Vec<u64>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"].as_array().unwrap().iter();
            (k.clone(), shape.map(|d| d.as_u64().unwrap()).collect())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn persist_checkpoints_hold_the_best_epoch_as_tensors_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let p = Flat::<f32, 0>::new(0.3);
    save_checkpoint(&p, &meta(), &checkpoint(), &path).unwrap();
    // The best weights are tensors `best.<tensor>` shaped like the parameters, not optimizer
    // buffers.
    let shapes = header_shapes(&path);
    let shape_of = |name: &str| {
        shapes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    };
    for t in Flat::<f32, 0>::TENSORS {
        assert_eq!(
            shape_of(&format!("best.{}", t.name)),
            shape_of(t.name),
            "{}",
            t.name
        );
    }
    assert!(
        shapes.iter().all(|(n, _)| !n.contains("es_best")),
        "{shapes:?}"
    );
    let mut q = Flat::<f32, 0>::new(0.0);
    let (_, c) = load_checkpoint_into(&mut q, &path).unwrap();
    assert_eq!(
        c.best,
        checkpoint().best,
        "score, epoch, wait and weights, exactly"
    );
    // Without its weights.
    let mut light = checkpoint();
    light.best.as_mut().unwrap().weights = None;
    save_checkpoint(&p, &meta(), &light, &path).unwrap();
    assert!(header_shapes(&path)
        .iter()
        .all(|(n, _)| !n.starts_with("best.")));
    let (_, c) = load_checkpoint_into(&mut q, &path).unwrap();
    assert_eq!(c.best, light.best);
    // Weights of another length are refused on save, and a file lacking the tensors its
    // `nn.best` entry promises is refused on load, naming them.
    let mut wrong = checkpoint();
    wrong.best.as_mut().unwrap().weights.as_mut().unwrap().pop();
    let e = save_checkpoint(&p, &meta(), &wrong, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the best epoch's weights have 8 values, the parameters 9"),
        "{e}"
    );
    let mut promise = checkpoint();
    promise.best.as_mut().unwrap().weights = None;
    save_checkpoint(&p, &meta(), &promise, &path).unwrap();
    let mut file = fs::read(&path).unwrap();
    let (from, to) = (br#"\"weights\":false"#, br#"\"weights\":true "#);
    let at = file.windows(from.len()).position(|w| w == from).unwrap();
    file[at..at + from.len()].copy_from_slice(to);
    fs::write(&path, &file).unwrap();
    let e = load_checkpoint_into(&mut q, &path).unwrap_err().to_string();
    assert!(e.contains("best.dense0.weight"), "{e}");
}

#[test]
fn persist_checkpoint_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let p = Flat::<f32, 0>::new(0.3);
    save_checkpoint(&p, &meta(), &checkpoint(), &path).unwrap();
    let mut q = Flat::<f32, 0>::new(0.0);
    let (m, c) = load_checkpoint_into(&mut q, &path).unwrap();
    assert_eq!((p.clone(), meta(), checkpoint()), (q, m, c));
    // The parameters alone load from a checkpoint; a parameter file is no checkpoint.
    let mut r = Flat::<f32, 0>::new(0.0);
    load_parameters_into(&mut r, &path).unwrap();
    assert_eq!(r, p);
    let plain = dir.path().join("plain.safetensors");
    save_parameters(&p, &meta(), &plain).unwrap();
    let e = load_checkpoint_into(&mut r, &plain)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("invalid checkpoint: no `nn.epoch` entry in the metadata"),
        "{e}"
    );
    let mut dup = checkpoint();
    dup.optimizer.buffers.push(dup.optimizer.buffers[0].clone());
    assert!(save_checkpoint(&p, &meta(), &dup, &path).is_err());
    let mut wide = Flat::<f64, 0>::new(0.0);
    let e = load_checkpoint_into(&mut wide, &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dtype F32, expected F64"), "{e}");
}

#[test]
fn persist_refused_checkpoints_change_nothing() {
    // Found by the checkpoint fuzz target: a missing `nn.optim.name` was noticed only
    // after the parameters had been loaded.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    save_checkpoint(&Flat::<f32, 0>::new(0.3), &meta(), &checkpoint(), &path).unwrap();
    let good = fs::read(&path).unwrap();
    for key in [
        "nn.epoch",
        "nn.optim.name",
        "nn.optim.step",
        "nn.optim.lr",
        "nn.optim.buffers",
        "nn.extra",
    ] {
        // The same length, so the file stays a valid safetensors file.
        let renamed = key.replace('n', "N");
        let at = good
            .windows(key.len() + 2)
            .position(|w| w == format!("\"{key}\"").as_bytes())
            .unwrap();
        let mut bytes = good.clone();
        bytes[at + 1..at + 1 + key.len()].copy_from_slice(renamed.as_bytes());
        fs::write(&path, &bytes).unwrap();
        let mut p = Flat::<f32, 0>::new(9.0);
        let e = load_checkpoint_into(&mut p, &path).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!("no `{key}` entry in the metadata")),
            "{e}"
        );
        assert_eq!(
            p,
            Flat::<f32, 0>::new(9.0),
            "{key}: a refused file changed the parameters"
        );
    }
}

/// A one-layer network over [`Flat`] layout 0, enough to exercise `save`/`load`.
#[derive(Clone, Debug, PartialEq)]
struct Tiny(Flat<f32, 0>);

struct NoTape;
impl crate::network::Tape<f32> for NoTape {
    fn batch(&self) -> usize {
        0
    }
    fn output_parts(&mut self) -> crate::network::OutputParts<'_, f32> {
        unimplemented!("not used by persistence")
    }
}

impl Parameters<f32> for Tiny {
    const TENSORS: &'static [TensorInfo] = LAYOUTS[0];
    fn for_each_tensor(&self, f: &mut dyn FnMut(&'static TensorInfo, &[f32])) {
        self.0.for_each_tensor(f)
    }
    fn for_each_tensor_mut(&mut self, f: &mut dyn FnMut(&'static TensorInfo, &mut [f32])) {
        self.0.for_each_tensor_mut(f)
    }
}

impl Network<2, 3> for Tiny {
    type Scalar = f32;
    type Gradients = Flat<f32, 0>;
    type Tape = NoTape;
    const NAME: &'static str = "Tiny";
    const DSL: &'static str = "dense(2 -> 3, relu)";
    const PARAMS: usize = 9;
    const FLOPS: usize = 6;
    const LAYERS: &'static [crate::network::LayerInfo] = &[];
    const OUTPUT_ACTIVATION: crate::network::OutputActivation =
        crate::network::OutputActivation::Identity;
    fn init<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        Tiny(Flat(vec![
            (0..6).map(|_| rng.random()).collect(),
            vec![0.0; 3],
        ]))
    }
    fn predict(&self, x: &nalgebra::SVector<f32, 2>) -> nalgebra::SVector<f32, 3> {
        let w = nalgebra::SMatrix::<f32, 3, 2>::from_column_slice(&self.0 .0[0]);
        w * x + nalgebra::SVector::<f32, 3>::from_column_slice(&self.0 .0[1])
    }
    fn forward(&self, _: &crate::Batch<f32, 2>) -> crate::Batch<f32, 3> {
        unimplemented!("not used by persistence")
    }
    fn new_tape(&self) -> NoTape {
        NoTape
    }
    fn zero_gradients(&self) -> Flat<f32, 0> {
        Flat::new(0.0)
    }
    fn forward_train<R: rand::Rng + ?Sized>(
        &mut self,
        _: crate::BatchView<'_, f32, 2>,
        _: &mut NoTape,
        _: &mut R,
    ) {
        unimplemented!("not used by persistence")
    }
    fn backward(
        &self,
        _: crate::BatchView<'_, f32, 2>,
        _: &mut NoTape,
        _: crate::GradientOf,
        _: &mut Flat<f32, 0>,
    ) {
        unimplemented!("not used by persistence")
    }
    fn for_each_param_grad(
        &mut self,
        _: &Flat<f32, 0>,
        _: &mut crate::network::ParamGradVisitor<'_, f32>,
    ) {
        unimplemented!("not used by persistence")
    }
    fn forward_eval(&self, _: crate::BatchView<'_, f32, 2>, _: &mut NoTape) {
        unimplemented!("not used by persistence")
    }
}

#[test]
fn persist_network_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    let net = Tiny(Flat::new(0.25));
    save(&net, &path).unwrap();
    let loaded: Tiny = load(&path).unwrap();
    assert_eq!(loaded, net);
    let x = nalgebra::SVector::<f32, 2>::new(0.5, -2.0);
    assert_eq!(loaded.predict(&x), net.predict(&x));
    let mut other = Tiny::init(&mut StdRng::seed_from_u64(1));
    let m = load_into(&mut other, &path).unwrap();
    assert_eq!(
        (other, m),
        (net, Metadata::new("Tiny", "dense(2 -> 3, relu)", "f32"))
    );
    assert_eq!(Metadata::of::<Tiny, 2, 3>().network, "Tiny");
}

/// A safetensors file of header `json` (padded to 8 bytes) and `data` zero bytes.
fn raw_file(json: &str, data: usize) -> Vec<u8> {
    let mut h = json.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    [
        (h.len() as u64).to_le_bytes().as_slice(),
        &h,
        &vec![0; data],
    ]
    .concat()
}

#[test]
fn persist_headers_are_checked_before_any_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.safetensors");
    let w = |offsets: &str| {
        format!(r#""dense0.weight":{{"dtype":"F32","shape":[3,2],"data_offsets":{offsets}}}"#)
    };
    let b = r#""dense0.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}"#;
    let cases = [
        // Tensors in any order in the header, placed by their offsets: this one loads.
        (format!("{{{b},{}}}", w("[0,24]")), 36, ""),
        (format!("{{{},{b}}}", w("[0,24]")), 40, "4 bytes follow the last tensor's data"),
        (format!("{{{},{b}}}", w("[0,24]")), 35, "tensor `dense0.bias`: data_offsets [24, 36] end beyond the file's 35 bytes of tensor data"),
        (format!("{{{},{b}}}", w("[0,20]")), 36, "tensor `dense0.weight`: shape [3, 2] of F32 needs 24 bytes, data_offsets [0, 20] hold 20"),
        (format!("{{{},{b}}}", w("[4,24]")), 36, "tensor `dense0.weight`: data_offsets [4, 24] should start at 0"),
        (format!("{{{},{b},{}}}", w("[0,24]"), w("[36,60]")), 60, "tensor `dense0.weight` appears twice in the header"),
        (format!(r#"{{"__metadata__":{{}},{},{b},"__metadata__":{{}}}}"#, w("[0,24]")), 36, "header: `__metadata__` appears twice"),
        (r#"{"x":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#.into(), 4, "header: tensor `x`: unknown variant `F99`"),
        (r#"{"x":{"dtype":"F32","shape":[4000000000,4000000000,4000000000],"data_offsets":[0,4]}}"#.into(), 4, "tensor `x`: shape [4000000000, 4000000000, 4000000000] overflows"),
        (format!(r#"{{"{}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}},"{0}":{{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}}}"#, "é".repeat(100)), 8, &format!("tensor `{}… (200 bytes)` appears twice", "é".repeat(40))),
        (r#"{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,8]}}"#.into(), 8, "tensor `x`: shape [1, 1, 1, 1, 1, 1, 1, 1, … (10 dimensions)] of F32 needs 4 bytes"),
        ("[1, 2]".into(), 0, "header: invalid type: sequence, expected an object of tensors"),
        (format!("{{{},{b}}} x", w("[0,24]")), 36, "header: trailing characters"),
    ];
    for (json, data, needle) in cases {
        fs::write(&path, raw_file(&json, data)).unwrap();
        let mut p = Flat::<f32, 0>::new(1.0);
        match load_parameters_into(&mut p, &path) {
            Ok(_) => {
                assert_eq!(needle, "", "{json}: loaded");
                assert!(p.to_flat().iter().all(|&v| v == 0.0));
            }
            Err(e) => {
                let e = e.to_string();
                let expected =
                    format!("{}: not a valid safetensors file: {needle}", path.display());
                assert!(
                    !needle.is_empty() && e.starts_with(&expected),
                    "{json}: {e}"
                );
                assert_eq!(p, Flat::<f32, 0>::new(1.0));
            }
        }
    }
    // Shorter than the header length, and a header length longer than the file.
    fs::write(&path, [0u8; 7]).unwrap();
    let e = load_parameters_into(&mut Flat::<f32, 0>::new(0.0), &path).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("7 bytes, too short for the 8-byte header length"),
        "{e}"
    );
    fs::write(&path, [&16u64.to_le_bytes()[..], b"{}      "].concat()).unwrap();
    let e = load_parameters_into(&mut Flat::<f32, 0>::new(0.0), &path).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the header length is 16 bytes, but only 8 bytes follow it"),
        "{e}"
    );
}

#[test]
fn persist_checkpoint_buffers_follow_their_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let p = Flat::<f32, 0>::new(0.3);
    let name = path.display();
    type Edit = fn(&mut Vec<(String, Vec<f32>)>);
    let cases: [(Edit, &str, &str); 3] = [
        (
            |b| b[1].1.push(1.0),
            "optimizer buffer `dense0.bias.exp_avg` has 4 values, tensor `dense0.bias` has 3",
            "tensor `optim.dense0.bias.exp_avg` has shape [4], expected [3]",
        ),
        (
            |b| b[0].0 = "dense1.weight.exp_avg".into(),
            "optimizer buffer `dense1.weight.exp_avg` names no tensor of the parameters",
            "unexpected tensor `optim.dense1.weight.exp_avg`",
        ),
        (
            |b| b[0].0 = "dense0.weight.exp.avg".into(),
            "optimizer buffer `dense0.weight.exp.avg` names no tensor of the parameters",
            "unexpected tensor `optim.dense0.weight.exp.avg`",
        ),
    ];
    for (edit, on_save, on_load) in cases {
        let mut ck = checkpoint();
        edit(&mut ck.optimizer.buffers);
        let e = save_checkpoint(&p, &meta(), &ck, &path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{name}: invalid checkpoint: {on_save}")
        );
        // The same file written without the checks is refused on load, changing nothing.
        let (tensors, map) = checkpoint_contents(&p, &meta(), &ck);
        write_tensors(&path, tensors, map).unwrap();
        let mut q = Flat::<f32, 0>::new(5.0);
        let e = load_checkpoint_into(&mut q, &path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{name}: does not match the parameters: {on_load}")
        );
        assert_eq!(q, Flat::<f32, 0>::new(5.0));
    }
}

#[test]
fn persist_long_mismatch_lists_show_five_and_count_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let name = path.display();
    let first =
        "tensor `dense0.weight` has shape [3, 2], expected [2, 3]; missing tensor `dense1.weight`";
    for (strays, tail) in [
        (3, "; unexpected tensor `u0`; unexpected tensor `u1`; unexpected tensor `u2`"),
        (4, "; unexpected tensor `u0`; unexpected tensor `u1`; unexpected tensor `u2`; … and 1 more"),
        (9, "; unexpected tensor `u0`; unexpected tensor `u1`; unexpected tensor `u2`; … and 6 more"),
    ] {
        // A layout-0 file with `strays` more tensors, loaded into layout 1.
        let mut tensors = param_tensors(&Flat::<f32, 0>::new(1.0));
        for i in 0..strays {
            let data = 1f32.to_le_bytes().to_vec();
            let (dtype, shape) = (Dtype::F32, vec![1]);
            tensors.push((format!("u{i}"), Tensor { dtype, shape, data }));
        }
        write_tensors(&path, tensors, meta().to_map()).unwrap();
        let e = load_parameters_into(&mut Flat::<f32, 1>::new(0.0), &path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{name}: does not match the parameters: {first}{tail}")
        );
        let PersistError::Mismatch { problems, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(problems.len(), 2 + strays, "the error keeps every problem");
        if strays == 9 {
            let debug = format!("{e:?}");
            assert_eq!(
                debug,
                format!(
                    "Mismatch {{ path: {:?}, problems: [tensor `dense0.weight` has shape [3, 2], expected [2, 3], missing tensor `dense1.weight`, unexpected tensor `u0`, unexpected tensor `u1`, unexpected tensor `u2`, … and 6 more] }}",
                    path
                )
            );
        }
    }
    // A hostile name is cut in messages, not in the error.
    let long = "w".repeat(1 << 20);
    let mut tensors = param_tensors(&Flat::<f32, 0>::new(1.0));
    let (dtype, shape, data) = (Dtype::F32, vec![1], vec![0; 4]);
    tensors.push((long.clone(), Tensor { dtype, shape, data }));
    write_tensors(&path, tensors, meta().to_map()).unwrap();
    let e = load_parameters_into(&mut Flat::<f32, 0>::new(0.0), &path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{name}: does not match the parameters: unexpected tensor `{}… (1048576 bytes)`",
            &long[..80]
        )
    );
    assert!(
        matches!(e, PersistError::Mismatch { problems, .. } if problems == [Mismatch::Unexpected(long)])
    );
}

/// Writes `params` as [`save_parameters`] would, without its debug-build check.
fn write_unchecked<T: Float, P: Parameters<T>>(params: &P, path: &Path) {
    write_tensors(path, param_tensors(params), meta().to_map()).unwrap();
}

/// The non-finite error's tensor, index and value, or a panic.
fn non_finite(e: PersistError) -> (String, usize, f64) {
    match e {
        PersistError::NonFinite {
            tensor,
            index,
            value,
            ..
        } => (tensor, index, value),
        other => panic!("{other}"),
    }
}

#[test]
fn persist_non_finite_parameters_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let name = path.display();
    // Column-major 3 x 2: value 4 is row 1, column 1, which is 3 in the file's row-major order.
    let mut p = Flat::<f32, 0>::new(0.5);
    p.0[0][4] = f32::NAN;
    p.0[1][2] = f32::INFINITY;
    write_unchecked(&p, &path);
    let bytes = fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w = decode::<f32>(st.tensor("dense0.weight").unwrap().data());
    assert!(w[3].is_nan() && w.iter().filter(|v| v.is_nan()).count() == 1);

    let mut q = Flat::<f32, 0>::new(9.0);
    let e = load_parameters_into(&mut q, &path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{name}: tensor `dense0.weight` holds the non-finite value NaN at index 3 (row-major)"
        )
    );
    assert_eq!(
        q,
        Flat::<f32, 0>::new(9.0),
        "a refused file changed the parameters"
    );
    // Opting in loads every value as saved.
    let allow = LoadOptions {
        allow_non_finite: true,
        ..LoadOptions::default()
    };
    load_parameters_into_with(&mut q, &path, allow).unwrap();
    let bits = |p: &Flat<f32, 0>| p.to_flat().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&q), bits(&p));

    // The weight finite, the bias's infinity is found; -inf in f64.
    p.0[0][4] = 1.0;
    write_unchecked(&p, &path);
    let e = load_parameters_into(&mut q, &path).unwrap_err();
    assert_eq!(non_finite(e), ("dense0.bias".into(), 2, f64::INFINITY));
    let mut d = Flat::<f64, 0>::new(0.5);
    d.0[0][1] = f64::NEG_INFINITY;
    write_unchecked(&d, &path);
    let mut e64 = Flat::<f64, 0>::new(2.0);
    let e = load_parameters_into(&mut e64, &path).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("holds the non-finite value -inf at index 2 (row-major)"),
        "{e}"
    );
    assert_eq!(e64, Flat::<f64, 0>::new(2.0));
    // Networks too, through `load` and `load_into`.
    let mut net = Tiny(Flat::new(0.25));
    net.0 .0[1][0] = f32::NAN;
    write_unchecked(&net, &path);
    let (tensor, index, value) = non_finite(load::<Tiny, 2, 3>(&path).unwrap_err());
    assert_eq!((tensor.as_str(), index), ("dense0.bias", 0));
    assert!(value.is_nan());
    let mut other = Tiny(Flat::new(3.0));
    assert!(load_into(&mut other, &path).is_err());
    assert_eq!(other, Tiny(Flat::new(3.0)));
}

#[test]
fn persist_non_finite_checkpoints_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let p = Flat::<f32, 0>::new(0.3);
    let mut ck = checkpoint();
    ck.optimizer.buffers[1].1[1] = f32::INFINITY;
    let (tensors, map) = checkpoint_contents(&p, &meta(), &ck);
    write_tensors(&path, tensors, map).unwrap();

    let mut q = Flat::<f32, 0>::new(9.0);
    let e = load_checkpoint_into(&mut q, &path).unwrap_err();
    assert_eq!(
        non_finite(e),
        ("optim.dense0.bias.exp_avg".into(), 1, f64::INFINITY)
    );
    assert_eq!(
        q,
        Flat::<f32, 0>::new(9.0),
        "a refused checkpoint changed the parameters"
    );
    let allow = LoadOptions {
        allow_non_finite: true,
        ..LoadOptions::default()
    };
    let (_, c) = load_checkpoint_into_with(&mut q, &path, allow).unwrap();
    assert_eq!((q.clone(), c), (p.clone(), ck.clone()));
    // The parameters alone are finite, and load: the buffers are not read.
    let mut r = Flat::<f32, 0>::new(9.0);
    load_parameters_into(&mut r, &path).unwrap();
    assert_eq!(r, p);

    // A non-finite weight in a checkpoint.
    let mut bad = p.clone();
    bad.0[1][1] = f32::NEG_INFINITY;
    let (tensors, map) = checkpoint_contents(&bad, &meta(), &checkpoint());
    write_tensors(&path, tensors, map).unwrap();
    let mut q = Flat::<f32, 0>::new(9.0);
    let e = load_checkpoint_into(&mut q, &path).unwrap_err();
    assert_eq!(non_finite(e), ("dense0.bias".into(), 1, f64::NEG_INFINITY));
    assert_eq!(q, Flat::<f32, 0>::new(9.0));
}

/// Debug builds refuse to save what loading would refuse; nothing is written.
#[cfg(debug_assertions)]
#[test]
fn persist_debug_builds_refuse_to_save_non_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let mut p = Flat::<f32, 0>::new(0.5);
    p.0[0][4] = f32::NAN;
    let e = save_parameters(&p, &meta(), &path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: tensor `dense0.weight` holds the non-finite value NaN at index 3 (row-major)",
            path.display()
        )
    );
    assert!(!path.exists());
    // A checkpoint: finite parameters, an infinite buffer; the old file stays.
    let good = Flat::<f32, 0>::new(0.5);
    save_checkpoint(&good, &meta(), &checkpoint(), &path).unwrap();
    let old = fs::read(&path).unwrap();
    let mut ck = checkpoint();
    ck.optimizer.buffers[0].1[5] = f32::INFINITY;
    let e = save_checkpoint(&good, &meta(), &ck, &path).unwrap_err();
    assert_eq!(
        non_finite(e),
        ("optim.dense0.weight.exp_avg".into(), 5, f64::INFINITY)
    );
    let e = save_checkpoint(&p, &meta(), &checkpoint(), &path).unwrap_err();
    assert_eq!(non_finite(e).0, "dense0.weight");
    assert_eq!(fs::read(&path).unwrap(), old);
    assert!(leftovers(dir.path()).is_empty());
}

/// Release builds save non-finite values, which then load only when allowed.
#[cfg(not(debug_assertions))]
#[test]
fn persist_release_builds_save_non_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let mut p = Flat::<f32, 0>::new(0.5);
    p.0[0][4] = f32::NAN;
    save_parameters(&p, &meta(), &path).unwrap();
    let mut q = Flat::<f32, 0>::new(9.0);
    let e = load_parameters_into(&mut q, &path).unwrap_err();
    assert_eq!(non_finite(e).0, "dense0.weight");
    let allow = LoadOptions {
        allow_non_finite: true,
        ..LoadOptions::default()
    };
    load_parameters_into_with(&mut q, &path, allow).unwrap();
    assert!(q.0[0][4].is_nan());
    let mut ck = checkpoint();
    ck.optimizer.buffers[0].1[5] = f32::INFINITY;
    save_checkpoint(&p, &meta(), &ck, &path).unwrap();
    let (_, c) = load_checkpoint_into_with(&mut q, &path, allow).unwrap();
    assert_eq!(c, ck);
}
