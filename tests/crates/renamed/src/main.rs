//! `nn` renamed to `neural` in Cargo.toml.

use neural::prelude::*;

network! {
    /// Generated code refers to `::neural::runtime`.
    pub Renamed < dense(4 -> 8, relu), dropout(0.5), dense(8 -> 2, softmax) >
}

fn total<N: Network<4, 2>>() -> usize {
    N::PARAMS
}

fn main() {
    let net = Renamed::new(&mut StdRng::seed_from_u64(0));
    let p = net.predict(&SVector::<f32, 4>::repeat(0.5));
    let anonymous = network!(< dense(4 -> 2, sigmoid) >);
    let q = anonymous.predict(&SVector::<f32, 4>::zeros());
    println!("{} {} {}", p.sum(), q.sum(), total::<Renamed>());
}
