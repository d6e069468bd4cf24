//! Resources stay bounded: the bytes a training run holds do not grow from one epoch to the
//! next on MNIST, and no step allocates, whatever the optimizer and loss, also at the start of
//! an epoch. A counting global allocator watches the calling thread (the test harness
//! allocates on its own threads).
//!
//! `tests/allocations.rs` covers the steps within an epoch for one network, loss and optimizer,
//! and bounds the `gemm` kernels' packing buffers; this file adds the other optimizers and
//! losses, the epoch boundaries, and live bytes across epochs on MNIST.

use nn::prelude::*;
use nn::runtime::data::{mnist, Dataset, Labels};
use nn::runtime::loss::{BinaryCrossEntropy, CrossEntropy, Huber, Loss, Mse};
use nn::runtime::optim::{AdaMax, Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nn::runtime::train::{CheckpointEvery, Control, Progress, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Mutex;

/// Counts the calling thread's allocations and live bytes (allocated minus freed).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(allocations: usize, bytes: isize) {
    // `try_with`: a thread being torn down has no counters left, and must still allocate.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + allocations));
    let _ = LIVE.try_with(|c| c.set(c.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Tests run one at a time: the kernel switch is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

network! { Mnist < dense(784 -> 128, relu), dropout(0.2), dense(128 -> 10, softmax) > }

#[test]
fn live_bytes_stay_flat_across_epochs_on_mnist() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    nn::runtime::kernel::set_threads(1);
    let dir = std::env::var_os("NN_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"));
    let file = |name: &str| dir.join(format!("{name}.gz"));
    let all = mnist::load_pair::<f32, 784>(
        file("t10k-images-idx3-ubyte"),
        file("t10k-labels-idx1-ubyte"),
    )
    .expect("the MNIST test files");
    let train = all
        .subset(&(0..6000).collect::<Vec<_>>())
        .expect("a subset");
    let val = all
        .subset(&(9000..10_000).collect::<Vec<_>>())
        .expect("a subset");
    drop(all);
    let ckpt = tempfile::tempdir().expect("temporary directory");
    let mut net = Mnist::new(&mut StdRng::seed_from_u64(7));
    const EPOCHS: usize = 5;
    let mut live_after = Vec::with_capacity(EPOCHS);
    let mut accuracy = 0.0;
    let mut at_batch = Vec::with_capacity(EPOCHS * 100);
    Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(EPOCHS)
        .batch_size(64)
        .l2(1e-5)
        .progress(Progress::Off)
        .checkpoint(
            ckpt.path().join("mnist.safetensors"),
            CheckpointEvery::Epoch,
        )
        .on_batch(|b| {
            at_batch.push((b.epoch, allocations()));
            Control::Continue
        })
        .on_epoch(|r| {
            live_after.push(live());
            accuracy = r.val_metrics.and_then(|m| m.accuracy()).unwrap_or(0.0);
            Control::Continue
        })
        .fit(&mut net, &train, Some(&val))
        .expect("training");
    println!(
        "live bytes after epochs 1..={EPOCHS} on 6000 MNIST images: {live_after:?} \
         (validation accuracy {accuracy:.3})"
    );
    assert_eq!(live_after.len(), EPOCHS);
    // Epoch 1 allocates what training keeps (optimizer buffers, tape, kernel caches, the
    // history); from epoch 2 on nothing is added.
    for (e, &bytes) in live_after.iter().enumerate().skip(2) {
        assert!(
            bytes <= live_after[1],
            "epoch {}: {bytes} live bytes, {} after epoch 2",
            e + 1,
            live_after[1]
        );
    }
    assert!(accuracy > 0.8, "it did learn: {accuracy}");
    // The `gemm` kernels' packing buffers are all a step allocates (see tests/allocations.rs):
    // at most two per matrix product, five products per step (two forward, three backward).
    let per_step: Vec<usize> = at_batch
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1 - w[0].1)
        .collect();
    let max = per_step.iter().copied().max().unwrap_or(0);
    println!(
        "allocations per step after the first of each epoch (gemm kernels): at most {max}, {} in {} steps",
        per_step.iter().sum::<usize>(),
        per_step.len()
    );
    assert!(max <= 2 * 5, "allocations per step: {per_step:?}");
}

network! { Classifier < dense(6 -> 16, relu), dropout(0.25), dense(16 -> 3, softmax) > }
network! { Regressor < dense(6 -> 12, tanh), dense(12 -> 2) > }
network! { Binary < dense(6 -> 8, gelu), dense(8 -> 2, sigmoid) > }

/// Twelve batches of eight samples: inputs, class labels below 3, and two targets in {0, 1}.
fn samples() -> (Vec<f32>, Vec<usize>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(3);
    let n = 96;
    let x: Vec<f32> = (0..6 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let classes = (0..n)
        .map(|i| usize::from(x[6 * i] > 0.0) + usize::from(x[6 * i + 1] > 0.3))
        .collect();
    let values = (0..2 * n)
        .map(|i| f32::from(u8::from(x[3 * i] > 0.0)))
        .collect();
    (x, classes, values)
}

/// Allocations of every step of a 4-epoch run (the reference kernel, which needs no
/// workspace): within each epoch from the second step, and from the end of epochs 2 and 3 to
/// the first step of the next (the history has room, so nothing there may allocate).
fn steps<N, const IN: usize, const OUT: usize>(
    loss: impl Loss<f32>,
    optimizer: impl Optimizer<f32>,
    data: &Dataset<f32, IN>,
) -> (usize, usize)
where
    N: Network<IN, OUT, Scalar = f32>,
{
    let mut net = N::init(&mut StdRng::seed_from_u64(1));
    // Counts at every batch's end, and at every epoch's end.
    let mut batches = Vec::with_capacity(64);
    let mut epochs = Vec::with_capacity(8);
    Trainer::new(loss, optimizer)
        .epochs(4)
        .batch_size(8)
        .l1(1e-5)
        .l2(1e-4)
        .progress(Progress::Off)
        .on_batch(|b| {
            batches.push((b.epoch, b.batch, allocations()));
            Control::Continue
        })
        .on_epoch(|r| {
            epochs.push((r.epoch, allocations()));
            Control::Continue
        })
        .fit(&mut net, data, None)
        .expect("training");
    assert_eq!((batches.len(), epochs.len()), (48, 4));
    let within: usize = batches
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].2 - w[0].2)
        .sum();
    let boundaries: usize = epochs[1..3]
        .iter()
        .map(|&(e, at_end)| {
            let first = batches.iter().find(|b| b.0 == e + 1 && b.1 == 0);
            first.map_or(usize::MAX, |b| b.2 - at_end)
        })
        .sum();
    (within, boundaries)
}

