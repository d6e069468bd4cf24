//! Every file reader survives any file: valid MNIST IDX files (raw and gzip), CSV files,
//! safetensors parameter files and checkpoints, truncated and with bytes flipped, inserted or
//! removed, load or give an error naming the file; nothing panics. A header claiming billions
//! of items is refused before anything large is allocated (a counting allocator watches the
//! calling thread).
//!
//! The cases per target are printed (`cargo test --test file_readers -- --nocapture`).

use nn::prelude::*;
use nn::runtime::data::{csv, mnist, Dataset, Labels};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::{Adam, Optimizer};
use nn::runtime::persist;
use nn::runtime::train::{CheckpointEvery, Progress, TrainError, Trainer};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Display;
use std::io::Write;
use std::path::Path;

/// Records the largest single allocation of the calling thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: a thread being torn down has no counter left, and must still allocate.
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The largest single allocation `f` makes on this thread, and its result.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (usize, R) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (LARGEST.with(Cell::get), r)
}

/// Cases per target; the proptest default (256) keeps a debug build fast.
const CASES: u32 = 256;

/// A change to a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep the bytes before this position.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Insert a byte.
    Insert(Index, u8),
    /// Remove a byte.
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

/// One to four mutations, applied in order.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=4)
}

fn apply(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in mutations {
        match m {
            Mutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
            Mutation::Flip(i, mask) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] ^= mask;
            }
            Mutation::Insert(i, byte) => b.insert(i.index(b.len() + 1), *byte),
            Mutation::Remove(i) if !b.is_empty() => {
                b.remove(i.index(b.len()));
            }
            Mutation::Flip(..) | Mutation::Remove(_) => {}
        }
    }
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Five 3 x 3 images and their labels, as IDX files.
fn idx_files() -> (Vec<u8>, Vec<u8>) {
    let pixels = (0..45u8).map(|p| p.wrapping_mul(37));
    let images = be(&[mnist::IMAGES_MAGIC, 5, 3, 3])
        .into_iter()
        .chain(pixels)
        .collect();
    let labels = [be(&[mnist::LABELS_MAGIC, 5]), vec![3, 1, 4, 1, 5]].concat();
    (images, labels)
}

/// Checks that a result is `Ok` or an error whose message names `file`.
fn named<T, E: Display>(r: Result<T, E>, file: &Path) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let message = e.to_string();
            let name = file.display().to_string();
            prop_assert!(message.contains(&name), "`{message}` does not name {name}");
            Ok(None)
        }
    }
}

/// Runs `check` on `CASES` mutations of `valid` written to a file; returns the cases run and
/// how many of them loaded.
fn fuzz(
    target: &str,
    valid: &[u8],
    check: impl Fn(&Path) -> Result<bool, TestCaseError>,
) -> (u32, u32) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join(format!("{target}.bin"));
    std::fs::write(&file, valid).expect("written");
    assert!(
        matches!(check(&file), Ok(true)),
        "{target}: the valid file must load"
    );
    let cases = Cell::new(0);
    let loaded = Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&mutations(), |m| {
        let bytes = apply(valid, &m);
        std::fs::write(&file, &bytes).expect("written");
        cases.set(cases.get() + 1);
        let ok = check(&file)?;
        loaded.set(loaded.get() + u32::from(ok));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
    println!(
        "{target}: {} mutated files, {} loaded, the others refused naming the file",
        cases.get(),
        loaded.get()
    );
    (cases.get(), loaded.get())
}

#[test]
fn idx_images_and_labels_raw() {
    let (images, labels) = idx_files();
    let dir = tempfile::tempdir().expect("temporary directory");
    let good_labels = dir.path().join("labels");
    let good_images = dir.path().join("images");
    std::fs::write(&good_labels, &labels).expect("written");
    std::fs::write(&good_images, &images).expect("written");
    let (cases, _) = fuzz("idx-images", &images, |f| {
        let read = named(mnist::read_images(f), f)?;
        if let Some(img) = &read {
            prop_assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
        }
        let pair = named(mnist::load_pair::<f32, 9>(f, &good_labels), f)?;
        Ok(read.is_some() && pair.is_some())
    });
    assert_eq!(cases, CASES);
    let (cases, _) = fuzz("idx-labels", &labels, |f| {
        let read = named(mnist::read_labels(f), f)?;
        let pair = named(mnist::load_pair::<f32, 9>(&good_images, f), f)?;
        if let Some(d) = &pair {
            prop_assert_eq!(d.len(), 5);
        }
        Ok(read.is_some() && pair.is_some())
    });
    assert_eq!(cases, CASES);
}

