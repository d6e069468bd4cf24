use nn::prelude::*;

network! {
    Mnist < dense(784 -> 128, relu), dense(128 -> 10, softmax) >
}

fn main() {
    let net = Mnist::new(&mut StdRng::seed_from_u64(0));
    let image = SVector::<f32, 100>::zeros();
    let _ = net.predict(&image);
}
