//! Matrix kernels behind every dense layer.
//!
//! All matrices are column-major slices (a batch is one column per sample). Products go to a
//! blocked, vectorized GEMM: our own packed kernel by default (AVX2/AVX-512 chosen at run
//! time, packing buffers reused per thread, so no allocation once warm), or the `gemm` crate with its
//! `x86-v4` kernels ([`set_kernel`]); the single-sample product has its own matrix-vector kernel, since a
//! general GEMM is slow on a `1 x k x n` product.

use crate::scalar::Float;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

mod governor;
mod packed;
pub use governor::{GovernedStep, ThreadGovernor};
pub(crate) use packed::Isa;

/// Which implementation [`gemm()`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Our own packed, register-blocked GEMM: packing buffers in per-thread workspaces that
    /// are reused, so steady-state products allocate nothing.
    Packed,
    /// The `gemm` crate, which allocates packing buffers inside some products.
    GemmCrate,
    /// [`reference_gemm`]: plain loops, slow, no workspace.
    Reference,
}

/// The kernel [`gemm()`] runs, as `Kernel as u8`.
static KERNEL: AtomicU8 = AtomicU8::new(DEFAULT_KERNEL as u8);

/// Chooses the implementation behind every [`gemm()`] call (process-wide).
pub fn set_kernel(kernel: Kernel) {
    KERNEL.store(kernel as u8, Ordering::Relaxed);
}

/// The implementation behind [`gemm()`].
pub fn kernel() -> Kernel {
    match KERNEL.load(Ordering::Relaxed) {
        x if x == Kernel::Packed as u8 => Kernel::Packed,
        x if x == Kernel::Reference as u8 => Kernel::Reference,
        _ => Kernel::GemmCrate,
    }
}

/// Sends every product through [`reference_gemm`] (`true`), or back to the default blocked
/// kernel (`false`). Same as [`set_kernel`] with [`Kernel::Reference`].
pub fn use_reference_gemm(yes: bool) {
    set_kernel(if yes {
        Kernel::Reference
    } else {
        DEFAULT_KERNEL
    });
}

/// The kernel [`gemm()`] runs unless told otherwise: our packed GEMM, free of allocation once
/// its workspaces have grown. Against the `gemm` crate with its AVX-512 (`x86-v4`) kernels
/// (`examples/gemm_bench.rs`) it is faster on the ten-row output-layer products (1.4-2.3x) and
/// slower on the large ones (0.76-0.92x), about 0.85x on a whole W1 or W2 step's products.
pub const DEFAULT_KERNEL: Kernel = Kernel::Packed;

/// Threads for large products; 0 means "not set yet: read `NN_NUM_THREADS`, default 1".
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// With the `gemm` crate ([`Kernel::GemmCrate`], which splits products over rayon's
/// threads), products with fewer multiply-adds (`m n k`) than this stay on one thread: below
/// it, waking and joining rayon's threads costs more than it saves. At 2^24 (16.8 M) every W1
/// training product stays on one thread while W1 batch-1000 inference (100 M) and W2's
/// products split. Our packed kernel has its own, lower threshold: its helper threads spin
/// between products, so handing out parts is cheap.
const PARALLEL_MIN_FLOPS: usize = 1 << 24;

/// Sets how many threads large matrix products, single-sample products of large layers
/// ([`matvec_bias`]), batch inference ([`split_batch`]) and Adam steps on large tensors may
/// use (at least 1). Without the
/// `threads` feature everything runs on the calling thread. The default comes from the
/// environment variable `NN_NUM_THREADS`, else 1.
///
/// The extra threads are persistent helpers that spin for up to 2 ms after each job before
/// they sleep, so that the next product of a training step or the next `predict` reaches them
/// in well under a microsecond: while a program trains or predicts in a loop with 2 threads,
/// expect both cores busy. `Trainer::fit` runs a step on the calling thread alone while that
/// is measured faster ([`ThreadGovernor`]).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The threads the kernels may use ([`set_threads`]).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var("NN_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// How the `gemm` crate should run an `m x n x k` product.
pub(crate) fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    #[cfg(feature = "threads")]
    {
        let t = threads();
        if t > 1 && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_FLOPS {
            return gemm::Parallelism::Rayon(t);
        }
    }
    let _ = (m, n, k, PARALLEL_MIN_FLOPS);
    gemm::Parallelism::None
}

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use its transpose.
    T,
}

