use nn::prelude::*;

network! {
    Mnist < dense(784 -> 128, relu), dense(128 -> 10, softmax) >
}

fn main() {
    let net = Mnist::new(&mut StdRng::seed_from_u64(0));
    let image = SVector::<f32, 784>::zeros();
    let probs: SVector<f32, 5> = net.predict(&image);
    let _ = probs;
}
