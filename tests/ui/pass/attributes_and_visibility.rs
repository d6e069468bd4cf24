//! Doc comments, attributes on the struct, `pub(crate)` visibility and trailing commas.
#![deny(warnings, missing_docs)]
//! A binary crate with documented items.

use nn::prelude::*;

mod models {
    use nn::prelude::*;

    network! {
        /// A classifier visible in the crate.
        #[derive(Clone, Debug)]
        pub(crate) Classifier <
            dense(4 -> 8, relu,),
            dropout(0.2),
            dense(8 -> 3, softmax, init = xavier,),
        >
    }
}

network! {
    /// Public, with a trailing comma after the last layer.
    pub Public < dense(1 -> 1, sigmoid), >
}

fn main() {
    let net = models::Classifier::new(&mut StdRng::seed_from_u64(6));
    let copy = net.clone();
    let x = SVector::<f32, 4>::repeat(1.0);
    assert_eq!(net.predict(&x), copy.predict(&x));
    let debug = format!("{net:?}");
    assert!(debug.starts_with("Classifier"), "{debug}");
    assert_eq!(Public::PARAMS, 2);
}