/// `C = alpha * op(A) * op(B) + beta * C`, all column-major; `C` is `m x n`, the inner
/// dimension is `k`. `A` is stored `m x k` (or `k x m` under [`Op::T`]), `B` `k x n` (or `n x k`).
///
/// When `beta` is zero, `C` is overwritten (its old contents, even NaN, are ignored).
///
/// # Panics
/// If a slice is shorter than its shape requires (a bug in the caller, never user data:
/// generated code sizes every buffer from the network's static shapes).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    gemm_then(op_a, op_b, m, n, k, alpha, a, b, beta, c, None);
}

/// What [`gemm_then`] runs on the product it computed: `then(i, j, values)` with `values` the
/// rows `i..i + values.len()` of column `j` of `C`, every element of `C` exactly once. The
/// packed kernel calls it on each part of a product split over threads as soon as the part is
/// done, on the thread that computed it, while the part is still in that core's cache: a
/// dense layer adds its bias and applies an element-wise activation this way, without passes
/// of their own over `Z` on one thread.
pub type Epilogue<'a, T> = &'a (dyn Fn(usize, usize, &mut [T]) + Sync);

/// [`gemm()`], then `then` (if given) over all of `C` (see [`Epilogue`]).
///
/// # Panics
/// As [`gemm()`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_then<T: Float>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
    then: Option<Epilogue<'_, T>>,
) {
    assert!(a.len() >= m * k, "gemm: A holds {} < {m}x{k}", a.len());
    assert!(b.len() >= k * n, "gemm: B holds {} < {k}x{n}", b.len());
    assert!(c.len() >= m * n, "gemm: C holds {} < {m}x{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    match kernel() {
        Kernel::Reference => reference_gemm(op_a, op_b, m, n, k, alpha, a, b, beta, c),
        Kernel::Packed => {
            let p = packed::Product {
                op_a,
                op_b,
                m,
                n,
                k,
                alpha,
                a,
                b,
                beta,
            };
            packed::gemm(&p, c, then);
            return;
        }
        Kernel::GemmCrate => {
            let (rsa, csa) = match op_a {
                Op::N => (1, m as isize),
                Op::T => (k as isize, 1),
            };
            let (rsb, csb) = match op_b {
                Op::N => (1, k as isize),
                Op::T => (n as isize, 1),
            };
            // SAFETY: the asserts above bound every index the strides produce; `c` is a
            // unique borrow.
            unsafe {
                T::gemm_raw(
                    m,
                    k,
                    n,
                    alpha,
                    a.as_ptr(),
                    rsa,
                    csa,
                    b.as_ptr(),
                    rsb,
                    csb,
                    beta,
                    c.as_mut_ptr(),
                    1,
                    m as isize,
                )
            }
        }
    }
    if let Some(then) = then {
        for (j, col) in c[..m * n].chunks_exact_mut(m).enumerate() {
            then(0, j, col);
        }
    }
}

/// `C = alpha op(A) op(B) + beta C` by plain loops (see [`gemm()`] for the layout): no
/// workspace, no allocation.
#[allow(clippy::too_many_arguments)]
pub fn reference_gemm<T: Float>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    for j in 0..n {
        for i in 0..m {
            let mut acc = T::zero();
            for p in 0..k {
                let av = match op_a {
                    Op::N => a[i + p * m],
                    Op::T => a[p + i * k],
                };
                let bv = match op_b {
                    Op::N => b[p + j * k],
                    Op::T => b[j + p * n],
                };
                acc += av * bv;
            }
            let cij = &mut c[i + j * m];
            *cij = if beta == T::zero() {
                alpha * acc
            } else {
                alpha * acc + beta * *cij
            };
        }
    }
}

