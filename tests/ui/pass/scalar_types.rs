//! f32 (the default, or written) and f64.
#![deny(warnings)]

use nn::prelude::*;

network! { Default32 < dense(2 -> 3, tanh), dense(3 -> 1, sigmoid) > }
network! { Written32: f32 < dense(2 -> 3, tanh), dense(3 -> 1, sigmoid) > }
network! { Double: f64 < dense(2 -> 3, tanh), dense(3 -> 1, sigmoid) > }

fn scalar_name<N: Network<2, 1>>() -> &'static str {
    std::any::type_name::<N::Scalar>()
}

fn main() {
    let mut rng = StdRng::seed_from_u64(4);
    let a: SVector<f32, 1> = Default32::new(&mut rng).predict(&SVector::<f32, 2>::new(1.0, 2.0));
    let b: SVector<f32, 1> = Written32::new(&mut rng).predict(&SVector::<f32, 2>::new(1.0, 2.0));
    let c: SVector<f64, 1> = Double::new(&mut rng).predict(&SVector::<f64, 2>::new(1.0, 2.0));
    assert!(a[0] > 0.0 && a[0] < 1.0 && b[0] > 0.0 && b[0] < 1.0 && c[0] > 0.0 && c[0] < 1.0);
    assert_eq!(scalar_name::<Default32>(), "f32");
    assert_eq!(scalar_name::<Written32>(), "f32");
    assert_eq!(scalar_name::<Double>(), "f64");
}