#[test]
fn idx_images_and_labels_gzip() {
    let (images, labels) = idx_files();
    let (images, labels) = (gzip(&images), gzip(&labels));
    let dir = tempfile::tempdir().expect("temporary directory");
    let good_labels = dir.path().join("labels.gz");
    std::fs::write(&good_labels, &labels).expect("written");
    let (cases, _) = fuzz("idx-images-gzip", &images, |f| {
        let read = named(mnist::read_images(f), f)?;
        let pair = named(mnist::load_pair::<f64, 9>(f, &good_labels), f)?;
        Ok(read.is_some() && pair.is_some())
    });
    assert_eq!(cases, CASES);
    let (cases, _) = fuzz("idx-labels-gzip", &labels, |f| {
        Ok(named(mnist::read_labels(f), f)?.is_some())
    });
    assert_eq!(cases, CASES);
}

#[test]
fn csv_files() {
    let text = "a,b,c,label\n0.5,-1,2e3,2\n1,2,3,0\n-0.25,1e-3,7,1\n";
    let classes = csv::CsvOptions::classes(3);
    let values = csv::CsvOptions {
        target_column: csv::TargetColumn::Index(0),
        ..csv::CsvOptions::values(2)
    };
    let (cases, _) = fuzz("csv", text.as_bytes(), |f| {
        let d = named(csv::load::<f32, 3>(f, &classes), f)?;
        if let Some(d) = &d {
            prop_assert!(d.inputs().iter().all(|v| v.is_finite()));
        }
        let v = named(csv::load::<f64, 2>(f, &values), f)?;
        Ok(d.is_some() && v.is_some())
    });
    assert_eq!(cases, CASES);
}

/// A multi-megabyte CSV record is refused once it passes the record limit, with a small
/// allocation; a long bad field is quoted short; a raised limit reads a long valid record.
#[test]
fn csv_records_over_the_limit_are_refused_early() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("written");
        p
    };
    let limit = csv::DEFAULT_MAX_RECORD_BYTES;
    let refused = |p: &Path| {
        format!(
            "{}:2: the record is longer than the limit of {limit} bytes; raise it with \
             `CsvOptions::max_record_bytes` to read such records",
            p.display()
        )
    };
    // 64 MiB of `1,` on one line. Read whole, its 32 Mi field ends alone took 256 MiB.
    let line = [b"a,b,label\n".as_slice(), &b"1,".repeat(32 << 20)].concat();
    let p = file("line.csv", &line);
    let started = std::time::Instant::now();
    let (largest, r) = largest_allocation(|| csv::load::<f32, 2>(&p, &csv::CsvOptions::classes(2)));
    let e = r.expect_err("a record over the limit").to_string();
    assert_eq!(e, refused(&p));
    // The parser's field ends, 8 bytes per 2-byte field grown by doubling, dominate: 24 MiB
    // for the 4 MiB it read (a `1,` per field), against 256 MiB for the whole line.
    assert!(largest <= 8 * limit, "allocated {largest} bytes: {e}");
    println!(
        "64 MiB line: refused in {:.3} s, largest allocation {largest} bytes",
        started.elapsed().as_secs_f64()
    );

    // A 3 MB field (under the limit) that is no number: the message quotes 64 characters.
    let field = "z".repeat(3_000_000);
    let p = file("field.csv", format!("a,b,label\n1,{field},0\n").as_bytes());
    let e = csv::load::<f32, 2>(&p, &csv::CsvOptions::classes(2))
        .expect_err("not a number")
        .to_string();
    let name = p.display().to_string();
    assert_eq!(
        e,
        format!(
            "{name}:2, column 2 (`b`): `{}…` (3000000 bytes) is not a number",
            &field[..64]
        )
    );
    assert!(e.len() < name.len() + 130, "{} bytes: {e}", e.len());

    // A valid record of 6 MiB (a number with leading zeros): refused by default, read with
    // a higher limit.
    let zeros = "0".repeat(6 << 20);
    let p = file(
        "long.csv",
        format!("a,b,label\n1,{zeros}2.5,1\n").as_bytes(),
    );
    let e = csv::load::<f32, 2>(&p, &csv::CsvOptions::classes(2))
        .expect_err("a record over the default limit")
        .to_string();
    assert_eq!(e, refused(&p));
    let d = csv::load::<f32, 2>(&p, &csv::CsvOptions::classes(2).max_record_bytes(7 << 20))
        .expect("under the raised limit");
    assert_eq!(d.inputs().as_slice(), &[1.0, 2.5]);
    assert_eq!(
        d.labels(),
        &Labels::Classes {
            labels: vec![1],
            classes: 2
        }
    );
}

