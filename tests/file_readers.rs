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
