//! Shared pieces of the fuzz targets: the network whose files are read, the seed files, and
//! the check that every error names the file it is about.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

nn::network! {
    /// The network of the safetensors and checkpoint targets.
    pub Small < dense(4 -> 3, relu), dropout(0.5), dense(3 -> 2, softmax) >
}

/// A directory for this process's scratch files (one fuzzing process runs one input at a
/// time): under `NN_FUZZ_SCRATCH` (set and removed by `run.sh`), else in memory
/// (`/dev/shm`, six times the executions of a disk) where there is one.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = match std::env::var_os("NN_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if shm.is_dir() => shm.to_path_buf(),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("nn-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

/// Writes `bytes` to the scratch file `name` and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("the scratch file");
    path
}

/// Panics (a finding) if `r` is an error whose message does not name `file`.
pub fn named<T, E: Display>(r: Result<T, E>, file: &Path) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(&file.display().to_string()),
                "the error does not name {}: {message}",
                file.display()
            );
            None
        }
    }
}

/// `bytes`, gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Five 3 x 3 images as an IDX file.
pub fn idx_images() -> Vec<u8> {
    let pixels = (0..45u8).map(|p| p.wrapping_mul(37));
    be(&[2051, 5, 3, 3]).into_iter().chain(pixels).collect()
}

/// Five labels as an IDX file.
pub fn idx_labels() -> Vec<u8> {
    [be(&[2049, 5]), vec![3, 1, 4, 1, 5]].concat()
}

/// A valid label file for the images target's `load_pair`.
pub fn labels_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| write("labels", &idx_labels()))
}

/// A CSV file of three features and a class label below 3.
pub const CSV: &str = "a,b,c,label\n0.5,-1,2e3,2\n1,2,3,0\n-0.25,1e-3,7,1\n";