network! { #[derive(Debug)] Small < dense(4 -> 3, relu), dropout(0.5), dense(3 -> 2, softmax) > }

#[test]
fn safetensors_parameter_files() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("small.safetensors");
    let net = Small::new(&mut StdRng::seed_from_u64(1));
    persist::save(&net, &path).expect("saved");
    let valid = std::fs::read(&path).expect("read");
    let (cases, _) = fuzz("safetensors", &valid, |f| {
        let mut into = Small::new(&mut StdRng::seed_from_u64(2));
        let before = into.to_flat();
        let loaded = named(persist::load_into(&mut into, f), f)?;
        if loaded.is_none() {
            prop_assert_eq!(into.to_flat(), before, "a refused file changed the network");
        }
        Ok(named(persist::load::<Small, 4, 2>(f), f)?.is_some())
    });
    assert_eq!(cases, CASES);
}

fn four_samples() -> Dataset<f32, 4> {
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin()).collect();
    let labels = vec![0, 1, 1, 0];
    Dataset::from_slices(&x, Labels::Classes { labels, classes: 2 }).expect("valid data")
}

#[test]
fn checkpoint_files() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ckpt.safetensors");
    let data = four_samples();
    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    Trainer::new(CrossEntropy, Adam::new(1e-2))
        .epochs(2)
        .batch_size(2)
        .progress(Progress::Off)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut net, &data, None)
        .expect("training");
    let valid = std::fs::read(&path).expect("read");
    let (cases, _) = fuzz("checkpoint", &valid, |f| {
        let mut into = Small::new(&mut StdRng::seed_from_u64(2));
        let before = into.to_flat();
        let Some((_, ck)) = named(persist::load_checkpoint_into(&mut into, f), f)? else {
            prop_assert_eq!(into.to_flat(), before, "a refused file changed the network");
            return Ok(false);
        };
        // What resuming does next: the optimizer state against the network's layout.
        let mut adam = Adam::<f32>::new(1e-2);
        let state = adam.load_state_for(&ck.optimizer, Small::TENSORS);
        // Resuming: errors from the file name it; training itself may then stop on weights
        // made non-finite by a flip, which is no reader error.
        let resumed = Trainer::new(CrossEntropy, Adam::new(1e-2))
            .epochs(3)
            .batch_size(2)
            .progress(Progress::Off)
            .resume_from(f)
            .fit(&mut into, &data, None);
        match resumed {
            Err(TrainError::NonFinite { .. }) => {}
            r => {
                named(r, f)?;
            }
        }
        Ok(state.is_ok())
    });
    assert_eq!(cases, CASES);
}

