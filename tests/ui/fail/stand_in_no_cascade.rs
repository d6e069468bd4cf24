use nn::prelude::*;

network! {
    pub Mnist < dense(784 -> 128, rleu), dense(128 -> 10, softmax) >
}

fn main() {
    let net = Mnist::new(&mut StdRng::seed_from_u64(0));
    let probs: SVector<f32, 10> = net.predict(&SVector::<f32, 784>::zeros());
    let batch = net.forward(&Batch::<f32, 784>::zeros(3));
    assert_eq!(batch.ncols(), probs.len());
}
