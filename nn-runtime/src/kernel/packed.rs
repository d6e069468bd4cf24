//! Our own packed GEMM (BLIS-style), allocation-free after the first call on a thread.
//!
//! `C = alpha op(A) op(B) + beta C`, column-major. The product is cut into blocks: `KC` rows of
//! `op(B)` at a time are packed into panels of `NR` columns (`kc x NR`, row by row), and `MC`
//! rows of `op(A)` into panels of `MR` rows (`MR x kc`, column by column), both zero-padded to
//! whole panels. A register-blocked micro-kernel then multiplies one `A` panel by one `B` panel
//! into an `MR x NR` tile of accumulators and adds it into `C`. Packing makes every operand
//! layout (transposed or not) look the same to the micro-kernel, and its reads contiguous.
//! Where a panel would be used only a few times, full panels are read in place instead: `A`
//! as stored for narrow products (few columns), `B` for short ones (few rows) and whenever
//! it is used as stored (its columns are then contiguous runs, read front to back). Products with
//! few rows and `B` transposed (a weight gradient with ten classes) are computed as `Cᵀ`.
//!
//! The packing buffers live in thread-local workspaces that only grow, so a thread that has
//! seen a shape once multiplies it again without allocating. The micro-kernel is written once
//! over a small vector trait (load, broadcast, fused multiply-add, store), whose accumulators
//! the compiler keeps in registers, and compiled for AVX-512F and for AVX2 with FMA (chosen at
//! run time); a plain-loop kernel serves other processors.
//! Large products may be split by columns over persistent helper threads (feature `threads`),
//! which keep their own workspaces: no allocation on the calling thread either.

use super::Epilogue;
use super::Op;
use crate::scalar::Float;
use std::any::Any;
use std::cell::RefCell;
use std::ops::Range;

/// Rows of `op(B)` (the inner dimension) per packed block: a `kc x NR` panel of `B` stays in
/// the level-1 cache while the `A` panels stream past it.
const KC: usize = 256;
/// Rows of `op(A)` per packed block (a multiple of every `MR`): `MC x KC` stays in level 2.
const MC: usize = 192;
/// Columns of `op(B)` per packed block.
const NC: usize = 2048;

/// One product `C = alpha op(A) op(B) + beta C`; `C` is `m x n`, the inner dimension `k`.
#[derive(Clone, Copy)]
pub(crate) struct Product<'a, T> {
    /// How `A` is used: stored `m x k` ([`Op::N`]) or `k x m` ([`Op::T`]).
    pub op_a: Op,
    /// How `B` is used: stored `k x n` ([`Op::N`]) or `n x k` ([`Op::T`]).
    pub op_b: Op,
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// Scale of the product.
    pub alpha: T,
    /// `A`, at least `m k` values.
    pub a: &'a [T],
    /// `B`, at least `k n` values.
    pub b: &'a [T],
    /// Scale of the old `C`; zero overwrites `C` (NaN in it is ignored).
    pub beta: T,
}

/// The packing buffers of one thread.
struct Workspace<T> {
    a: Vec<T>,
    b: Vec<T>,
}

impl<T: Float> Workspace<T> {
    const fn new() -> Self {
        Workspace {
            a: Vec::new(),
            b: Vec::new(),
        }
    }
}

thread_local! {
    static WORKSPACE_F32: RefCell<Workspace<f32>> = const { RefCell::new(Workspace::new()) };
    static WORKSPACE_F64: RefCell<Workspace<f64>> = const { RefCell::new(Workspace::new()) };
}

/// Runs `f` with this thread's workspace for `T`.
fn with_workspace<T: Float, R>(f: impl FnOnce(&mut Workspace<T>) -> R) -> R {
    let mut f = Some(f);
    let mut run = |ws: &mut dyn Any| {
        ws.downcast_mut::<Workspace<T>>()
            .and_then(|ws| f.take().map(|f| f(ws)))
    };
    if let Some(r) = WORKSPACE_F32.with(|w| run(&mut *w.borrow_mut())) {
        return r;
    }
    WORKSPACE_F64
        .with(|w| run(&mut *w.borrow_mut()))
        .expect("Float is sealed to f32 and f64")
}

/// A sub-slice of `v` of `len` values starting on a 64-byte boundary, growing `v` (never
/// shrinking it) if it is too short.
fn aligned<T: Float>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    let pad = 64 / std::mem::size_of::<T>();
    if v.len() < len + pad {
        v.resize(len + pad, T::zero());
    }
    let off = v.as_ptr().align_offset(64).min(pad);
    &mut v[off..off + len]
}

/// `x` rounded up to a multiple of `to`.
fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// Products with fewer multiply-adds than this stay on the calling thread: below it, handing
/// out parts costs more than it saves. At 2^21 (2.1 M) W1's batch-32 forward and weight-gradient
/// products (3.2 M) split: W1 b32 Adam on two threads 141-143k → 149-153k samples/s against
/// 2^22 (docs/performance.md).
#[cfg(feature = "threads")]
const PARALLEL_MIN_FLOPS: usize = 1 << 21;

/// Computes the product into `c` (`m x n`, column-major), its columns split over
/// [`super::threads`] threads when the product is large (feature `threads`); then, if given,
/// `then` on every column of every part, on the thread that computed it
/// (see [`super::Epilogue`]).
pub(crate) fn gemm<T: Float>(p: &Product<'_, T>, c: &mut [T], then: Option<Epilogue<'_, T>>) {
    gemm_on(p, c, super::threads(), Isa::best(), then);
}

/// Runs the part of `p` over `rows x cols` (see [`run`]), then `then` on each of its columns.
///
/// # Safety
/// As for [`run`].
unsafe fn run_then<T: Float>(
    p: &Product<'_, T>,
    rows: Range<usize>,
    cols: Range<usize>,
    c: Out<T>,
    isa: Isa,
    then: Option<Epilogue<'_, T>>,
) {
    // SAFETY: the caller's promise.
    unsafe { run(p, rows.clone(), cols.clone(), c, isa) };
    if let Some(then) = then {
        for (jj, j) in cols.enumerate() {
            // SAFETY: this part's rows of one of its columns (the caller's promise).
            then(rows.start, j, unsafe {
                c.slice(rows.start + jj * p.m, rows.len())
            });
        }
    }
}