/// Files whose headers claim billions of items, each refused with a small allocation.
#[test]
fn headers_claiming_billions_are_refused_before_allocating() {
    const LIMIT: usize = 1 << 20;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("written");
        p
    };
    let (images, labels) = idx_files();
    let good_labels = file("labels", &labels);
    let huge_images = [
        be(&[mnist::IMAGES_MAGIC, 4_000_000_000, 28, 28]),
        images[16..].to_vec(),
    ]
    .concat();
    let huge_labels = [be(&[mnist::LABELS_MAGIC, 4_000_000_000]), vec![1; 64]].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("images", huge_images.clone()),
        ("images.gz", gzip(&huge_images)),
        // A gzip stream as long as the claim could fill, if it were all zeros.
        (
            "zeros.gz",
            gzip(&[huge_images.clone(), vec![0; 4 << 20]].concat()),
        ),
        ("labels", huge_labels.clone()),
        ("labels.gz", gzip(&huge_labels)),
    ];
    for (name, bytes) in &cases {
        let p = file(name, bytes);
        let (largest, r) = largest_allocation(|| {
            if name.starts_with("labels") {
                mnist::read_labels(&p).map(|l| l.len())
            } else {
                mnist::read_images(&p).map(|i| i.count)
            }
        });
        let e = r.expect_err("a claim the file cannot hold").to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("4000000000"), "{e}");
        assert!(
            largest < LIMIT,
            "{name}: allocated {largest} bytes before refusing: {e}"
        );
        println!("{name}: refused, largest allocation {largest} bytes: {e}");
    }
    // The same through `load_pair`, which also checks the image size.
    let p = file("pair-images.gz", &gzip(&huge_images));
    let (largest, r) = largest_allocation(|| mnist::load_pair::<f32, 784>(&p, &good_labels));
    assert!(r.is_err() && largest < LIMIT, "{largest}");

    // A safetensors header with a tensor of 4e9 x 4e9 values: refused by the parser.
    let mut header = br#"{"dense0.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,48]}}"#.to_vec();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let bytes = [
        (header.len() as u64).to_le_bytes().as_slice(),
        &header,
        &[0; 48],
    ]
    .concat();
    let p = file("huge.safetensors", &bytes);
    let (largest, r) = largest_allocation(|| persist::load::<Small, 4, 2>(&p));
    let e = r.expect_err("a shape the file cannot hold").to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(largest < LIMIT, "allocated {largest} bytes: {e}");
}

// -------------------------------------------------------------------------------------------
// Safetensors files are read header first (`persist`): a header length or tensor extents the
// file cannot hold are refused after reading a few bytes, and tensor data is read only once
// every tensor matches the network. Sparse files (`File::set_len`) make the claims cheap to
// write and would be expensive to read whole.
// -------------------------------------------------------------------------------------------

/// `Small`'s tensors as a file holds them: name and shape.
fn small_layout() -> Vec<(String, Vec<u64>)> {
    let shape = |t: &nn::runtime::network::TensorInfo| {
        if t.is_bias {
            vec![t.rows as u64]
        } else {
            vec![t.rows as u64, t.cols as u64]
        }
    };
    Small::TENSORS
        .iter()
        .map(|t| (t.name.to_owned(), shape(t)))
        .collect()
}

/// The start of a safetensors file of `F32` tensors (name, shape) in this order with
/// `metadata` (if not null): the header length and the header; returns it and the length of
/// the data section the header claims.
fn safetensors_header(
    tensors: &[(String, Vec<u64>)],
    metadata: &serde_json::Value,
) -> (Vec<u8>, u64) {
    let mut map = serde_json::Map::new();
    if !metadata.is_null() {
        map.insert("__metadata__".into(), metadata.clone());
    }
    let mut end = 0u64;
    for (name, shape) in tensors {
        let bytes = 4 * shape.iter().product::<u64>();
        let entry =
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [end, end + bytes]});
        map.insert(name.clone(), entry);
        end += bytes;
    }
    let mut json = serde_json::to_vec(&map).expect("in memory");
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let start = [(json.len() as u64).to_le_bytes().as_slice(), &json].concat();
    (start, end)
}

/// A file of `len` bytes beginning with `start`, the rest a hole that reads as zeros.
fn sparse_file(path: &Path, start: &[u8], len: u64) {
    let mut f = std::fs::File::create(path).expect("created");
    f.write_all(start).expect("written");
    f.set_len(len).expect("sized");
}

/// Runs `load` on `p`; it must be done within 2 s (it reads a few hundred bytes, not
/// gigabytes), allocating less than 1 MiB at a time. Returns its result and what it took.
fn cheaply<T>(p: &Path, load: impl FnOnce(&Path) -> T) -> T {
    let started = std::time::Instant::now();
    let (largest, r) = largest_allocation(|| load(p));
    let seconds = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(p).expect("exists").len();
    println!(
        "{}: {size} bytes, done in {seconds:.4} s, largest allocation {largest} bytes",
        p.display()
    );
    assert!(
        largest < 1 << 20,
        "{}: allocated {largest} bytes",
        p.display()
    );
    assert!(seconds < 2.0, "{}: took {seconds} s", p.display());
    r
}

/// `r`'s error message, which must name `p` and contain `needle`.
fn refusal<T>(r: Result<T, persist::PersistError>, p: &Path, needle: &str) -> String {
    let e = match r {
        Ok(_) => panic!("{}: loaded", p.display()),
        Err(e) => e.to_string(),
    };
    assert!(e.starts_with(&p.display().to_string()), "{e}");
    assert!(e.contains(needle), "`{e}` lacks `{needle}`");
    println!("  {e}");
    e
}

