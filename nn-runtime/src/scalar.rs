//! The scalar types a network computes in: `f32` (the default) and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar a network can be generated for: `f32` or `f64`.
///
/// Besides the arithmetic of [`num_traits::Float`] it carries the matrix-product kernel the
/// generated code calls, so every large product reaches a blocked, vectorized GEMM.
pub trait Float:
    nalgebra::Scalar
    + num_traits::Float
    + num_traits::FloatConst
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + sealed::Sealed
    + 'static
{
    /// The Rust name of the type, `"f32"` or `"f64"`.
    const NAME: &'static str;

    /// Converts from `f64`, rounding to nearest for `f32`.
    fn of(v: f64) -> Self;

    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;

    /// `C = alpha * A * B + beta * C` on raw strided storage (as in BLAS).
    ///
    /// # Safety
    /// `a`, `b` and `c` must address `m x k`, `k x n` and `m x n` elements with the given
    /// row and column strides, and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller upholds `gemm_raw`'s contract, which is `gemm_crate`'s.
        unsafe { gemm_crate(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(v: f64) -> Self {
        v
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller upholds `gemm_raw`'s contract, which is `gemm_crate`'s.
        unsafe { gemm_crate(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

/// BLAS-style `C = alpha A B + beta C` through the `gemm` crate, whose convention is
/// `dst = alpha dst + beta lhs rhs` with strides given column first.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn gemm_crate<T: 'static + Copy + num_traits::Zero + PartialEq>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    beta: T,
    c: *mut T,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: the caller upholds this function's contract, which is `gemm::gemm`'s (the
    // pointers and strides describe valid matrices; `c` is not aliased).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            csc,
            rsc,
            beta != T::zero(),
            a,
            csa,
            rsa,
            b,
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            crate::kernel::parallelism(m, n, k),
        )
    }
}
