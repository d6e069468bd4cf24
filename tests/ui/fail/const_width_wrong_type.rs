use nn::prelude::*;

const INPUTS: usize = 4;
const HIDDEN: i32 = 64;

network! {
    pub Net < dense(INPUTS -> HIDDEN, relu), dropout(0.5), dense(HIDDEN -> 2, softmax) >
}

fn main() {
    let net = Net::new(&mut StdRng::seed_from_u64(0));
    let probs: SVector<f32, 2> = net.predict(&SVector::<f32, 4>::zeros());
    assert_eq!(Net::PARAMS, probs.len());
}