#[test]
fn safetensors_claims_beyond_a_sparse_file_are_refused_reading_only_the_header() {
    const SIZE: u64 = 6 << 30;
    let dir = tempfile::tempdir().expect("temporary directory");
    let load = |p: &Path| persist::load::<Small, 4, 2>(p);

    // A header length past the end of the file.
    let p = dir.path().join("claims-2^60.safetensors");
    sparse_file(&p, &(1u64 << 60).to_le_bytes(), SIZE);
    let needle = format!(
        "header length is {} bytes, but only {} bytes follow it",
        1u64 << 60,
        SIZE - 8
    );
    refusal(cheaply(&p, load), &p, &needle);

    // A header length the file could hold, over the cap.
    let p = dir.path().join("claims-4gib.safetensors");
    sparse_file(&p, &(4u64 << 30).to_le_bytes(), SIZE);
    refusal(cheaply(&p, load), &p, "more than the limit of 100000000");

    // Under the cap: the header is streamed, so its zeros are refused at the first byte
    // (reading the claimed length first would allocate 99,999,992 bytes).
    let p = dir.path().join("claims-99mb.safetensors");
    sparse_file(&p, &99_999_992u64.to_le_bytes(), SIZE);
    refusal(
        cheaply(&p, load),
        &p,
        "not a valid safetensors file: header:",
    );

    // A valid header with the network's tensors and one more of 32 GiB in a 6 GiB file.
    let mut tensors = small_layout();
    tensors.push(("optim.huge".into(), vec![1 << 33]));
    let (start, _) = safetensors_header(&tensors, &serde_json::Value::Null);
    let p = dir.path().join("huge-tensor.safetensors");
    sparse_file(&p, &start, SIZE);
    let needle = format!(
        "tensor `optim.huge`: data_offsets [{}, {}] end beyond the file's {} bytes of tensor data",
        4 * 23,
        4 * 23 + (4u64 << 33),
        SIZE - start.len() as u64
    );
    refusal(cheaply(&p, load), &p, &needle);

    // The network's own tensors, the file cut off after their header.
    let (start, data) = safetensors_header(&small_layout(), &serde_json::Value::Null);
    assert_eq!(data, 4 * 23, "Small has 23 parameters");
    let p = dir.path().join("no-data.safetensors");
    sparse_file(&p, &start, start.len() as u64 + data - 1);
    refusal(
        cheaply(&p, load),
        &p,
        "end beyond the file's 91 bytes of tensor data",
    );
}

#[test]
fn safetensors_tensors_the_network_does_not_read_cost_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A checkpoint of Small whose one optimizer buffer fills a 6 GiB hole: consistent, so
    // loading the parameters alone skips the buffer, and loading the checkpoint refuses it
    // by its shape before reading it.
    let huge = (6u64 << 30) / 4;
    let mut tensors = small_layout();
    tensors.push(("optim.dense0.weight.exp_avg".into(), vec![huge]));
    let metadata = serde_json::json!({
        "nn.epoch": "1", "nn.optim.name": "Adam", "nn.optim.step": "2", "nn.optim.lr": "0.01",
        "nn.optim.buffers": "[\"dense0.weight.exp_avg\"]", "nn.extra": "{}",
    });
    let (start, data) = safetensors_header(&tensors, &metadata);
    let p = dir.path().join("huge-buffer.safetensors");
    sparse_file(&p, &start, start.len() as u64 + data);

    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    cheaply(&p, |p| persist::load_into(&mut net, p)).expect("the parameters load");
    assert!(
        net.to_flat().iter().all(|&v| v == 0.0),
        "the hole reads as zeros"
    );

    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    let before = net.to_flat();
    let r = cheaply(&p, |p| persist::load_checkpoint_into(&mut net, p));
    let needle = format!("tensor `optim.dense0.weight.exp_avg` has shape [{huge}], expected [12]");
    refusal(r, &p, &needle);
    assert_eq!(
        net.to_flat(),
        before,
        "a refused checkpoint changed the network"
    );
}

