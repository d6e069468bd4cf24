//! MNIST IDX files: the first input byte chooses raw bytes (even) or the rest gzip-compressed
//! (odd, so the parser behind the decoder is reached); raw inputs starting `1f 8b` reach the
//! decoder itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::runtime::data::mnist;
use nn_fuzz::{gzip, labels_file, named, write};

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((flag, rest)) if flag & 1 == 1 => gzip(rest),
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    };
    let f = write("idx", &bytes);
    if let Some(img) = named(mnist::read_images(&f), &f) {
        assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
    }
    named(mnist::read_labels(&f), &f);
    named(mnist::load_pair::<f32, 9>(&f, labels_file()), &f);
});
