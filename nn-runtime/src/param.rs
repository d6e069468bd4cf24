//! Parameter tensors: statically shaped, stored on the heap.

use crate::scalar::Float;
use nalgebra::{Const, MatrixView, MatrixViewMut};
use std::fmt;

/// An `R x C` parameter tensor (column-major) whose shape is part of its type and whose storage
/// lives on the heap, so a `dense(4096 -> 4096)` layer never touches the stack.
///
/// nalgebra's statically sized matrices live inline; [`Param::view`] and [`Param::view_mut`]
/// give statically shaped nalgebra views of this storage instead.
///
/// The values start on a 64-byte boundary (a cache line, and one AVX-512 register), whatever
/// the allocator returns: the kernels then load whole lines, never a register split across
/// two of them.
pub struct Param<T, const R: usize, const C: usize> {
    /// `R * C` values from `off` on, and up to one cache line of padding before them.
    buf: Box<[T]>,
    off: usize,
}

/// The alignment of a tensor's first value, in bytes.
const ALIGN: usize = 64;

impl<T: Clone, const R: usize, const C: usize> Param<T, R, C> {
    /// Storage for the `R * C` values yielded by `values`, aligned to [`ALIGN`] bytes;
    /// `filler` pads it.
    fn aligned(values: impl IntoIterator<Item = T>, filler: T) -> Self {
        let pad = ALIGN / std::mem::size_of::<T>().max(1);
        let mut buf = Vec::with_capacity(R * C + pad);
        buf.resize(pad, filler);
        buf.extend(values);
        debug_assert_eq!(buf.len(), R * C + pad);
        let buf = buf.into_boxed_slice();
        // Elements to skip so that the data starts on the boundary: at most `pad - 1`.
        let off = buf.as_ptr().align_offset(ALIGN).min(pad);
        let mut p = Self { buf, off: pad };
        if off != pad {
            // The padding after `off` moves behind the values.
            p.buf[off..].rotate_left(pad - off);
            p.off = off;
        }
        p
    }
}

impl<T: Clone, const R: usize, const C: usize> Clone for Param<T, R, C> {
    fn clone(&self) -> Self {
        // The padding holds at least one value (`ALIGN` bytes' worth), so `buf[0]` exists.
        Self::aligned(
            self.buf[self.off..self.off + R * C].iter().cloned(),
            self.buf[0].clone(),
        )
    }
}

impl<T: PartialEq, const R: usize, const C: usize> PartialEq for Param<T, R, C> {
    fn eq(&self, other: &Self) -> bool {
        self.buf[self.off..self.off + R * C] == other.buf[other.off..other.off + R * C]
    }
}

impl<T: Float, const R: usize, const C: usize> Param<T, R, C> {
    /// Number of rows.
    pub const ROWS: usize = R;
    /// Number of columns.
    pub const COLS: usize = C;
    /// Number of elements, `R * C`.
    pub const LEN: usize = R * C;

    /// A tensor of zeros.
    pub fn zeros() -> Self {
        Self::aligned(std::iter::repeat_n(T::zero(), R * C), T::zero())
    }

    /// A tensor whose element `(i, j)` is `f(i, j)`; `f` is called in column-major order.
    pub fn from_fn(mut f: impl FnMut(usize, usize) -> T) -> Self {
        Self::aligned(
            (0..C)
                .flat_map(|j| (0..R).map(move |i| (i, j)))
                .map(|(i, j)| f(i, j)),
            T::zero(),
        )
    }

    /// A tensor from column-major values; `None` unless there are exactly `R * C` of them.
    pub fn from_column_slice(values: &[T]) -> Option<Self> {
        (values.len() == R * C).then(|| Self::aligned(values.iter().copied(), T::zero()))
    }

    /// The column-major values.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        &self.buf[self.off..self.off + R * C]
    }

    /// The column-major values, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + R * C]
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i >= R` or `j >= C`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        assert!(i < R && j < C, "index ({i}, {j}) outside {R}x{C}");
        self.as_slice()[i + j * R]
    }

    /// A statically shaped nalgebra view.
    pub fn view(&self) -> MatrixView<'_, T, Const<R>, Const<C>> {
        MatrixView::from_slice_generic(self.as_slice(), Const::<R>, Const::<C>)
    }

    /// A statically shaped mutable nalgebra view.
    pub fn view_mut(&mut self) -> MatrixViewMut<'_, T, Const<R>, Const<C>> {
        MatrixViewMut::from_slice_generic(self.as_mut_slice(), Const::<R>, Const::<C>)
    }
}

impl<T: fmt::Debug, const R: usize, const C: usize> fmt::Debug for Param<T, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 6;
        write!(f, "Param<{}, {R}x{C}> [", std::any::type_name::<T>())?;
        for (i, v) in self.buf[self.off..].iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if R * C > SHOWN {
            write!(f, ", … {} more", R * C - SHOWN)?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_column_major_and_views_agree() {
        let p = Param::<f64, 2, 3>::from_fn(|i, j| (10 * i + j) as f64);
        assert_eq!(p.as_slice(), &[0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
        assert_eq!(p.view()[(1, 2)], 12.0);
        assert_eq!(p.get(1, 0), 10.0);
        assert!(Param::<f64, 2, 3>::from_column_slice(&[1.0; 5]).is_none());
    }

    #[test]
    fn values_start_on_a_cache_line_also_after_clone() {
        for _ in 0..20 {
            // Allocations of assorted sizes in between, so the allocator's offsets vary.
            let spacer = std::hint::black_box(vec![0u8; 24]);
            let p = Param::<f32, 3, 5>::from_fn(|i, j| (i * 5 + j) as f32);
            let q = p.clone();
            for t in [&p, &q] {
                assert_eq!(t.as_slice().as_ptr() as usize % 64, 0);
                assert_eq!(t.as_slice().len(), 15);
                assert_eq!(t.get(2, 4), 14.0);
            }
            assert_eq!(p, q);
            let z = Param::<f64, 7, 1>::zeros();
            assert_eq!(z.as_slice().as_ptr() as usize % 64, 0);
            assert_eq!(z.as_slice(), &[0.0; 7]);
            drop(spacer);
        }
    }

    #[test]
    fn huge_tensor_is_built_on_the_heap() {
        // 4096 x 4096 f32 is 64 MiB: far beyond a 2 MiB thread stack.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| Param::<f32, 4096, 4096>::zeros().as_slice().len())
            .expect("spawn");
        assert_eq!(handle.join().expect("no stack overflow"), 4096 * 4096);
    }
}
