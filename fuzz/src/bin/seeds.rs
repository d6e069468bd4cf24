//! Writes one valid input per fuzz target into `seeds/<target>/` (run by `run.sh`).

use nn::prelude::*;
use nn::runtime::data::{Dataset, Labels};
use nn::runtime::loss::CrossEntropy;
use nn::runtime::optim::Adam;
use nn::runtime::persist;
use nn::runtime::train::{CheckpointEvery, Progress, Trainer};
use nn_fuzz::{idx_images, idx_labels, Small, CSV};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let put = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
    };
    put("idx", "images", &[&[0][..], &idx_images()].concat())?;
    put("idx", "images-gz", &[&[1][..], &idx_images()].concat())?;
    put("idx", "labels", &[&[0][..], &idx_labels()].concat())?;
    put("csv", "classes", CSV.as_bytes())?;

    let scratch = nn_fuzz::scratch();
    let params = scratch.join("params.safetensors");
    let mut net = Small::new(&mut StdRng::seed_from_u64(1));
    persist::save(&net, &params)?;
    put("safetensors", "small", &std::fs::read(&params)?)?;

    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin()).collect();
    let data = Dataset::<f32, 4>::from_slices(
        &x,
        Labels::Classes {
            labels: vec![0, 1, 1, 0],
            classes: 2,
        },
    )?;
    let ckpt = scratch.join("ckpt.safetensors");
    Trainer::new(CrossEntropy, Adam::new(1e-2))
        .epochs(2)
        .batch_size(2)
        .progress(Progress::Off)
        .checkpoint(&ckpt, CheckpointEvery::Epoch)
        .fit(&mut net, &data, None)?;
    put("checkpoint", "adam", &std::fs::read(&ckpt)?)?;
    std::fs::remove_dir_all(scratch)?;
    println!("seeds written to {}", root.display());
    Ok(())
}
