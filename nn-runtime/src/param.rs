//! Parameter tensors: statically shaped, stored on the heap.

use crate::scalar::Float;
use nalgebra::{Const, MatrixView, MatrixViewMut};
use std::fmt;

/// An `R x C` parameter tensor (column-major) whose shape is part of its type and whose storage
/// lives on the heap, so a `dense(4096 -> 4096)` layer never touches the stack.
///
/// nalgebra's statically sized matrices live inline; [`Param::view`] and [`Param::view_mut`]
/// give statically shaped nalgebra views of this storage instead.
#[derive(Clone, PartialEq)]
pub struct Param<T, const R: usize, const C: usize> {
    data: Box<[T]>,
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
        Self {
            data: vec![T::zero(); R * C].into_boxed_slice(),
        }
    }

    /// A tensor whose element `(i, j)` is `f(i, j)`; `f` is called in column-major order.
    pub fn from_fn(mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(R * C);
        for j in 0..C {
            for i in 0..R {
                data.push(f(i, j));
            }
        }
        Self {
            data: data.into_boxed_slice(),
        }
    }

    /// A tensor from column-major values; `None` unless there are exactly `R * C` of them.
    pub fn from_column_slice(values: &[T]) -> Option<Self> {
        (values.len() == R * C).then(|| Self {
            data: values.to_vec().into_boxed_slice(),
        })
    }

    /// The column-major values.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The column-major values, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i >= R` or `j >= C`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        assert!(i < R && j < C, "index ({i}, {j}) outside {R}x{C}");
        self.data[i + j * R]
    }

    /// A statically shaped nalgebra view.
    pub fn view(&self) -> MatrixView<'_, T, Const<R>, Const<C>> {
        MatrixView::from_slice_generic(&self.data, Const::<R>, Const::<C>)
    }

    /// A statically shaped mutable nalgebra view.
    pub fn view_mut(&mut self) -> MatrixViewMut<'_, T, Const<R>, Const<C>> {
        MatrixViewMut::from_slice_generic(&mut self.data, Const::<R>, Const::<C>)
    }
}

impl<T: fmt::Debug, const R: usize, const C: usize> fmt::Debug for Param<T, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 6;
        write!(f, "Param<{}, {R}x{C}> [", std::any::type_name::<T>())?;
        for (i, v) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if self.data.len() > SHOWN {
            write!(f, ", … {} more", self.data.len() - SHOWN)?;
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
    fn huge_tensor_is_built_on_the_heap() {
        // 4096 x 4096 f32 is 64 MiB: far beyond a 2 MiB thread stack.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| Param::<f32, 4096, 4096>::zeros().as_slice().len())
            .expect("spawn");
        assert_eq!(handle.join().expect("no stack overflow"), 4096 * 4096);
    }
}
