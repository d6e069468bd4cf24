//! The anonymous expression form, f32 and f64, initialized from StdRng seed 0.
#![deny(warnings)]

use nn::prelude::*;

network! { Named < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) > }
network! { Named64: f64 < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) > }

fn main() {
    let net = network!(< dense(2 -> 4, tanh), dense(4 -> 1, sigmoid) >);
    let x = SVector::<f32, 2>::new(0.5, -0.5);
    let y: SVector<f32, 1> = net.predict(&x);
    // Same weights as the named network seeded with 0.
    let named = Named::new(&mut StdRng::seed_from_u64(0));
    assert_eq!(y, named.predict(&x));

    let net64 = network!(: f64 < dense(2 -> 4, tanh), dense(4 -> 1, sigmoid), >);
    let x64 = SVector::<f64, 2>::new(0.5, -0.5);
    let y64: SVector<f64, 1> = net64.predict(&x64);
    assert_eq!(
        y64,
        Named64::new(&mut StdRng::seed_from_u64(0)).predict(&x64)
    );
    assert!(y64[0] > 0.0 && y64[0] < 1.0);
}
