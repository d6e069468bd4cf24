//! Values to and from the file's bytes: dtypes, PyTorch's row-major layout.

use crate::kernel::all_finite;
use crate::network::{Parameters, TensorInfo};
use crate::scalar::Float;
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;

/// An owned tensor to serialize.
pub(super) struct Tensor {
    pub(super) dtype: Dtype,
    pub(super) shape: Vec<usize>,
    pub(super) data: Vec<u8>,
}

impl View for Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

pub(super) fn dtype_of<T: Float>() -> Dtype {
    if T::NAME == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

pub(super) fn encode<T: Float>(values: impl Iterator<Item = T>) -> Vec<u8> {
    match dtype_of::<T>() {
        Dtype::F64 => values.flat_map(|v| v.to_f64().to_le_bytes()).collect(),
        _ => values
            .flat_map(|v| (v.to_f64() as f32).to_le_bytes())
            .collect(),
    }
}

/// Decodes little-endian values of `T`'s dtype (the dtype was checked by the caller).
pub(super) fn decode<T: Float>(bytes: &[u8]) -> Vec<T> {
    match dtype_of::<T>() {
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| {
                T::of(f64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            })
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| T::of(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
            .collect(),
    }
}

/// A tensor's shape in the file: `[rows]` for a bias, `[rows, cols]` otherwise.
pub(super) fn file_shape(t: &TensorInfo) -> Vec<usize> {
    if t.is_bias && t.cols == 1 {
        vec![t.rows]
    } else {
        vec![t.rows, t.cols]
    }
}

/// The parameters as file tensors: column-major `rows x cols` written row-major.
pub(super) fn param_tensors<T: Float, P: Parameters<T>>(params: &P) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(P::TENSORS.len());
    params.for_each_tensor(&mut |t, v| {
        let data = encode(row_major(t, v));
        out.push((
            t.name.to_owned(),
            Tensor {
                dtype: dtype_of::<T>(),
                shape: file_shape(t),
                data,
            },
        ));
    });
    out
}

/// A column-major tensor `t`'s values in the file's row-major order.
pub(super) fn row_major<'a, T: Float>(t: &TensorInfo, v: &'a [T]) -> impl Iterator<Item = T> + 'a {
    let (rows, cols) = (t.rows, t.cols);
    (0..rows * cols).map(move |k| v[(k % cols) * rows + k / cols])
}

/// Tensor `t` from the file's row-major values, column-major.
pub(super) fn column_major<T: Float>(t: &TensorInfo, row_major: &[T]) -> Vec<T> {
    let (rows, cols) = (t.rows, t.cols);
    (0..rows * cols)
        .map(|k| row_major[(k % rows) * cols + k / rows])
        .collect()
}

/// The first NaN or infinity in `values`: its index and value.
pub(super) fn first_non_finite<T: Float>(values: &[T]) -> Option<(usize, f64)> {
    if all_finite(values) {
        return None;
    }
    let i = values.iter().position(|v| !v.is_finite())?;
    Some((i, values[i].to_f64()))
}

/// The first NaN or infinity of a column-major tensor `t`, with its index in the file's
/// row-major order.
pub(super) fn first_non_finite_row_major<T: Float>(
    t: &TensorInfo,
    v: &[T],
) -> Option<(usize, f64)> {
    if all_finite(v) {
        return None;
    }
    let (i, x) = row_major(t, v).enumerate().find(|(_, x)| !x.is_finite())?;
    Some((i, x.to_f64()))
}