/// [`gemm`] on up to `threads` threads with the kernels of `isa`.
fn gemm_on<T: Float>(
    p: &Product<'_, T>,
    c: &mut [T],
    threads: usize,
    isa: Isa,
    then: Option<Epilogue<'_, T>>,
) {
    let c = &mut c[..p.m * p.n];
    #[cfg(feature = "threads")]
    {
        let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
        // One part per thread, in multiples of 16 columns (whole register tiles): every part
        // packs its own copy of `A` where it packs `A`, so more parts cost more packing (two
        // per thread made W2's batch-128 products 25 % slower on two threads). A helper the
        // system is slow to schedule does not hold the caller up: the caller then takes its
        // part too (see `pool`).
        if threads > 1 && work >= PARALLEL_MIN_FLOPS && split_rows(p) {
            // Whole 64-row panels per part; every part reads all of `B` in place. Handed out
            // by `run_parts`, so each thread takes the same rows of `A` on every call.
            let per = round_up(
                p.m.div_ceil(threads.min(super::MAX_PARTS)),
                ROW_PART_MULTIPLE,
            );
            let parts = p.m.div_ceil(per);
            if parts > 1 {
                let out = Out::new(c);
                let rows = (0..parts).map(|i| i * per..((i + 1) * per).min(p.m));
                super::run_parts(threads, rows, &|_, rows| {
                    // SAFETY: every part writes only its own rows of `C`.
                    unsafe { run_then(p, rows, 0..p.n, out, isa, then) }
                });
                return;
            }
        }
        let per = round_up(p.n.div_ceil(threads.clamp(1, super::MAX_PARTS)), 16);
        let parts = p.n.div_ceil(per);
        if threads > 1 && parts > 1 && work >= PARALLEL_MIN_FLOPS {
            // Handed out by `run_parts`: each thread takes the same columns on every call, and
            // the calling thread the first (widest) part, so a caller that runs every part
            // itself (`pool::set_alone`) needs no larger workspace than it had.
            super::run_parts(threads, c.chunks_mut(p.m * per), &|i, chunk| {
                let start = i * per;
                // SAFETY: `chunk` is this part's own columns.
                unsafe {
                    run_then(
                        p,
                        0..p.m,
                        start..(start + per).min(p.n),
                        Out::new(chunk),
                        isa,
                        then,
                    )
                };
            });
            return;
        }
    }
    let _ = threads;
    // SAFETY: `c` is borrowed whole.
    unsafe { run_then(p, 0..p.m, 0..p.n, Out::new(c), isa, then) };
}

/// Row parts of a split product are multiples of this many rows (whole panels of every
/// kernel).
#[cfg(feature = "threads")]
const ROW_PART_MULTIPLE: usize = 64;

/// Whether a product large enough to split is split by rows (else by columns). Split by
/// columns, every part packs all of `A` for itself; split by rows, every part packs only its
/// rows of `A` and reads all of `B`, which costs nothing extra where `B` is read in place (used
/// as stored, see [`DIRECT_B_MAX_PANELS`]). So products whose `B` is used as stored and whose
/// `A` is the larger operand (at least as many rows as columns) split by rows: W2's forward
/// and input-gradient products, whose `A` (a 512-wide weight matrix) would otherwise be
/// packed, or transposed, once per thread.
#[cfg(feature = "threads")]
fn split_rows<T>(p: &Product<'_, T>) -> bool {
    p.op_b == Op::N && p.m >= p.n && p.m >= 2 * ROW_PART_MULTIPLE
}

/// The output `C` (`m x n`, column-major, column stride `m`) as a raw pointer: parts of a
/// product split by rows write disjoint rows of the same columns, so no part may hold a slice
/// spanning a whole tile of columns. Slices are formed only of single column runs.
#[derive(Clone, Copy)]
struct Out<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: `Out` is a view of a `&mut [T]` whose users write disjoint elements (see `run`).
unsafe impl<T: Send> Send for Out<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    fn new(c: &mut [T]) -> Self {
        Out {
            ptr: c.as_mut_ptr(),
            len: c.len(),
        }
    }

    /// A pointer to element `at`, whose following `span` elements must lie in `C` (checked).
    fn at(self, at: usize, span: usize) -> *mut T {
        assert!(at + span <= self.len, "tile outside C");
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add(at) }
    }

    /// Elements `at..at + len` (bounds-checked).
    ///
    /// # Safety
    /// No other thread may read or write them while the slice lives.
    unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [T] {
        // SAFETY: in bounds (checked by `at`); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.at(at, len), len) }
    }
}

/// The instruction sets the kernels are compiled for (also those of the Adam loops,
/// `optim::adam`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F (with AVX2 and FMA).
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Any processor.
    Portable,
}

impl Isa {
    /// Whether this processor supports the instruction set.
    fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            Isa::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest instruction set this processor supports.
    pub(crate) fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|i| i.supported())
            .unwrap_or(Isa::Portable)
    }
}