#[test]
fn safetensors_mismatch_messages_stay_short_with_100000_unexpected_tensors() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut tensors = small_layout();
    tensors.extend((0..100_000).map(|i| (format!("stray.{i:06}"), vec![1])));
    let (start, data) = safetensors_header(&tensors, &serde_json::Value::Null);
    let p = dir.path().join("strays.safetensors");
    sparse_file(&p, &start, start.len() as u64 + data);

    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    let before = net.to_flat();
    let e = persist::load_into(&mut net, &p).expect_err("unexpected tensors");
    assert_eq!(net.to_flat(), before, "a refused file changed the network");
    let message = e.to_string();
    let strays: Vec<String> = (0..5)
        .map(|i| format!("unexpected tensor `stray.{i:06}`"))
        .collect();
    let expected = format!(
        "{}: does not match the parameters: {}; … and 99995 more",
        p.display(),
        strays.join("; ")
    );
    assert_eq!(message, expected);
    let debug = format!("{e:?}");
    println!(
        "{} tensors in a {}-byte header: a message of {} bytes, Debug {} bytes",
        tensors.len(),
        start.len(),
        message.len(),
        debug.len()
    );
    assert!(
        debug.len() < 1000 && debug.contains("… and 99995 more"),
        "{debug}"
    );
    match e {
        persist::PersistError::Mismatch { problems, .. } => assert_eq!(problems.len(), 100_000),
        other => panic!("{other:?}"),
    }
}

/// Overwrites value `k` (row-major) of tensor `name` in safetensors `bytes` with `value`.
fn set_f32(bytes: &mut [u8], name: &str, k: usize, value: f32) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("a header");
    let start = header[name]["data_offsets"][0].as_u64().expect("offsets") as usize;
    let at = 8 + n + start + 4 * k;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn safetensors_checkpoints_with_non_finite_values_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ckpt.safetensors");
    let data = four_samples();
    let trainer = |epochs| {
        Trainer::new(CrossEntropy, Adam::new(1e-2))
            .epochs(epochs)
            .batch_size(2)
            .progress(Progress::Off)
    };
    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    trainer(1)
        .checkpoint(&path, CheckpointEvery::Epoch)
        .fit(&mut net, &data, None)
        .expect("training");
    let valid = std::fs::read(&path).expect("read");
    let allow = persist::LoadOptions {
        allow_non_finite: true,
        ..persist::LoadOptions::default()
    };
    let cases = [
        ("dense1.weight", 3, f32::NAN, "NaN at index 3"),
        (
            "optim.dense0.bias.exp_avg_sq",
            1,
            f32::NEG_INFINITY,
            "-inf at index 1",
        ),
    ];
    for (tensor, k, value, needle) in cases {
        let mut bytes = valid.clone();
        set_f32(&mut bytes, tensor, k, value);
        let f = dir.path().join(format!("{tensor}.safetensors"));
        std::fs::write(&f, &bytes).expect("written");
        let expected = format!(
            "{}: tensor `{tensor}` holds the non-finite value {needle} (row-major)",
            f.display()
        );
        let mut into = Small::new(&mut StdRng::seed_from_u64(2));
        let before = into.to_flat();
        let e = persist::load_checkpoint_into(&mut into, &f).expect_err("non-finite");
        assert_eq!(e.to_string(), expected);
        assert_eq!(
            into.to_flat(),
            before,
            "a refused checkpoint changed the network"
        );
        // Resuming from it is refused the same way, changing nothing.
        let e = trainer(2)
            .resume_from(&f)
            .fit(&mut into, &data, None)
            .expect_err("non-finite");
        assert!(e.to_string().contains(&expected), "{e}");
        assert_eq!(
            into.to_flat(),
            before,
            "a refused resume changed the network"
        );
        // Opted in, the value is there.
        let (_, ck) = persist::load_checkpoint_into_with(&mut into, &f, allow).expect("allowed");
        let loaded = match tensor.strip_prefix("optim.") {
            Some(buffer) => {
                let (_, v) = ck
                    .optimizer
                    .buffers
                    .iter()
                    .find(|(n, _)| n == buffer)
                    .expect("buffer");
                v[k]
            }
            // Row-major index 3 of the 2 x 3 weight is row 1, column 0: column-major 0 * 2 + 1,
            // after dense0's 12 + 3 values.
            None => into.to_flat()[15 + 1],
        };
        assert_eq!(loaded.to_bits(), value.to_bits(), "{tensor}");
    }
}
