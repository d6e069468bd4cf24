//! Widths given by const items: plain, `crate::` and `self::` paths, and consts that agree.
#![deny(warnings)]

use nn::prelude::*;

mod consts {
    pub const HIDDEN: usize = 16;
    pub const ALSO_HIDDEN: usize = 16;
}

const INPUTS: usize = 8;
const CLASSES: usize = 3;

network! {
    Consts < dense(INPUTS -> crate::consts::HIDDEN, relu), dropout(0.1),
        dense(consts::ALSO_HIDDEN -> self::CLASSES, softmax) >
}

network! { Mixed < dense(INPUTS -> 16, relu), dense(consts::HIDDEN -> 2) > }

fn main() {
    assert_eq!(Consts::INPUTS, 8);
    assert_eq!(Consts::OUTPUTS, 3);
    assert_eq!(Consts::PARAMS, 8 * 16 + 16 + 16 * 3 + 3);
    assert_eq!(Consts::FLOPS, 8 * 16 + 16 * 3);
    assert_eq!(Mixed::PARAMS, 8 * 16 + 16 + 16 * 2 + 2);
    let per_layer: Vec<_> = Consts::LAYERS.iter().map(|l| (l.params, l.flops)).collect();
    assert_eq!(per_layer, [(8 * 16 + 16, 8 * 16), (0, 0), (16 * 3 + 3, 16 * 3)]);
    let net = Consts::new(&mut StdRng::seed_from_u64(5));
    let p: SVector<f32, CLASSES> = net.predict(&SVector::<f32, INPUTS>::repeat(0.25));
    assert!((p.sum() - 1.0).abs() < 1e-5);
}