/// Computes rows `rows`, columns `cols` of the product into `c`, which holds exactly the
/// columns `cols` (`c[0]` is `C[0, cols.start]`, column stride `m`), on the calling thread with
/// the kernels of `isa` (which the processor must support).
///
/// # Safety
/// No other thread may touch those rows of those columns of `c` meanwhile.
unsafe fn run<T: Float>(
    p: &Product<'_, T>,
    rows: Range<usize>,
    cols: Range<usize>,
    c: Out<T>,
    isa: Isa,
) {
    debug_assert!(c.len >= p.m * cols.len() && rows.end <= p.m);
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    if p.k == 0 {
        // No products to add: C = beta C.
        for j in 0..cols.len() {
            // SAFETY: these rows are this caller's (see above).
            for v in unsafe { c.slice(rows.start + j * p.m, rows.len()) } {
                *v = if p.beta == T::zero() {
                    T::zero()
                } else {
                    p.beta * *v
                };
            }
        }
        return;
    }
    // Few rows, many columns, `B` used transposed: compute Cᵀ = op(B)ᵀ op(A)ᵀ instead, whose
    // rows (the columns of C) fill whole vector registers and whose left operand is then read
    // in place; write each tile back transposed.
    let tr = p.m <= TRANSPOSE_MAX_ROWS
        && p.n >= 2 * TRANSPOSE_MAX_ROWS
        && p.op_b == Op::T
        && cols == (0..p.n)
        && rows == (0..p.m);
    let flip = |op| match op {
        Op::N => Op::T,
        Op::T => Op::N,
    };
    let pt;
    let (p, rows, cols) = if tr {
        pt = Product {
            op_a: flip(p.op_b),
            op_b: flip(p.op_a),
            m: p.n,
            n: p.m,
            a: p.b,
            b: p.a,
            ..*p
        };
        (&pt, 0..pt.m, 0..pt.n)
    } else {
        (p, rows, cols)
    };
    let part = Part { rows, cols, c };
    with_workspace(|ws| match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::supported` said the processor has the features `avx512` needs; the
        // part's rows are ours (see above).
        Isa::Avx512 if isa.supported() => unsafe { avx512(p, part, ws, tr) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for `avx2`.
        Isa::Avx2 if isa.supported() => unsafe { avx2(p, part, ws, tr) },
        // SAFETY: as above.
        _ => unsafe { portable(p, part, ws, tr) },
    });
}

/// The block of `C` one call of [`driver`] computes: `rows` x `cols`, into `c` (which holds
/// the columns `cols`; see [`run`]).
struct Part<T> {
    rows: Range<usize>,
    cols: Range<usize>,
    c: Out<T>,
}

/// Products with at most this many rows (at least twice as many columns, and `B` used
/// transposed) are computed transposed (see [`run`]).
const TRANSPOSE_MAX_ROWS: usize = 16;

/// Whether `T` is `f32` (else `f64`).
fn is_f32<T: Float>() -> bool {
    std::mem::size_of::<T>() == 4
}

/// A micro-kernel: `C[tile] = alpha A_block B_block + beta C[tile]` for one full `MR x NR`
/// tile (`beta` zero overwrites). Arguments: `kc`; the `MR x kc` block of `A` as `(a, lda)`,
/// column `q` a contiguous run at `a + q lda` (a packed panel has `lda = MR`); the `kc x NR`
/// block of `B` as `(b, rsb, csb)`, element `(q, j)` at `b + q rsb + j csb` (a packed panel
/// has `rsb = NR`, `csb = 1`); the tile `c` with column stride `ldc`; `alpha`, `beta`.
///
/// # Safety
/// Every element of both blocks must be readable, `c + j ldc + i` for `i < MR`, `j < NR`
/// writable and aliasing neither block; the processor must support the kernel's
/// instruction set.
type MicroKernel<T> =
    unsafe fn(usize, (*const T, usize), (*const T, usize, usize), *mut T, usize, T, T);

/// Products with at most this many columns read full `A` panels in place when `A` is used as
/// stored (its columns are contiguous runs of rows): each panel is used by so few `B` panels
/// that packing it costs more than its strided reads. At 64, the 64-column halves of W2's
/// batch-128 forward products on two threads read W in place and ran slower than packed
/// (W2 b128 SGD T2 35.8k / 35.9k / 36.2k → 36.7k / 37.5k / 39.7k samples/s at 32).
const DIRECT_A_MAX_COLS: usize = 32;

/// Products with at most this many `A` panels per block read full `B` panels where they are
/// stored instead of packing them: each panel is used so few times that copying it costs
/// more than its strided reads. `B` used as stored ([`Op::N`]) is always read in place: its
/// panel is `NR` contiguous columns, each read front to back, and packing it would be a
/// transpose.
const DIRECT_B_MAX_PANELS: usize = 2;

/// The kernel `k` if its scalar type is `T` (it is, in the branch that asks for it).
fn as_kernel<T: Float, U: Float>(k: MicroKernel<U>) -> MicroKernel<T> {
    *(&k as &dyn Any)
        .downcast_ref::<MicroKernel<T>>()
        .expect("kernel chosen for its scalar type")
}

/// AVX-512: 32 vector registers of 16 `f32` (8 `f64`). `f32` tiles of 4 x 6 vectors (64 x 6,
/// 24 accumulators: 10 loads per 24 multiply-adds), or 2 x 8 where `A` is used transposed
/// (packing it is a transpose, cheaper in 32-row panels); `f64` tiles of 2 x 8. Products with
/// at most one vector of rows use 1 x 8; transposed products (`tr`, see [`run`]) 2 x 10, so
/// that ten rows of C (ten classes) are one tile. 64 x 6 against 32 x 8, one thread
/// (`gemm_bench`, step products over the `gemm` crate's in the same run): W1 batch 128
/// 0.73-0.78 → 0.92-1.00, W1 batch 1000 0.77-0.81 → 0.94-0.96, W2 batch 128 unchanged.
/// Products of at most 128 columns that 8 divides and 6 does not (batches of 32, 64, 128)
/// also take 2 x 8, which covers them without an idle column. On Zen 4, one thread: the
/// forward products of batch 32 99-101 → 110-113 GFLOP/s (0.89-0.92 → 0.99-1.04 of the `gemm`
/// crate's), of batch 64 0.94-0.97 → 0.96-0.99, W1 batch 128's 101 → 108-109 (a W1 b128
/// step's products 508-512 → 481-486 µs), W2 batch 128's unchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512<T: Float>(p: &Product<'_, T>, part: Part<T>, ws: &mut Workspace<T>, tr: bool) {
    use simd::{kernel_avx512 as k, Z32, Z64};
    // SAFETY: the caller upholds `driver`'s contract: the part is its own, and the processor
    // has AVX-512F, AVX2 and FMA, which the kernels chosen here use.
    unsafe {
        match (is_f32::<T>(), tr, p.m) {
            (true, true, _) => driver::<T, 32, 10, true>(p, part, ws, as_kernel(k::<Z32, 2, 10>)),
            (true, _, 0..=16) => driver::<T, 16, 8, false>(p, part, ws, as_kernel(k::<Z32, 1, 8>)),
            (true, _, _)
                if p.op_a == Op::T
                    || (p.n <= 128 && p.n.is_multiple_of(8) && !p.n.is_multiple_of(6)) =>
            {
                driver::<T, 32, 8, false>(p, part, ws, as_kernel(k::<Z32, 2, 8>))
            }
            (true, _, _) => driver::<T, 64, 6, false>(p, part, ws, as_kernel(k::<Z32, 4, 6>)),
            (false, true, _) => driver::<T, 16, 10, true>(p, part, ws, as_kernel(k::<Z64, 2, 10>)),
            (false, _, 0..=8) => driver::<T, 8, 8, false>(p, part, ws, as_kernel(k::<Z64, 1, 8>)),
            (false, _, _) => driver::<T, 16, 8, false>(p, part, ws, as_kernel(k::<Z64, 2, 8>)),
        }
    }
}

/// AVX2: 16 vector registers of 8 `f32` (4 `f64`). Tiles of 2 x 6 vectors (12
/// accumulators); products with at most one vector of rows use 1 x 8; transposed products
/// (`tr`) 2 x 5.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<T: Float>(p: &Product<'_, T>, part: Part<T>, ws: &mut Workspace<T>, tr: bool) {
    use simd::{kernel_avx2 as k, Y32, Y64};
    // SAFETY: the caller upholds `driver`'s contract: the part is its own, and the processor
    // has AVX2 and FMA, which the kernels chosen here use.
    unsafe {
        match (is_f32::<T>(), tr, p.m) {
            (true, true, _) => driver::<T, 16, 5, true>(p, part, ws, as_kernel(k::<Y32, 2, 5>)),
            (true, _, 0..=8) => driver::<T, 8, 8, false>(p, part, ws, as_kernel(k::<Y32, 1, 8>)),
            (true, _, _) => driver::<T, 16, 6, false>(p, part, ws, as_kernel(k::<Y32, 2, 6>)),
            (false, true, _) => driver::<T, 8, 5, true>(p, part, ws, as_kernel(k::<Y64, 2, 5>)),
            (false, _, 0..=4) => driver::<T, 4, 8, false>(p, part, ws, as_kernel(k::<Y64, 1, 8>)),
            (false, _, _) => driver::<T, 8, 6, false>(p, part, ws, as_kernel(k::<Y64, 2, 6>)),
        }
    }
}

/// Any processor: small tiles of plain loops.
unsafe fn portable<T: Float>(p: &Product<'_, T>, part: Part<T>, ws: &mut Workspace<T>, tr: bool) {
    // SAFETY: the caller upholds `driver`'s contract: the part is its own (the portable
    // kernels need no instruction set).
    unsafe {
        match (is_f32::<T>(), tr) {
            (true, true) => driver::<T, 8, 4, true>(p, part, ws, kernel_portable::<T, 8, 4>),
            (true, false) => driver::<T, 8, 4, false>(p, part, ws, kernel_portable::<T, 8, 4>),
            (false, true) => driver::<T, 4, 4, true>(p, part, ws, kernel_portable::<T, 4, 4>),
            (false, false) => driver::<T, 4, 4, false>(p, part, ws, kernel_portable::<T, 4, 4>),
        }
    }
}

/// The largest `MR NR` of any kernel: the scratch tile for edges.
const MAX_TILE: usize = 32 * 12;

/// The blocked loops around the micro-kernel (inlined into each instruction-set variant),
/// over the block `part` of `C`. With `TR` the product computed is `Cᵀ` (`p` is the
/// transposed product, `part` the whole of it) and every tile is written back transposed into
/// `part.c`, which holds `C`.
///
/// # Safety
/// As for [`run`]: no other thread touches the part's rows of its columns; the processor has
/// the kernel's instruction set.
#[inline(always)]
unsafe fn driver<T: Float, const MR: usize, const NR: usize, const TR: bool>(
    p: &Product<'_, T>,
    part: Part<T>,
    ws: &mut Workspace<T>,
    kernel: MicroKernel<T>,
) {
    assert!(MR * NR <= MAX_TILE);
    let Part { rows, cols, c } = part;
    let (m, k) = (p.m, p.k);
    // Inner dimension in equal blocks of at most KC.
    let kc_max = k.div_ceil(k.div_ceil(KC));
    let mc_max = round_up(rows.len().min(MC), MR);
    let nc_max = round_up(cols.len().min(NC), NR);
    let apack = aligned(&mut ws.a, mc_max * kc_max);
    let bpack = aligned(&mut ws.b, kc_max * nc_max);
    let mut scratch = [T::zero(); MAX_TILE];
    let mut jc = cols.start;
    while jc < cols.end {
        let nc = (cols.end - jc).min(NC);
        let mut pc = 0;
        while pc < k {
            let kc = (k - pc).min(kc_max);
            let bp = &mut bpack[..kc * round_up(nc, NR)];
            // Full panels read in place, or everything packed.
            let direct = if rows.len().div_ceil(MR) <= DIRECT_B_MAX_PANELS || p.op_b == Op::N {
                nc / NR
            } else {
                0
            };
            pack_b::<T, NR>(
                p,
                pc,
                kc,
                jc + direct * NR,
                nc - direct * NR,
                &mut bp[direct * NR * kc..],
            );
            // Later blocks of the inner dimension add to what the first one wrote.
            let beta = if pc == 0 { p.beta } else { T::one() };
            let mut ic = rows.start;
            while ic < rows.end {
                let mc = (rows.end - ic).min(MC);
                let ap = &mut apack[..round_up(mc, MR) * kc];
                // Full panels read in place, or everything packed.
                let direct_a = if p.op_a == Op::N && cols.len() <= DIRECT_A_MAX_COLS {
                    mc / MR
                } else {
                    0
                };
                pack_a::<T, MR>(
                    p,
                    ic + direct_a * MR,
                    mc - direct_a * MR,
                    pc,
                    kc,
                    &mut ap[direct_a * MR * kc..],
                );
                for (s, bpanel) in bp.chunks_exact(NR * kc).enumerate() {
                    let bsrc = if s < direct {
                        let (j0, (rs, cs)) = (jc + s * NR, b_strides(p));
                        let start = match p.op_b {
                            Op::N => pc + j0 * k,
                            Op::T => j0 + pc * p.n,
                        };
                        // Every element the kernel reads lies in this slice (bounds-checked).
                        let span = &p.b[start..=start + (kc - 1) * rs + (NR - 1) * cs];
                        (span.as_ptr(), rs, cs)
                    } else {
                        (bpanel.as_ptr(), NR, 1)
                    };
                    let j = jc + s * NR - cols.start;
                    let nr = (jc + nc - cols.start - j).min(NR);
                    for (r, apanel) in ap.chunks_exact(MR * kc).enumerate() {
                        let i = ic + r * MR;
                        let mr = (ic + mc - i).min(MR);
                        let asrc = if r < direct_a {
                            let start = i + pc * m;
                            // Every element the kernel reads lies in this slice (checked).
                            let span = &p.a[start..start + (kc - 1) * m + MR];
                            (span.as_ptr(), m)
                        } else {
                            (apanel.as_ptr(), MR)
                        };
                        let at = i + j * m;
                        if !TR && mr == MR && nr == NR {
                            // The whole MR x NR tile at column stride m (bounds-checked).
                            let tile = c.at(at, (NR - 1) * m + MR);
                            // SAFETY: the panels hold kc MR and kc NR values, the tile lies in
                            // C and in this part's rows, and the processor has the kernel's
                            // features (checked in `run`).
                            unsafe { kernel(kc, asrc, bsrc, tile, m, p.alpha, beta) };
                        } else {
                            // An edge tile: compute it whole into the scratch tile, then add
                            // the part inside C.
                            let tile = &mut scratch[..MR * NR];
                            // SAFETY: as above, with the scratch tile (column stride MR).
                            unsafe {
                                kernel(kc, asrc, bsrc, tile.as_mut_ptr(), MR, T::one(), T::zero())
                            };
                            let put = |d: &mut T, v: T| {
                                *d = if beta == T::zero() {
                                    p.alpha * v
                                } else {
                                    p.alpha * v + beta * *d
                                };
                            };
                            for (jj, src) in tile.chunks_exact(MR).take(nr).enumerate() {
                                if TR {
                                    // Cᵀ[i + ii, j + jj] is C[j + jj, i + ii].
                                    for (ii, &v) in src[..mr].iter().enumerate() {
                                        // SAFETY: a TR product is never split.
                                        put(
                                            &mut unsafe { c.slice(j + jj + (i + ii) * p.n, 1) }[0],
                                            v,
                                        );
                                    }
                                } else {
                                    // SAFETY: this part's rows of one column.
                                    let dst = unsafe { c.slice(at + jj * m, mr) };
                                    for (d, &v) in dst.iter_mut().zip(src) {
                                        put(d, v);
                                    }
                                }
                            }
                        }
                    }
                }
                ic += mc;
            }
            pc += kc;
        }
        jc += nc;
    }
}

/// Row and column strides of `op(B)` as stored.
fn b_strides<T>(p: &Product<'_, T>) -> (usize, usize) {
    match p.op_b {
        Op::N => (1, p.k),
        Op::T => (p.n, 1),
    }
}

/// Packs rows `ic..ic + mc`, columns `pc..pc + kc` of `op(A)` into panels of `MR` rows: panel
/// `r` holds `op(A)[ic + r MR + i, pc + q]` at `r MR kc + q MR + i`, zero past row `mc`.
#[inline(always)]
fn pack_a<T: Float, const MR: usize>(
    p: &Product<'_, T>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    out: &mut [T],
) {
    let (m, k, a) = (p.m, p.k, p.a);
    for (r, panel) in out.chunks_exact_mut(MR * kc).enumerate() {
        let i0 = ic + r * MR;
        let rows = (ic + mc - i0).min(MR);
        match p.op_a {
            // Column q of the panel is a contiguous run of column pc + q of A.
            Op::N => {
                if rows == MR {
                    for (q, dst) in panel.chunks_exact_mut(MR).enumerate() {
                        dst.copy_from_slice(&a[i0 + (pc + q) * m..][..MR]);
                    }
                } else {
                    // A short panel: element by element (a library copy call per column
                    // would cost more than the few values it moves).
                    panel.fill(T::zero());
                    for (q, dst) in panel.chunks_exact_mut(MR).enumerate() {
                        let src = &a[i0 + (pc + q) * m..][..rows];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = v;
                        }
                    }
                }
            }
            // Row i of op(A) is a contiguous run of column i of the stored A.
            Op::T => {
                if rows == MR {
                    let src: [&[T]; MR] = std::array::from_fn(|i| &a[(i0 + i) * k + pc..][..kc]);
                    for (q, dst) in panel.chunks_exact_mut(MR).enumerate() {
                        for (d, s) in dst.iter_mut().zip(&src) {
                            *d = s[q];
                        }
                    }
                } else {
                    panel.fill(T::zero());
                    for i in 0..rows {
                        let src = &a[(i0 + i) * k + pc..][..kc];
                        for (q, &v) in src.iter().enumerate() {
                            panel[q * MR + i] = v;
                        }
                    }
                }
            }
        }
    }
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of `op(B)` into panels of `NR` columns:
/// panel `s` holds `op(B)[pc + q, jc + s NR + j]` at `s NR kc + q NR + j`, zero past column `nc`.
#[inline(always)]
fn pack_b<T: Float, const NR: usize>(
    p: &Product<'_, T>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    out: &mut [T],
) {
    let (n, k, b) = (p.n, p.k, p.b);
    for (s, panel) in out.chunks_exact_mut(NR * kc).enumerate() {
        let j0 = jc + s * NR;
        let width = (jc + nc - j0).min(NR);
        match p.op_b {
            // Column j of op(B) is a contiguous run of column j of the stored B.
            Op::N => {
                if width == NR {
                    let src: [&[T]; NR] = std::array::from_fn(|j| &b[(j0 + j) * k + pc..][..kc]);
                    for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
                        for (d, s) in dst.iter_mut().zip(&src) {
                            *d = s[q];
                        }
                    }
                } else {
                    panel.fill(T::zero());
                    for j in 0..width {
                        let src = &b[(j0 + j) * k + pc..][..kc];
                        for (q, &v) in src.iter().enumerate() {
                            panel[q * NR + j] = v;
                        }
                    }
                }
            }
            // Row q of op(B) is a contiguous run of column pc + q of the stored B.
            Op::T => {
                if width == NR {
                    // Fixed-size copies, inlined (a library call per row cost more than the
                    // NR values it moved).
                    for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
                        let src = &b[j0 + (pc + q) * n..][..NR];
                        if let (Ok(dst), Ok(src)) =
                            (<&mut [T; NR]>::try_from(dst), <&[T; NR]>::try_from(src))
                        {
                            *dst = *src;
                        }
                    }
                } else {
                    for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
                        let src = &b[j0 + (pc + q) * n..][..width];
                        dst[..width].copy_from_slice(src);
                        dst[width..].fill(T::zero());
                    }
                }
            }
        }
    }
}

/// The portable micro-kernel (see [`MicroKernel`]): `NR` columns of `MR` accumulators.
///
/// # Safety
/// As for [`MicroKernel`].
unsafe fn kernel_portable<T: Float, const MR: usize, const NR: usize>(
    kc: usize,
    (a, lda): (*const T, usize),
    (b, rsb, csb): (*const T, usize, usize),
    c: *mut T,
    ldc: usize,
    alpha: T,
    beta: T,
) {
    let mut acc = [[T::zero(); MR]; NR];
    for q in 0..kc {
        // SAFETY: the caller guarantees column q of the A block readable.
        let ap = unsafe { std::slice::from_raw_parts(a.add(q * lda), MR) };
        for (j, col) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees (q, j) readable.
            let bj = unsafe { *b.add(q * rsb + j * csb) };
            for (x, &ai) in col.iter_mut().zip(ap) {
                *x += ai * bj;
            }
        }
    }
    for (j, col) in acc.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            // SAFETY: (i, j) lies in the tile the caller guarantees writable.
            let d = unsafe { &mut *c.add(i + j * ldc) };
            *d = if beta == T::zero() {
                alpha * v
            } else {
                alpha * v + beta * *d
            };
        }
    }
}

/// The vectorized micro-kernels: one body over a small vector trait, compiled per instruction
/// set, whose accumulators the compiler keeps in registers.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// The vector operations a micro-kernel needs. Every method is `unsafe`: it needs the
    /// instruction set of its type (the kernels that call them enable it), and the pointer
    /// ones need `LANES` valid values.
    pub(super) trait Vector: Copy {
        /// The scalar type.
        type T: Copy;
        /// Values per vector.
        const LANES: usize;
        unsafe fn zero() -> Self;
        unsafe fn splat(x: Self::T) -> Self;
        unsafe fn load(p: *const Self::T) -> Self;
        unsafe fn store(self, p: *mut Self::T);
        /// `a b + c`, fused.
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
        unsafe fn mul(a: Self, b: Self) -> Self;
    }

    macro_rules! vector {
        ($name:ident, $v:ty, $t:ty, $lanes:expr, $zero:ident, $splat:ident, $load:ident,
         $store:ident, $fma:ident, $mul:ident) => {
            /// A vector register of the kernels.
            #[derive(Clone, Copy)]
            pub(super) struct $name($v);
            impl Vector for $name {
                type T = $t;
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    // SAFETY: the caller enables the instruction set.
                    $name(unsafe { $zero() })
                }
                #[inline(always)]
                unsafe fn splat(x: $t) -> Self {
                    // SAFETY: as above.
                    $name(unsafe { $splat(x) })
                }
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    // SAFETY: as above; `p` holds LANES values.
                    $name(unsafe { $load(p) })
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    // SAFETY: as above; `p` has room for LANES values.
                    unsafe { $store(p, self.0) }
                }
                #[inline(always)]
                unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
                    // SAFETY: as above.
                    $name(unsafe { $fma(a.0, b.0, c.0) })
                }
                #[inline(always)]
                unsafe fn mul(a: Self, b: Self) -> Self {
                    // SAFETY: as above.
                    $name(unsafe { $mul(a.0, b.0) })
                }
            }
        };
    }

    vector!(
        Z32,
        __m512,
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps
    );
    vector!(
        Z64,
        __m512d,
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_mul_pd
    );
    vector!(
        Y32,
        __m256,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps
    );
    vector!(
        Y64,
        __m256d,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_mul_pd
    );

    /// The micro-kernel body (see `MicroKernel`): `MV` vectors of rows by `NR` columns.
    #[inline(always)]
    unsafe fn body<V: Vector, const MV: usize, const NR: usize, const UNIT: bool>(
        kc: usize,
        (a, lda): (*const V::T, usize),
        (b, rsb, csb): (*const V::T, usize, usize),
        c: *mut V::T,
        ldc: usize,
        alpha: V::T,
        beta: V::T,
    ) where
        V::T: PartialEq + Default,
    {
        // SAFETY (whole body): the caller guarantees the panel lengths, the writable tile
        // and the instruction set (see `MicroKernel`).
        unsafe {
            let mut acc = [[V::zero(); MV]; NR];
            let mut a = a;
            // One pointer per column of B (in place, columns are far apart: stepping one
            // pointer from column to column would chain the address additions).
            let mut bs: [*const V::T; NR] =
                std::array::from_fn(|j| b.add(if UNIT { j } else { j * csb }));
            for _ in 0..kc {
                let av: [V; MV] = std::array::from_fn(|v| V::load(a.add(v * V::LANES)));
                for (col, bj) in acc.iter_mut().zip(&mut bs) {
                    let bv = V::splat(**bj);
                    *bj = bj.add(rsb);
                    for (x, &ai) in col.iter_mut().zip(&av) {
                        *x = V::fma(ai, bv, *x);
                    }
                }
                a = a.add(lda);
            }
            let (alpha, beta0, beta) = (V::splat(alpha), beta == V::T::default(), V::splat(beta));
            for (j, col) in acc.iter().enumerate() {
                for (v, &x) in col.iter().enumerate() {
                    let p = c.add(j * ldc + v * V::LANES);
                    let r = if beta0 {
                        V::mul(alpha, x)
                    } else {
                        V::fma(beta, V::load(p), V::mul(alpha, x))
                    };
                    r.store(p);
                }
            }
        }
    }

    /// The micro-kernel for AVX-512 vectors.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn kernel_avx512<V: Vector, const MV: usize, const NR: usize>(
        kc: usize,
        a: (*const V::T, usize),
        b: (*const V::T, usize, usize),
        c: *mut V::T,
        ldc: usize,
        alpha: V::T,
        beta: V::T,
    ) where
        V::T: PartialEq + Default,
    {
        // SAFETY (both): forwarded from the caller; the loop over a packed panel (unit
        // column stride) is compiled separately, with constant offsets.
        if b.2 == 1 {
            unsafe { body::<V, MV, NR, true>(kc, a, b, c, ldc, alpha, beta) }
        } else {
            unsafe { body::<V, MV, NR, false>(kc, a, b, c, ldc, alpha, beta) }
        }
    }

    /// The micro-kernel for AVX2 vectors.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_avx2<V: Vector, const MV: usize, const NR: usize>(
        kc: usize,
        a: (*const V::T, usize),
        b: (*const V::T, usize, usize),
        c: *mut V::T,
        ldc: usize,
        alpha: V::T,
        beta: V::T,
    ) where
        V::T: PartialEq + Default,
    {
        // SAFETY (both): forwarded from the caller; the loop over a packed panel (unit
        // column stride) is compiled separately, with constant offsets.
        if b.2 == 1 {
            unsafe { body::<V, MV, NR, true>(kc, a, b, c, ldc, alpha, beta) }
        } else {
            unsafe { body::<V, MV, NR, false>(kc, a, b, c, ldc, alpha, beta) }
        }
    }
}

/// Persistent helper threads for large products: each waits on its own slot for a job that
/// borrows the caller's stack, and the caller waits until every job it handed out is done.
/// Nothing is allocated once the helpers exist.
///
/// Both sides spin for a while before they sleep: a training step hands out several products a
/// few tens of microseconds apart, and waking a sleeping thread (a futex, and on a virtual
/// machine an interrupt through the hypervisor) costs about as much as one of them. A helper
/// that has had no job for [`SPIN`] goes to sleep on a condition variable.
#[cfg(feature = "threads")]
pub(crate) mod pool {
    use std::cell::UnsafeCell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
    use std::time::{Duration, Instant};

    /// How long a helper spins for its next job, and the caller for its helpers, before
    /// sleeping.
    const SPIN: Duration = Duration::from_millis(2);

    /// Spins without yielding the processor, before [`Helper::wait`] yields between checks
    /// (a few microseconds).
    const PURE_SPINS: u32 = 4096;

    /// A job: a closure on the caller's stack, its lifetime erased (see [`run`]).
    #[derive(Clone, Copy)]
    struct Job(*const (dyn Fn() + Sync + 'static));

    /// The states of a helper's slot.
    const IDLE: u8 = 0;
    const POSTED: u8 = 1;
    const RUNNING: u8 = 2;
    const DONE: u8 = 3;
    const PANICKED: u8 = 4;

    /// One helper thread's mailbox. The caller writes `job` while the state is `IDLE` (the
    /// helper does not read it then), then publishes it by storing `POSTED`; the helper claims
    /// it by swapping `POSTED` for `RUNNING` and reports `DONE` or `PANICKED`; the caller sets
    /// `IDLE` again. A caller that finished the work before the helper claimed the job takes
    /// it back (`POSTED` to `IDLE`) instead of waiting for a thread the system has not run yet.
    struct Helper {
        state: AtomicU8,
        job: UnsafeCell<Option<Job>>,
        /// Whether the helper (waiting for a job) or the caller (waiting for the result)
        /// sleeps on `wake`: the other side then takes `lock` and notifies.
        helper_sleeps: AtomicBool,
        caller_sleeps: AtomicBool,
        lock: Mutex<()>,
        wake: Condvar,
    }

    // SAFETY: `job` is written only by the caller while the state is `IDLE` and read only by
    // the helper after it saw `POSTED` (sequentially consistent atomics order the two), and
    // the closure behind it is `Sync`, so calling it from the helper thread through a shared
    // reference is sound; the caller keeps it alive until the job is done (see `run`).
    unsafe impl Sync for Helper {}

    impl Helper {
        fn guard(&self) -> MutexGuard<'_, ()> {
            self.lock.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Waits until `ready(state)`, spinning for up to [`SPIN`], then sleeping with `sleeps`
        /// raised. The side that changes the state checks `sleeps` after its store, and
        /// this side checks the state after raising `sleeps` (both sequentially consistent):
        /// one of them sees the other's write, so no wake-up is lost.
        ///
        /// A helper waiting for a job (`rested` is `Some`) stops spinning as soon as [`rest`]
        /// is called.
        fn wait(
            &self,
            sleeps: &AtomicBool,
            ready: impl Fn(u8) -> bool,
            rested: Option<usize>,
        ) -> u8 {
            let start = Instant::now();
            let mut spins = 0u32;
            loop {
                let s = self.state.load(SeqCst);
                if ready(s) {
                    return s;
                }
                if rested.is_some_and(|r| r != RESTS.load(SeqCst)) {
                    break;
                }
                spins = spins.wrapping_add(1);
                if spins < PURE_SPINS {
                    std::hint::spin_loop();
                } else {
                    // On a busy machine the thread waited for may need this core.
                    std::thread::yield_now();
                    if spins.is_multiple_of(16) && start.elapsed() >= SPIN {
                        break;
                    }
                }
            }
            let mut g = self.guard();
            sleeps.store(true, SeqCst);
            let s = loop {
                let s = self.state.load(SeqCst);
                if ready(s) {
                    break s;
                }
                g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            };
            sleeps.store(false, SeqCst);
            s
        }

        /// Stores `state` and wakes the other side if it sleeps.
        fn set(&self, state: u8, other_sleeps: &AtomicBool) {
            self.state.store(state, SeqCst);
            if other_sleeps.load(SeqCst) {
                let _g = self.guard();
                self.wake.notify_all();
            }
        }

        /// The helper thread's loop: run each job, then report.
        fn serve(&self) {
            loop {
                self.wait(
                    &self.helper_sleeps,
                    |s| s == POSTED,
                    Some(RESTS.load(SeqCst)),
                );
                if self
                    .state
                    .compare_exchange(POSTED, RUNNING, SeqCst, SeqCst)
                    .is_err()
                {
                    // The caller took the job back.
                    continue;
                }
                // SAFETY: the state is `RUNNING`: the caller wrote the job before and does not
                // touch it until the state changes again.
                let job = unsafe { *self.job.get() };
                let ok = job.is_some_and(|job| {
                    // SAFETY: `run` keeps the closure alive until it sees `DONE`/`PANICKED`.
                    catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)() })).is_ok()
                });
                self.set(if ok { DONE } else { PANICKED }, &self.caller_sleeps);
            }
        }

        /// Hands out `job` (the state must be `IDLE`).
        fn post(&self, job: Job) {
            // SAFETY: the state is `IDLE`, so the helper does not read `job` now.
            unsafe { *self.job.get() = Some(job) };
            self.set(POSTED, &self.helper_sleeps);
        }

        /// Takes the job back if the helper has not started it, else waits until it is
        /// done; whether it panicked.
        fn join(&self) -> bool {
            if self
                .state
                .compare_exchange(POSTED, IDLE, SeqCst, SeqCst)
                .is_ok()
            {
                return false;
            }
            let s = self.wait(&self.caller_sleeps, |s| s == DONE || s == PANICKED, None);
            self.state.store(IDLE, SeqCst);
            s == PANICKED
        }
    }

    std::thread_local! {
        /// The number of the helper this thread is (from 1), or 0 for any other thread.
        static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Whether [`run`] called on this thread leaves the helpers out (see [`set_alone`]).
        static ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// How many times [`rest`] was called: a spinning helper that sees it change sleeps.
    static RESTS: AtomicUsize = AtomicUsize::new(0);

    /// Makes [`run`] on the calling thread do all the work itself (`true`), or hand it out to
    /// the helpers again (`false`); returns the previous setting. Work is still cut into the
    /// same parts, so results and workspace sizes stay the same: only who runs them changes.
    pub(crate) fn set_alone(alone: bool) -> bool {
        ALONE.with(|a| a.replace(alone))
    }

    /// Sends the helpers that are spinning for their next job to sleep now instead of after
    /// [`SPIN`]: for a caller about to work alone for a while, whose core a spinning helper
    /// may share.
    pub(crate) fn rest() {
        RESTS.fetch_add(1, SeqCst);
    }

    /// The calling thread's number among the threads of [`run`]: 0 for the caller, `i` for
    /// the `i`-th helper. Work split into one part per thread can use it so that each core
    /// gets the same part on every call (and finds its data in its own cache).
    pub(crate) fn index() -> usize {
        INDEX.with(|i| i.get())
    }

    /// The helpers started so far (they live as long as the process).
    static HELPERS: Mutex<Vec<&'static Helper>> = Mutex::new(Vec::new());

    /// Runs `f` on the calling thread and on up to `threads - 1` helpers at once, and returns
    /// when every call has returned. If the helpers are busy (another thread is in a product),
    /// cannot be started or are left out ([`set_alone`]), `f` runs on the calling thread
    /// alone; `f` must therefore do the whole work however many times it is called (it takes
    /// work from a shared queue).
    pub(crate) fn run(threads: usize, f: &(dyn Fn() + Sync)) {
        if ALONE.with(|a| a.get()) {
            f();
            return;
        }
        let mut helpers = match HELPERS.try_lock() {
            Ok(h) => h,
            // A panic in an earlier product poisoned the lock; the helpers are still sound.
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                f();
                return;
            }
        };
        while helpers.len() + 1 < threads {
            let index = helpers.len() + 1;
            let helper: &'static Helper = Box::leak(Box::new(Helper {
                state: AtomicU8::new(IDLE),
                job: UnsafeCell::new(None),
                helper_sleeps: AtomicBool::new(false),
                caller_sleeps: AtomicBool::new(false),
                lock: Mutex::new(()),
                wake: Condvar::new(),
            }));
            let started = std::thread::Builder::new()
                .name("nn-gemm".into())
                .spawn(move || {
                    INDEX.with(|i| i.set(index));
                    helper.serve()
                });
            if started.is_err() {
                break;
            }
            helpers.push(helper);
        }
        let used = &helpers[..helpers.len().min(threads.saturating_sub(1))];
        // SAFETY: only the lifetime is erased; every helper given the job is joined below,
        // also when `f` panics here, before `f` can go out of scope.
        let job = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync + 'static)>(
                f,
            )
        });
        for h in used {
            h.post(job);
        }
        let mine = catch_unwind(AssertUnwindSafe(f));
        let mut panicked = false;
        for h in used {
            panicked |= h.join();
        }
        if let Err(e) = mine {
            std::panic::resume_unwind(e);
        }
        assert!(!panicked, "a matrix-product helper thread panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `alpha op(A) op(B) + beta C` in f64, and per element a bound on the rounding error of
    /// any summation order in `T` (`eps` its unit roundoff): `3 (k + 2) eps` times the sum of
    /// the magnitudes of the terms.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        op_a: Op,
        op_b: Op,
        m: usize,
        n: usize,
        k: usize,
        alpha: f64,
        a: &[f64],
        b: &[f64],
        beta: f64,
        c: &[f64],
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let sum = super::super::tests::naive(op_a, op_b, m, n, k, a, b);
        let abs = |x: &[f64]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
        let mag = super::super::tests::naive(op_a, op_b, m, n, k, &abs(a), &abs(b));
        let mut want = vec![0.0; m * n];
        let mut tol = vec![0.0; m * n];
        for i in 0..m * n {
            let old = if beta == 0.0 { 0.0 } else { beta * c[i] };
            want[i] = alpha * sum[i] + old;
            tol[i] = 3.0 * (k + 2) as f64 * eps * (alpha.abs() * mag[i] + old.abs()) + 1e-300;
        }
        (want, tol)
    }

    /// Checks one product in `T` against the naive one.
    #[allow(clippy::too_many_arguments)]
    fn check<T: Float>(
        rng: &mut StdRng,
        isa: Isa,
        threads: usize,
        op_a: Op,
        op_b: Op,
        (m, n, k): (usize, usize, usize),
        alpha: f64,
        beta: f64,
    ) {
        let eps = if is_f32::<T>() {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        let mut draw = |len: usize| -> Vec<f64> {
            (0..len)
                .map(|_| Float::to_f64(T::of(rng.random_range(-1.0..1.0))))
                .collect()
        };
        let (a, b) = (draw(m * k), draw(k * n));
        let mut c0 = draw(m * n);
        if beta == 0.0 {
            // beta = 0 must ignore the old C, NaN included.
            c0.iter_mut().step_by(3).for_each(|v| *v = f64::NAN);
        }
        let (want, tol) = naive(op_a, op_b, m, n, k, alpha, &a, &b, beta, &c0, eps);
        let conv = |v: &[f64]| v.iter().map(|&x| T::of(x)).collect::<Vec<T>>();
        let (at, bt) = (conv(&a), conv(&b));
        let mut c = conv(&c0);
        let p = Product {
            op_a,
            op_b,
            m,
            n,
            k,
            alpha: T::of(alpha),
            a: &at,
            b: &bt,
            beta: T::of(beta),
        };
        // An epilogue that doubles every value and counts its visits: each element of C
        // exactly once, whatever the split.
        let visits: Vec<std::sync::atomic::AtomicU8> = (0..m * n)
            .map(|_| std::sync::atomic::AtomicU8::new(0))
            .collect();
        let twice = |i: usize, j: usize, col: &mut [T]| {
            for (ii, v) in col.iter_mut().enumerate() {
                visits[i + ii + j * m].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *v = *v + *v;
            }
        };
        gemm_on(&p, &mut c, threads, isa, Some(&twice));
        assert!(
            visits
                .iter()
                .all(|v| v.load(std::sync::atomic::Ordering::Relaxed) == 1),
            "{isa:?} T{threads} {op_a:?}{op_b:?} {m}x{n}x{k}: the epilogue missed or repeated \
             an element"
        );
        for (idx, ((got, w), t)) in c.iter().zip(&want).zip(&tol).enumerate() {
            let err = (Float::to_f64(*got) / 2.0 - w).abs();
            assert!(
                err <= *t,
                "{} {isa:?} T{threads} {op_a:?}{op_b:?} {m}x{n}x{k} alpha {alpha} beta {beta}: \
                 C[{}, {}] = {got}, want {w} (error {err:e} > {t:e})",
                T::NAME,
                idx % m,
                idx / m
            );
        }
    }

    /// Sizes around every tile and block edge.
    const EDGES: [usize; 14] = [1, 2, 4, 7, 8, 10, 12, 15, 16, 17, 31, 32, 33, 48];

    #[test]
    fn matches_naive_for_random_shapes_every_transpose_and_scale() {
        let mut rng = StdRng::seed_from_u64(7);
        let scales = [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (2.0, -1.0), (0.0, 0.5)];
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            if !isa.supported() {
                continue;
            }
            for case in 0..60 {
                let pick = |rng: &mut StdRng| {
                    if rng.random_bool(0.7) {
                        EDGES[rng.random_range(0..EDGES.len())]
                    } else {
                        rng.random_range(1..90)
                    }
                };
                let shape = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
                let (alpha, beta) = scales[case % scales.len()];
                for op_a in [Op::N, Op::T] {
                    for op_b in [Op::N, Op::T] {
                        check::<f32>(&mut rng, isa, 1, op_a, op_b, shape, alpha, beta);
                        check::<f64>(&mut rng, isa, 1, op_a, op_b, shape, alpha, beta);
                    }
                }
            }
        }
    }

    #[test]
    fn matches_naive_across_blocks_of_every_dimension() {
        // m past MC, k past KC (and not a multiple of it), n past one thread's part.
        let mut rng = StdRng::seed_from_u64(8);
        for &shape in &[(200, 37, 300), (10, 130, 530), (385, 20, 17), (64, 64, 257)] {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    check::<f32>(&mut rng, Isa::best(), 1, op_a, op_b, shape, 1.0, 0.0);
                    check::<f64>(&mut rng, Isa::best(), 1, op_a, op_b, shape, 0.5, 1.5);
                }
            }
        }
    }

    #[test]
    fn the_network_shapes_match_naive() {
        // W1 and W2 forward, weight-gradient and input-gradient products at batch 32, W1's
        // also at 128 (both batches' forward products take the 32 x 8 tile on AVX-512).
        let mut rng = StdRng::seed_from_u64(9);
        let w1 = [(128, 784), (10, 128)];
        let w2 = [(512, 512), (10, 512)];
        for (b, layers) in [(32, &w1[..]), (32, &w2[..]), (128, &w1[..])] {
            for &(o, i) in layers {
                check::<f32>(&mut rng, Isa::best(), 1, Op::N, Op::N, (o, b, i), 1.0, 1.0);
                check::<f32>(&mut rng, Isa::best(), 1, Op::N, Op::T, (o, i, b), 1.0, 0.0);
                check::<f32>(&mut rng, Isa::best(), 1, Op::T, Op::N, (i, b, o), 1.0, 0.0);
            }
        }
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut rng = StdRng::seed_from_u64(10);
        for (alpha, beta) in [(1.0, 0.0), (1.0, 3.0)] {
            check::<f32>(
                &mut rng,
                Isa::best(),
                1,
                Op::N,
                Op::N,
                (5, 4, 0),
                alpha,
                beta,
            );
            check::<f64>(
                &mut rng,
                Isa::best(),
                1,
                Op::T,
                Op::T,
                (5, 4, 0),
                alpha,
                beta,
            );
        }
    }

    #[cfg(feature = "threads")]
    #[test]
    fn threaded_products_match_naive() {
        let mut rng = StdRng::seed_from_u64(11);
        // Split by rows where `B` is used as stored and `A` has at least as many rows as `C`
        // has columns (the first, second and fourth shapes; the fourth in a short last part),
        // else by columns.
        for threads in [2, 3] {
            for &shape in &[
                (128, 100, 400),
                (256, 33, 700),
                (96, 784, 64),
                (300, 40, 300),
            ] {
                for (op_a, op_b) in [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N)] {
                    check::<f32>(&mut rng, Isa::best(), threads, op_a, op_b, shape, 1.0, 0.0);
                    check::<f64>(&mut rng, Isa::best(), threads, op_a, op_b, shape, 0.5, 2.0);
                }
            }
        }
    }

    #[test]
    fn workspaces_only_grow() {
        let (a, b) = (vec![1.0f32; 64 * 64], vec![1.0f32; 64 * 64]);
        let mut c = vec![0.0f32; 64 * 64];
        let mut go = |m: usize| {
            let p = Product {
                op_a: Op::N,
                op_b: Op::N,
                m,
                n: m,
                k: m,
                alpha: 1.0,
                a: &a,
                b: &b,
                beta: 0.0,
            };
            // SAFETY: `c` is borrowed whole.
            unsafe { run(&p, 0..m, 0..m, Out::new(&mut c), Isa::best()) };
            assert!(c[..m * m].iter().all(|&v| v == m as f32));
            WORKSPACE_F32.with(|w| {
                let w = w.borrow();
                (w.a.len(), w.b.len(), w.a.as_ptr(), w.b.as_ptr())
            })
        };
        let big = go(64);
        assert_eq!(go(16), big, "a smaller product reuses the buffers");
        assert_eq!(go(64), big, "the same product reuses the buffers");
    }
}
