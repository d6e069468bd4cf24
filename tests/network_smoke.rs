use nn::prelude::*;

network! {
    /// Handwritten-digit classifier.
    #[derive(Clone, Debug)]
    pub Mnist < dense(784 -> 128, relu), dropout(0.5), dense(128 -> 10, softmax) >
}

#[test]
fn smoke() {
    let mut rng = StdRng::seed_from_u64(7);
    let net = Mnist::new(&mut rng);
    let image = SVector::<f32, 784>::repeat(0.5);
    let probs: SVector<f32, 10> = net.predict(&image);
    assert!((probs.sum() - 1.0).abs() < 1e-5);
    let batch = Batch::<f32, 784>::from_fn(3, |i, j| ((i + j) % 7) as f32 / 7.0);
    let out = net.forward(&batch);
    assert_eq!(out.ncols(), 3);
    println!("{}", net.summary());
}
