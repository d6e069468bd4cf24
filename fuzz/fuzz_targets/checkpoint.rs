//! Checkpoint files: loaded, and their optimizer state checked against the network, as
//! resuming does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::prelude::*;
use nn::runtime::optim::{Adam, Optimizer};
use nn::runtime::persist;
use nn_fuzz::{named, write, Small};

fuzz_target!(|data: &[u8]| {
    let f = write("ckpt.safetensors", data);
    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    let before = net.to_flat();
    match named(persist::load_checkpoint_into(&mut net, &f), &f) {
        Some((_, ck)) => {
            let _ = Adam::<f32>::new(1e-2).load_state_for(&ck.optimizer, Small::TENSORS);
        }
        None => assert_eq!(net.to_flat(), before, "a refused file changed the network"),
    }
});