#[test]
fn no_step_allocates_with_any_optimizer_or_loss() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    nn::runtime::kernel::use_reference_gemm(true);
    let (x, classes, values) = samples();
    let by_class = Dataset::<f32, 6>::from_slices(
        &x,
        Labels::Classes {
            labels: classes,
            classes: 3,
        },
    )
    .expect("valid data");
    let by_value =
        Dataset::<f32, 6>::from_slices(&x, Labels::Values { values, rows: 2 }).expect("valid");
    let mut results = Vec::new();
    macro_rules! run {
        ($net:ty, $data:expr, $loss:expr, $opt:expr) => {
            results.push((
                format!("{} + {}", stringify!($loss), stringify!($opt)),
                steps::<$net, 6, _>($loss, $opt, $data),
            ))
        };
    }
    run!(
        Classifier,
        &by_class,
        CrossEntropy,
        Sgd::new(0.05).momentum(0.9).nesterov(true)
    );
    run!(
        Classifier,
        &by_class,
        CrossEntropy,
        Adagrad::new(0.05).lr_decay(0.01)
    );
    run!(
        Classifier,
        &by_class,
        CrossEntropy,
        RmsProp::new(0.01).momentum(0.5).centered(true)
    );
    run!(
        Classifier,
        &by_class,
        CrossEntropy,
        Adam::new(0.01).amsgrad(true)
    );
    run!(Classifier, &by_class, CrossEntropy, AdaMax::new(0.01));
    run!(Classifier, &by_class, CrossEntropy, AdamW::new(0.01));
    run!(Regressor, &by_value, Mse, Sgd::new(0.05));
    run!(Regressor, &by_value, Huber::new(0.5), Adam::new(0.01));
    run!(Binary, &by_value, BinaryCrossEntropy, RmsProp::new(0.01));
    nn::runtime::kernel::use_reference_gemm(false);
    for (what, (within, boundaries)) in &results {
        println!("{what}: {within} allocations in 44 steps within epochs, {boundaries} across 2 epoch starts");
    }
    assert!(
        results.iter().all(|(_, r)| *r == (0, 0)),
        "steps allocated: {results:?}"
    );
}
