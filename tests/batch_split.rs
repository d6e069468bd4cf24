//! `forward` on a large batch is split into one part of columns per thread
//! (`kernel::split_batch`): every column's output has the same bits as on one thread, for
//! batches below, at and above the split threshold, in `f32` and `f64`.
//!
//! (Its own test binary: it changes the process-wide thread count.)

use nn::prelude::*;
use nn::runtime::kernel;

network! { W1 < dense(784 -> 128, relu), dropout(0.2), dense(128 -> 10, softmax) > }
network! { Deep: f64 < dense(64 -> 256, tanh), dense(256 -> 256, relu), dense(256 -> 3) > }

fn bits<T: Copy + Into<f64>>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.into().to_bits()).collect()
}

#[test]
fn split_batches_give_the_single_thread_bits() {
    let w1 = W1::new(&mut StdRng::seed_from_u64(1));
    let deep = Deep::new(&mut StdRng::seed_from_u64(2));
    // W1 splits from 21 columns (2^21 / 101,632 multiply-adds each), Deep from 26 (82,688).
    for n in [1, 5, 20, 21, 22, 33, 128, 1000, 1001] {
        let x1 = Batch::<f32, 784>::from_fn(n, |i, j| ((i * 31 + j * 17) % 97) as f32 / 97.0);
        let x2 = Batch::<f64, 64>::from_fn(n, |i, j| ((i * 13 + j * 7) % 29) as f64 / 29.0 - 0.5);
        kernel::set_threads(1);
        let (one1, one2) = (w1.forward(&x1), deep.forward(&x2));
        assert_eq!((one1.ncols(), one2.ncols()), (n, n));
        for threads in [2, 3] {
            kernel::set_threads(threads);
            let (y1, y2) = (w1.forward(&x1), deep.forward(&x2));
            assert_eq!(
                bits(y1.as_slice()),
                bits(one1.as_slice()),
                "W1, {n} columns, {threads} threads"
            );
            assert_eq!(
                bits(y2.as_slice()),
                bits(one2.as_slice()),
                "Deep, {n} columns, {threads} threads"
            );
        }
        // Each column is the network applied to that sample (softmax columns sum to one).
        for c in one1.column_iter() {
            assert!((c.sum() - 1.0).abs() < 1e-5);
        }
    }
    kernel::set_threads(1);
}
