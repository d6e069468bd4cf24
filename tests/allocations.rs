//! A training step after the first allocates nothing: a counting global allocator watches the
//! trainer between batches (gather, forward, loss, backward, penalties, clipping, optimizer,
//! and the matrix products with the default packed kernels, on one thread or two).

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::kernel::Kernel;
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::train::{Clip, Control, Progress, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;

/// Counts the allocations of the calling thread (the test harness allocates on its own
/// threads while a test runs; those are not the code under test).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter left, and must still allocate.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made by this thread so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tests in this file run one at a time (the kernel switch below is process-wide).
static SERIAL: Mutex<()> = Mutex::new(());

network! { Net < dense(20 -> 32, relu), dropout(0.2), dense(32 -> 16, tanh), dense(16 -> 5, softmax) > }
network! {
    Normed < dense(20 -> 32, bias = false), batch_norm, relu, dense(32 -> 16), layer_norm, tanh,
        dense(16 -> 5, softmax) >
}

fn data(n: usize) -> Dataset<f32, 20> {
    let x: Vec<f32> = (0..20 * n)
        .map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let labels = (0..n).map(|i| (i * 7) % 5).collect();
    Dataset::from_slices(&x, Labels::Classes { labels, classes: 5 }).expect("valid data")
}

/// Trains two epochs and returns the allocations counted between consecutive batches.
fn allocations_per_step() -> Vec<usize> {
    allocations_per_step_of::<Net>()
}

/// [`allocations_per_step`] for the network `N`.
fn allocations_per_step_of<N: Network<20, 5, Scalar = f32>>() -> Vec<usize> {
    let train = data(64 * 10);
    let mut net = N::init(&mut StdRng::seed_from_u64(1));
    let mut counts = Vec::with_capacity(64); // never grows: its pushes allocate nothing
    let mut trainer = Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(2)
        .batch_size(64)
        .l2(1e-4)
        .l1(1e-5)
        .clip(Clip::Norm(1.0))
        .progress(Progress::Off)
        .on_batch(|_| {
            counts.push(allocations());
            Control::Continue
        });
    trainer.fit(&mut net, &train, None).expect("training");
    drop(trainer);
    assert_eq!(counts.len(), 20);
    // Within each epoch, from the second batch on.
    counts
        .chunks(10)
        .flat_map(|epoch| epoch.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>())
        .collect()
}

/// Matrix products per training step of `Net`: one per dense layer forward, and per dense
/// layer backward one for the weight gradient plus one for the input gradient (not for the
/// first layer).
const PRODUCTS_PER_STEP: usize = 3 + 3 + 2;

/// Trains with `kernel` behind every product and returns the allocations per step.
fn allocations_per_step_with(kernel: Kernel) -> Vec<usize> {
    nn::runtime::kernel::set_kernel(kernel);
    let per_step = allocations_per_step();
    nn::runtime::kernel::set_kernel(nn::runtime::kernel::DEFAULT_KERNEL);
    per_step
}

#[test]
fn training_steps_after_the_first_allocate_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // With the default (packed) kernels: gather, forward, loss, backward, penalties,
    // clipping and the optimizer reuse their buffers, and the products their per-thread
    // packing workspaces.
    assert_eq!(nn::runtime::kernel::DEFAULT_KERNEL, Kernel::Packed);
    let per_step = allocations_per_step_with(Kernel::Packed);
    assert!(
        per_step.iter().all(|&a| a == 0),
        "allocations per step: {per_step:?}"
    );
    println!(
        "allocations per step after the first (packed kernels): 0 over {} steps",
        per_step.len()
    );
}

/// Batch norm and layer norm record into their own tapes, grown once.
#[test]
fn normalized_training_steps_allocate_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let per_step = allocations_per_step_of::<Normed>();
    assert!(
        per_step.iter().all(|&a| a == 0),
        "allocations per step: {per_step:?}"
    );
}

#[test]
fn the_loop_kernel_allocates_nothing_either() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let per_step = allocations_per_step_with(Kernel::Reference);
    assert!(
        per_step.iter().all(|&a| a == 0),
        "allocations per step: {per_step:?}"
    );
}

#[test]
fn the_gemm_crate_allocates_at_most_its_packing_buffers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The `gemm` crate allocates packing buffers inside some products: why it is not the
    // default. The rest of the step allocates nothing (the tests above), so that is all.
    let per_step = allocations_per_step_with(Kernel::GemmCrate);
    let max = per_step.iter().copied().max().unwrap_or(0);
    println!(
        "allocations per step after the first (gemm crate): {max} for {PRODUCTS_PER_STEP} products"
    );
    assert!(
        max <= 2 * PRODUCTS_PER_STEP,
        "allocations per step: {per_step:?}"
    );
}

network! { Wide < dense(256 -> 256, relu), dense(256 -> 4, softmax) > }

#[cfg(feature = "threads")]
#[test]
fn products_split_over_threads_allocate_nothing_on_the_calling_thread() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 256 x 64 x 256 products are large enough to be split over two threads; the helper
    // threads are started (and their workspaces grown) during the first step.
    let n = 64 * 6;
    let x: Vec<f32> = (0..256 * n)
        .map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let labels = (0..n).map(|i| (i * 7) % 4).collect();
    let train = Dataset::<f32, 256>::from_slices(&x, Labels::Classes { labels, classes: 4 })
        .expect("valid data");
    let mut net = Wide::new(&mut StdRng::seed_from_u64(3));
    let mut counts = Vec::with_capacity(16);
    let threads = nn::runtime::kernel::threads();
    nn::runtime::kernel::set_threads(2);
    let mut trainer = Trainer::new(CrossEntropy, Adam::new(1e-3))
        .epochs(1)
        .batch_size(64)
        .progress(Progress::Off)
        .on_batch(|_| {
            counts.push(allocations());
            Control::Continue
        });
    let fitted = trainer.fit(&mut net, &train, None);
    drop(trainer);
    nn::runtime::kernel::set_threads(threads);
    fitted.expect("training");
    assert_eq!(counts.len(), 6);
    #[cfg(target_os = "linux")]
    {
        // A helper thread was started. It takes its name when it first runs, which on a busy
        // machine may come after the last of these few steps (the calling thread then ran
        // every part itself): wait for it up to 5 s.
        let helpers = || {
            std::fs::read_dir("/proc/self/task")
                .expect("task list")
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "nn-gemm")
                .count()
        };
        let waited = std::time::Instant::now();
        while helpers() == 0 && waited.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(helpers() >= 1, "no helper thread was started");
    }
    let per_step: Vec<usize> = counts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        per_step.iter().all(|&a| a == 0),
        "allocations per step: {per_step:?}"
    );
}

#[test]
fn predict_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(&mut StdRng::seed_from_u64(2));
    let x = SVector::<f32, 20>::from_fn(|i, _| i as f32 / 20.0 - 0.5);
    let first = net.predict(&x);
    let before = allocations();
    let mut same = true;
    for _ in 0..100 {
        same &= net.predict(&x) == first;
    }
    let allocations = allocations() - before;
    assert!(same);
    assert_eq!(allocations, 0, "predict allocated");
    let normed = Normed::new(&mut StdRng::seed_from_u64(2));
    let first = normed.predict(&x);
    let before = self::allocations();
    let same = (0..100).all(|_| normed.predict(&x) == first);
    assert!(same);
    assert_eq!(
        self::allocations() - before,
        0,
        "predict with norms allocated"
    );
}