/// Whether every value is finite (no NaN, no infinity), in one vectorized pass: `x * 0` is 0
/// for a finite `x` and NaN otherwise, summed over 64 independent lanes (four AVX-512
/// registers of `f32`, so the sums do not wait on one another), compiled for AVX-512 or AVX2
/// where the processor has them (chosen at run time).
///
/// The trainer calls it on every gradient of a checked step, so it must stream at the cache's
/// speed: W1's 101,770 values take about 5 µs on a Xeon of this project's machines (9 µs
/// compiled for the baseline instruction set).
pub fn all_finite<T: Float>(x: &[T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        // SAFETY: the processor supports the features `all_finite_avx512` is compiled for.
        Isa::Avx512 => return unsafe { all_finite_avx512(x) },
        // SAFETY: the processor supports the features `all_finite_avx2` is compiled for.
        Isa::Avx2 => return unsafe { all_finite_avx2(x) },
        Isa::Portable => {}
    }
    all_finite_lanes(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn all_finite_avx512<T: Float>(x: &[T]) -> bool {
    all_finite_lanes(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn all_finite_avx2<T: Float>(x: &[T]) -> bool {
    all_finite_lanes(x)
}

#[inline(always)]
fn all_finite_lanes<T: Float>(x: &[T]) -> bool {
    const LANES: usize = 64;
    let mut lanes = [T::zero(); LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in chunks.by_ref() {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v * T::zero();
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::zero(), |a, &v| a + v * T::zero());
    (lanes.iter().fold(tail, |a, &l| a + l)).is_finite()
}

/// The largest magnitude in `x` (0 for an empty slice), or `None` if a value is NaN or
/// infinite; one vectorized pass (sixteen lanes of running maxima, and the `x * 0` sum of
/// [`all_finite`]).
pub fn max_abs<T: Float>(x: &[T]) -> Option<T> {
    let mut max = [T::zero(); 16];
    let mut zero = [T::zero(); 16];
    let mut chunks = x.chunks_exact(16);
    for c in chunks.by_ref() {
        for ((m, z), &v) in max.iter_mut().zip(zero.iter_mut()).zip(c) {
            let a = v.abs();
            *m = if a > *m { a } else { *m };
            *z += v * T::zero();
        }
    }
    let (mut m, mut z) = (T::zero(), T::zero());
    for &v in chunks.remainder().iter().chain(&max) {
        m = if v.abs() > m { v.abs() } else { m };
    }
    for &v in chunks.remainder() {
        z += v * T::zero();
    }
    (zero.iter().fold(z, |a, &l| a + l).is_finite() && m.is_finite()).then_some(m)
}

/// Whether the weight gradient `dZ Xᵀ` and bias gradient `dZ 1` of a dense layer over `n`
/// samples are sure to be finite, from their factors alone: every value of `x` and `dz` is
/// finite and `n · max|dZ| · max(max|X|, 1) ≤ MAX / 4`. Each entry of either product is a sum
/// of `n` terms bounded by `max|dZ| · max|X|` (or `max|dZ|`), and the factor 4 leaves room for
/// the rounding of the partial sums, so no sum can overflow.
///
/// The converse does not hold (a huge `max|X|` may meet only small `dZ` values), so a caller
/// that needs certainty computes the products when this is false:
/// [`Network::backward_sgd`](crate::Network::backward_sgd) falls back to the plain backward
/// pass then.
pub fn weight_gradient_finite<T: Float>(x: &[T], dz: &[T], n: usize) -> bool {
    let (Some(mx), Some(mz)) = (max_abs(x), max_abs(dz)) else {
        return false;
    };
    let n = T::of(n as f64);
    n * mz * mx.max(T::one()) <= T::max_value() / T::of(4.0)
}

/// `y = W x + b` for one sample: `W` is `m x k` column-major, `x` has `k`, `y` and `b` have `m`.
///
/// Walks `W` column by column (`y += x_j W[:, j]`): a block of rows keeps its partial sums in
/// vector registers while it sweeps the columns, so `W` is read once, front to back, and `y`
/// touched only at the ends. On x86-64 the loop is compiled for AVX-512 (blocks of 512 bytes
/// of rows: 128 `f32`, the whole hidden layer of W1 in eight registers, then 256-byte blocks)
/// or AVX2 with FMA (256-byte blocks, then 128-byte ones), chosen at run time, and prefetches
/// the columns it reads next.
///
/// **Zero inputs are skipped**: a column whose input `x_j` is zero (`+0` or `-0`) adds
/// nothing, so it is not read at all. The product is bound by how fast `W` streams from the
/// core's L2 cache, not by arithmetic, so its time is proportional to the number of non-zero
/// inputs: an MNIST digit has about a fifth of its 784 pixels non-zero, and a hidden layer
/// after ReLU about half of its units. The result is the dense product's, with two
/// exceptions that only a zero input can cause: a weight that is infinite or NaN in a skipped
/// column does not turn its row into NaN (`0 · ∞` is NaN), and a row whose every term is zero
/// may end as `+0` instead of `-0` or the reverse. (The reference BLAS `sgemv` skipped zero
/// inputs the same way.)
///
/// With [`threads`] above 1 (feature `threads`) and at least [`MATVEC_PARALLEL_MIN`] weights
/// in the non-zero columns, the rows are split between the calling thread and the persistent
/// helper threads of the GEMM, so each core streams only its share of `W` (and, called again,
/// finds it in its own L2): no allocation either way.
pub fn matvec_bias<T: Float>(w: &[T], x: &[T], b: Option<&[T]>, y: &mut [T]) {
    matvec_on(w, x, b, y, threads());
}

/// [`matvec_bias`] on up to `threads` threads.
fn matvec_on<T: Float>(w: &[T], x: &[T], b: Option<&[T]>, y: &mut [T], threads: usize) {
    let m = y.len();
    let k = x.len();
    assert!(w.len() >= m * k, "matvec: W holds {} < {m}x{k}", w.len());
    if let Some(b) = b {
        assert!(b.len() >= m, "matvec: b holds {} < {m}", b.len());
    }
    // `y = b` for the rows from `start`, then `y += W x` (on the thread that owns those rows,
    // so their cache lines move between cores once, at the end).
    let part = |start: usize, y: &mut [T]| {
        match b {
            Some(b) => y.copy_from_slice(&b[start..start + y.len()]),
            None => y.fill(T::zero()),
        }
        matvec_rows(&w[start..], m, x, y);
    };
    #[cfg(feature = "threads")]
    {
        // Parts of whole cache lines and of at least 64 rows.
        let per = m.div_ceil(threads.max(1)).div_ceil(64) * 64;
        if threads > 1
            && m * k >= MATVEC_PARALLEL_MIN
            && per < m
            && m.div_ceil(per) <= MAX_PARTS
            && m * nonzeros(x) >= MATVEC_PARALLEL_MIN
        {
            run_parts(threads, y.chunks_mut(per), &|i, y| part(i * per, y));
            return;
        }
    }
    let _ = threads;
    part(0, y);
}

/// The number of non-zero values in `x`: sixteen branch-free counters the compiler keeps in
/// vector registers.
#[cfg(feature = "threads")]
fn nonzeros<T: Float>(x: &[T]) -> usize {
    let mut counts = [0u32; 16];
    let mut chunks = x.chunks_exact(16);
    for chunk in &mut chunks {
        for (n, &v) in counts.iter_mut().zip(chunk) {
            *n += u32::from(v != T::zero());
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .filter(|&&v| v != T::zero())
        .count();
    counts.iter().map(|&n| n as usize).sum::<usize>() + rest
}

/// Matrix-vector products with at least this many weights in the columns of non-zero inputs
/// are split over [`threads`] threads: W1's first layer (100,352 weights) is for a dense
/// input, not for an MNIST digit (about 20,000 weights in its non-zero columns), its output
/// layer (1,280) never. Handing out a part and waiting for it costs about a microsecond when
/// the helper is spinning; streaming 2^16 `f32` weights from L2 takes about 2.4.
pub const MATVEC_PARALLEL_MIN: usize = 1 << 16;

/// Elementwise passes over at least this many values (optimizer steps) are split over
/// [`threads`] threads: W1's first weight matrix (100,352) is, its biases are not. Adam takes
/// about 0.7 ns per value, so a part of 2^14 values is some 10 µs of work, far more than
/// handing it out.
pub const ELEMENTWISE_PARALLEL_MIN: usize = 1 << 15;

/// How to split an elementwise pass over `len` values: `Some((threads, part_len))` when it
/// is worth splitting (feature `threads`, [`threads`] above 1, at least
/// [`ELEMENTWISE_PARALLEL_MIN`] values), parts a multiple of 16 values (whole cache lines of
/// `f32`), at most [`MAX_PARTS`] of them.
#[cfg(feature = "threads")]
pub(crate) fn elementwise_parts(len: usize) -> Option<(usize, usize)> {
    let t = threads().min(MAX_PARTS);
    (t > 1 && len >= ELEMENTWISE_PARALLEL_MIN).then(|| (t, len.div_ceil(t).div_ceil(16) * 16))
}

/// At most this many parts of work are handed out by [`run_parts`].
#[cfg(feature = "threads")]
pub(crate) const MAX_PARTS: usize = 16;

/// Runs `work(i, part)` on each of the (at most [`MAX_PARTS`]) `parts`, spread over up to
/// `threads` threads: the calling thread and the persistent helpers of the GEMM, which spin
/// for a while between jobs, so handing out parts costs well under a microsecond. Thread `t`
/// takes part `t` first, so each core gets the same part on every call and finds its memory
/// in its own cache; then any part still left. Nothing is allocated.
///
/// # Panics
/// If there are more than [`MAX_PARTS`] parts (a bug in the caller).
#[cfg(feature = "threads")]
pub(crate) fn run_parts<P: Send>(
    threads: usize,
    parts: impl IntoIterator<Item = P>,
    work: &(dyn Fn(usize, P) + Sync),
) {
    let mut slots: [std::sync::Mutex<Option<P>>; MAX_PARTS] =
        std::array::from_fn(|_| std::sync::Mutex::new(None));
    let mut n = 0;
    for part in parts {
        assert!(n < MAX_PARTS, "more than {MAX_PARTS} parts");
        slots[n] = std::sync::Mutex::new(Some(part));
        n += 1;
    }
    packed::pool::run(threads.min(n), &|| {
        let me = packed::pool::index().min(n);
        for i in (me..n).chain(0..me) {
            if let Some(part) = slots[i].lock().ok().and_then(|mut s| s.take()) {
                work(i, part);
            }
        }
    });
}

/// Batch computations with at least this many multiply-adds (columns times multiply-adds per
/// column) are split into one part of columns per thread by [`split_batch`]: W1's forward
/// pass (101,632 multiply-adds per sample) from 21 samples, W2's (664,064) from 4.
pub const BATCH_PARALLEL_MIN: usize = 1 << 21;

/// `f(x)` for a batch `x` of columns of `rows_in` values (column-major), where `f` returns
/// `rows_out` values per column and computes each column independently of the others
/// (inference of a network on a batch). With [`threads`] above 1 (feature `threads`) and at
/// least [`BATCH_PARALLEL_MIN`] multiply-adds (`madds_per_column` each), the columns are
/// split into one contiguous part per thread and `f` runs on each part at once, on the
/// calling thread and the persistent helpers, every layer and elementwise pass included; the
/// products inside a part then stay on its thread. Each column's result has the same bits
/// either way.
///
/// # Panics
/// If `f` returns other than `rows_out` values per column of its part (a bug in the caller).
pub fn split_batch<T: Float>(
    x: &[T],
    rows_in: usize,
    rows_out: usize,
    madds_per_column: usize,
    f: &(dyn Fn(&[T]) -> Vec<T> + Sync),
) -> Vec<T> {
    #[cfg(feature = "threads")]
    {
        let n = x.len().checked_div(rows_in).unwrap_or(0);
        let t = threads().min(MAX_PARTS).min(n);
        if t > 1 && n.saturating_mul(madds_per_column) >= BATCH_PARALLEL_MIN {
            let per = n.div_ceil(t);
            let mut y = vec![T::zero(); rows_out * n];
            let parts = x.chunks(rows_in * per).zip(y.chunks_mut(rows_out * per));
            run_parts(t, parts, &|_, (x, y): (&[T], &mut [T])| {
                y.copy_from_slice(&f(x));
            });
            return y;
        }
    }
    let _ = (rows_in, rows_out, madds_per_column);
    f(x)
}

/// `y += W x` for the rows of `y`: `w[i + j * ld]` is the weight of row `i` and column `j`.
fn matvec_rows<T: Float>(w: &[T], ld: usize, x: &[T], y: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let wide = std::mem::size_of::<T>() <= 4;
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor supports the features `matvec_avx512` is compiled for.
            unsafe {
                if wide {
                    matvec_avx512::<T, 128, 64>(w, ld, x, y)
                } else {
                    matvec_avx512::<T, 64, 32>(w, ld, x, y)
                }
            };
            return;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the processor supports the features `matvec_avx2` is compiled for.
            unsafe {
                if wide {
                    matvec_avx2::<T, 64, 32>(w, ld, x, y)
                } else {
                    matvec_avx2::<T, 32, 16>(w, ld, x, y)
                }
            };
            return;
        }
    }
    matvec_acc::<T, false, 64, 32>(w, ld, x, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn matvec_avx512<T: Float, const R: usize, const H: usize>(
    w: &[T],
    ld: usize,
    x: &[T],
    y: &mut [T],
) {
    matvec_acc::<T, true, R, H>(w, ld, x, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2<T: Float, const R: usize, const H: usize>(
    w: &[T],
    ld: usize,
    x: &[T],
    y: &mut [T],
) {
    matvec_acc::<T, true, R, H>(w, ld, x, y);
}

/// How far ahead of the column being read [`matvec_block`] prefetches, in bytes of the block's
/// columns: four columns of a 128-row `f32` block, eight of a 64-row one (tuned on W1's first
/// layer, docs/performance.md).
const PREFETCH_BYTES: usize = 2048;

/// Asks the processor to bring the cache line at `p` into L1 (a hint: never faults, and a
/// no-op off x86-64).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never dereferences in the program's sense or faults,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `y += W x` (`w[i + j * ld]` is row `i`, column `j`). Rows go in blocks of `R`, then of `H`,
/// whose partial sums stay in registers while the block sweeps every column; leftover rows
/// go eight columns at a time. Fused multiply-adds when `FMA` (only where the processor has
/// them: without hardware FMA `mul_add` is a slow library call).
#[inline(always)]
fn matvec_acc<T: Float, const FMA: bool, const R: usize, const H: usize>(
    w: &[T],
    ld: usize,
    x: &[T],
    y: &mut [T],
) {
    let m = y.len();
    let k = x.len();
    let madd = |a: T, b: T, c: T| if FMA { a.mul_add(b, c) } else { a * b + c };
    let mut i0 = 0;
    while i0 + R <= m {
        matvec_block::<T, FMA, R>(&w[i0..], ld, x, &mut y[i0..i0 + R]);
        i0 += R;
    }
    while i0 + H <= m {
        matvec_block::<T, FMA, H>(&w[i0..], ld, x, &mut y[i0..i0 + H]);
        i0 += H;
    }
    if i0 == m {
        return;
    }
    // The remaining rows, eight columns per pass.
    let (w, y) = (&w[i0..], &mut y[i0..]);
    let mr = m - i0;
    const B: usize = 8;
    let mut j = 0;
    while j + B <= k {
        let c: [&[T]; B] = std::array::from_fn(|q| &w[(j + q) * ld..(j + q) * ld + mr]);
        for i in 0..mr {
            let mut a = y[i];
            for q in 0..B {
                a = madd(c[q][i], x[j + q], a);
            }
            y[i] = a;
        }
        j += B;
    }
    while j < k {
        let col = &w[j * ld..j * ld + mr];
        let xj = x[j];
        for (yi, &wi) in y.iter_mut().zip(col) {
            *yi = madd(wi, xj, *yi);
        }
        j += 1;
    }
}

/// Columns whose inputs [`matvec_block`] scans for non-zeros at a time (the bits of a `u64`).
const NONZERO_CHUNK: usize = 64;

/// `y += W x` for one block of `R` rows (`y.len() == R`), its partial sums in registers
/// (`R / lanes` independent vector accumulators hide the multiply-add latency), skipping the
/// columns of zero inputs. The inputs are scanned [`NONZERO_CHUNK`] at a time into a bit mask
/// of the non-zero ones, so that the prefetch, [`PREFETCH_BYTES`] ahead, asks for the columns
/// that will really be read; a chunk without zeros takes the plain loop.
#[inline(always)]
fn matvec_block<T: Float, const FMA: bool, const R: usize>(
    w: &[T],
    ld: usize,
    x: &[T],
    y: &mut [T],
) {
    let madd = |a: T, b: T, c: T| if FMA { a.mul_add(b, c) } else { a * b + c };
    // Cache lines (64 bytes) per block column.
    let lines = (R * std::mem::size_of::<T>()).div_ceil(64);
    let ahead_cols = PREFETCH_BYTES.div_ceil(lines * 64);
    let mut acc = [T::zero(); R];
    acc.copy_from_slice(y);
    let column = |j: usize, ahead: usize, acc: &mut [T; R]| {
        let ahead = w.as_ptr().wrapping_add(ahead * ld);
        for l in 0..lines {
            prefetch(ahead.wrapping_add(l * 64 / std::mem::size_of::<T>()));
        }
        let col = &w[j * ld..j * ld + R];
        let xj = x[j];
        for r in 0..R {
            acc[r] = madd(col[r], xj, acc[r]);
        }
    };
    for (c, xs) in x.chunks(NONZERO_CHUNK).enumerate() {
        let j0 = c * NONZERO_CHUNK;
        let mut mask = 0u64;
        for (q, &v) in xs.iter().enumerate() {
            mask |= u64::from(v != T::zero()) << q;
        }
        if mask.count_ones() as usize == xs.len() {
            for j in j0..j0 + xs.len() {
                column(j, j + ahead_cols, &mut acc);
            }
            continue;
        }
        // `next` runs `ahead_cols` non-zero columns in front of `mask`; past the chunk's last
        // one the prefetch asks for the column as far ahead in memory.
        let mut next = mask;
        for _ in 0..ahead_cols {
            next &= next.wrapping_sub(1);
        }
        while mask != 0 {
            let j = j0 + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let ahead = if next == 0 {
                j + ahead_cols
            } else {
                j0 + next.trailing_zeros() as usize
            };
            next &= next.wrapping_sub(1);
            column(j, ahead, &mut acc);
        }
    }
    y.copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `op(A) op(B)` by the definition, in `f64` (also the reference of the packed kernel's
    /// tests).
    pub(super) fn naive(
        op_a: Op,
        op_b: Op,
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        b: &[f64],
    ) -> Vec<f64> {
        let at = |i: usize, p: usize| match op_a {
            Op::N => a[i + p * m],
            Op::T => a[p + i * k],
        };
        let bt = |p: usize, j: usize| match op_b {
            Op::N => b[p + j * k],
            Op::T => b[j + p * n],
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i + j * m] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_for_every_transpose() {
        let (m, n, k) = (5, 3, 7);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                let want = naive(op_a, op_b, m, n, k, &a, &b);
                let mut c = vec![f64::NAN; m * n];
                gemm(op_a, op_b, m, n, k, 1.0, &a, &b, 0.0, &mut c);
                let mut r = vec![f64::NAN; m * n];
                reference_gemm(op_a, op_b, m, n, k, 1.0, &a, &b, 0.0, &mut r);
                for ((x, y), z) in c.iter().zip(&want).zip(&r) {
                    assert!((x - y).abs() < 1e-12, "{op_a:?}{op_b:?}: {x} vs {y}");
                    assert!(
                        (z - y).abs() < 1e-12,
                        "reference {op_a:?}{op_b:?}: {z} vs {y}"
                    );
                }
                // beta = 1 accumulates.
                let mut acc = want.clone();
                gemm(op_a, op_b, m, n, k, 2.0, &a, &b, 1.0, &mut acc);
                for (x, y) in acc.iter().zip(&want) {
                    assert!((x - 3.0 * y).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn all_finite_finds_any_nan_or_infinity() {
        let mut x = vec![1.0e30f32; 197];
        assert!(all_finite(&x));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 15, 16, 36, 63, 64, 127, 128, 191, 192, 196] {
                let keep = x[at];
                x[at] = bad;
                assert!(!all_finite(&x), "{bad} at {at}");
                x[at] = keep;
            }
        }
        assert!(all_finite::<f64>(&[]));
        let mut y = vec![-1.0e300f64; 130];
        assert!(all_finite(&y));
        for at in [0, 63, 64, 129] {
            y[at] = f64::NAN;
            assert!(!all_finite(&y), "f64 NaN at {at}");
            y[at] = 0.0;
        }
    }

    #[test]
    fn max_abs_is_the_largest_magnitude_or_none_for_a_non_finite_value() {
        assert_eq!(max_abs::<f32>(&[]), Some(0.0));
        for len in [1, 15, 16, 17, 40] {
            let mut x: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin()).collect();
            for at in [0, len / 2, len - 1] {
                let keep = x[at];
                x[at] = -3.5;
                assert_eq!(max_abs(&x), Some(3.5), "len {len}, -3.5 at {at}");
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                assert_eq!(max_abs(&x32), Some(3.5), "f32, len {len}, -3.5 at {at}");
                for bad in [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    x[at] = bad;
                    assert_eq!(max_abs(&x), None, "len {len}, {bad} at {at}");
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    assert_eq!(max_abs(&x32), None, "f32, len {len}, {bad} at {at}");
                }
                x[at] = keep;
            }
        }
    }

    #[test]
    fn weight_gradient_finite_bounds_every_sum() {
        let x = [0.5f32, -2.0, 1.0];
        let dz = [0.25f32, -1.0];
        assert!(weight_gradient_finite(&x, &dz, 3));
        // n · max|dZ| · max|X| just under and over MAX / 4 (X below 1 counts as 1).
        let quarter = f32::MAX / 4.0;
        assert!(weight_gradient_finite(&[quarter / 2.0], &[1.0], 2));
        assert!(!weight_gradient_finite(&[quarter], &[1.0], 2));
        assert!(!weight_gradient_finite(&[0.5], &[quarter], 2));
        assert!(!weight_gradient_finite(&[1e30f32], &[1e30], 1));
        assert!(weight_gradient_finite(&[1e30f64], &[1e30], 1));
        assert!(!weight_gradient_finite(&[f32::NAN], &dz, 1));
        assert!(!weight_gradient_finite(&x, &[f32::INFINITY], 1));
    }

    #[test]
    fn matvec_matches_naive() {
        for (m, k) in [
            (3, 1),
            (4, 4),
            (7, 9),
            (10, 13),
            (64, 9),
            (130, 21),
            (128, 784),
            (261, 17),
            (512, 5),
        ] {
            let w: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.13).sin()).collect();
            let x: Vec<f64> = (0..k).map(|i| i as f64 - 2.5).collect();
            let b: Vec<f64> = (0..m).map(|i| i as f64 * 0.5).collect();
            let mut y = vec![0.0; m];
            matvec_bias(&w, &x, Some(&b), &mut y);
            let want = naive(Op::N, Op::N, m, 1, k, &w, &x);
            // Sums of k terms of size up to k: compare relative to the largest term.
            let scale = k as f64 * k as f64;
            for i in 0..m {
                let err = (y[i] - want[i] - b[i]).abs();
                assert!(err < 1e-13 * scale, "{m}x{k} row {i}: {err}");
            }
            // f32 takes other block sizes (128 rows under AVX-512): same sums to f32 precision.
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let mut y32 = vec![f32::NAN; m];
            matvec_bias(&w32, &x32, Some(&b32), &mut y32);
            for i in 0..m {
                let err = (f64::from(y32[i]) - want[i] - b[i]).abs();
                assert!(err < 1e-5 * scale, "f32 {m}x{k} row {i}: {err}");
            }
        }
    }

    /// The bits of every value, for exact comparisons.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn matvec_skips_zero_inputs_and_changes_no_other_bit() {
        // Runs of zeros (both signs) shorter and longer than a scan chunk, non-zeros at chunk
        // edges, all zero and none zero; every row sums its non-zero columns in order with
        // fused multiply-adds, exactly as this scalar loop does.
        #[cfg(target_arch = "x86_64")]
        let fused = std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fused = false;
        let patterns: [fn(usize) -> f32; 5] = [
            |j| {
                if j % 5 == 0 {
                    (j as f32 * 0.3).sin()
                } else {
                    0.0
                }
            },
            |j| {
                if (60..200).contains(&j) {
                    0.0
                } else {
                    1.0 - j as f32 * 1e-3
                }
            },
            |j| match j % 64 {
                0 | 63 => 0.5,
                7 => -0.0,
                _ => 0.0,
            },
            |_| 0.0,
            |j| (j as f32 * 0.7).cos() + 2.0,
        ];
        for (m, k) in [(128, 784), (300, 300), (1000, 70), (129, 600), (10, 128)] {
            let w: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.13).sin()).collect();
            let b: Vec<f32> = (0..m).map(|i| 0.25 + i as f32 * 0.5).collect();
            for (p, pattern) in patterns.iter().enumerate() {
                let x: Vec<f32> = (0..k).map(pattern).collect();
                let want: Vec<f32> = (0..m)
                    .map(|i| {
                        let mut acc = b[i];
                        for (j, &xj) in x.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                            let wij = w[i + j * m];
                            acc = if fused {
                                wij.mul_add(xj, acc)
                            } else {
                                wij * xj + acc
                            };
                        }
                        acc
                    })
                    .collect();
                for threads in [1, 2] {
                    let mut y = vec![f32::NAN; m];
                    matvec_on(&w, &x, Some(&b), &mut y, threads);
                    assert_eq!(
                        bits(&y),
                        bits(&want),
                        "{m}x{k}, pattern {p}, {threads} threads"
                    );
                }
            }
        }
        // A skipped column is not read: an infinite weight there leaves its row finite.
        let (m, k) = (128, 100);
        let mut w = vec![0.5f32; m * k];
        w[3 + 10 * m] = f32::INFINITY;
        let x: Vec<f32> = (0..k).map(|j| if j == 10 { 0.0 } else { 1.0 }).collect();
        let mut y = vec![f32::NAN; m];
        matvec_bias(&w, &x, None, &mut y);
        assert!(y.iter().all(|&v| v == 49.5), "{:?}", &y[..8]);
    }

    #[test]
    fn matvec_split_over_threads_gives_the_same_bits() {
        // Each row's sum runs over the columns in the same order whichever thread and block
        // size computes it, so splitting the rows changes no bit.
        for (m, k) in [(128, 784), (300, 300), (1000, 70), (129, 600)] {
            let w: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.13).sin()).collect();
            let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.7).cos()).collect();
            let b: Vec<f32> = (0..m).map(|i| i as f32 * 0.5).collect();
            let mut one = vec![f32::NAN; m];
            matvec_on(&w, &x, Some(&b), &mut one, 1);
            let want = naive(
                Op::N,
                Op::N,
                m,
                1,
                k,
                &w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                &x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            );
            for i in 0..m {
                let err = (f64::from(one[i]) - want[i] - f64::from(b[i])).abs();
                assert!(err < 1e-3, "{m}x{k} row {i}: {err}");
            }
            for threads in [2, 3] {
                for _ in 0..3 {
                    let mut y = vec![f32::NAN; m];
                    matvec_on(&w, &x, Some(&b), &mut y, threads);
                    assert_eq!(bits(&y), bits(&one), "{m}x{k} on {threads} threads");
                }
            }
        }
    }
}
