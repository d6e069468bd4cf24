//! Safetensors parameter files, loaded into a network (all or nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::prelude::*;
use nn::runtime::persist;
use nn_fuzz::{named, write, Small};

fuzz_target!(|data: &[u8]| {
    let f = write("params.safetensors", data);
    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    let before = net.to_flat();
    if named(persist::load_into(&mut net, &f), &f).is_none() {
        assert_eq!(net.to_flat(), before, "a refused file changed the network");
    }
});
