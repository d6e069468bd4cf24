//! Generated networks are `Send + Sync`: inference from many threads at once gives exactly
//! the single-threaded results.

use nn::prelude::*;

network! { pub Classifier < dense(16 -> 32, relu), dropout(0.3), dense(32 -> 4, softmax) > }

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn networks_gradients_and_tapes_are_send_and_sync() {
    assert_send_sync::<Classifier>();
    assert_send_sync::<ClassifierGradients>();
    assert_send_sync::<ClassifierTape>();
}

#[test]
fn predict_and_forward_from_many_threads_match_one_thread() {
    let net = Classifier::new(&mut StdRng::seed_from_u64(5));
    let inputs: Vec<SVector<f32, 16>> = (0..64)
        .map(|k| SVector::from_fn(|i, _| ((i * 7 + k * 3) % 11) as f32 / 11.0 - 0.5))
        .collect();
    let batch = Batch::<f32, 16>::from_fn(64, |i, j| inputs[j][i]);
    let single: Vec<SVector<f32, 4>> = inputs.iter().map(|x| net.predict(x)).collect();
    let single_batch = net.forward(&batch);

    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut same = true;
                    for _ in 0..50 {
                        for (x, want) in inputs.iter().zip(&single) {
                            same &= net.predict(x) == *want;
                        }
                        same &= net.forward(&batch) == single_batch;
                    }
                    same
                })
            })
            .collect();
        for h in handles {
            assert!(
                h.join().expect("thread finished"),
                "a thread saw different results"
            );
        }
    });
    // predict and forward agree with each other as well.
    for (j, p) in single.iter().enumerate() {
        for i in 0..4 {
            assert!((p[i] - single_batch[(i, j)]).abs() < 1e-6);
        }
    }
}
