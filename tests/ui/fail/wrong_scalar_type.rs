use nn::prelude::*;

network! {
    Net: f64 < dense(2 -> 4, relu), dense(4 -> 1, sigmoid) >
}

fn main() {
    let net = Net::new(&mut StdRng::seed_from_u64(0));
    let _ = net.predict(&SVector::<f32, 2>::zeros());
}
