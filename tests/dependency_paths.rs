//! The generated code names the runtime by the path the user's crate can see: `::nn::runtime`
//! through `nn` under any name, or `::nn_runtime` when the user depends on `nn-runtime` and
//! `nn-macros` directly. Each case is a tiny crate under `tests/crates/` (its own workspace),
//! type-checked with `cargo check --offline`, starting from this workspace's lockfile so it
//! resolves to the same versions (its own lockfile is generated, not committed).

use std::path::Path;
use std::process::Command;

fn check(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("tests/crates").join(name).join("Cargo.toml");
    // One target directory for both crates, so the shared dependencies are checked once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dependency_paths");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    std::fs::copy(
        root.join("Cargo.lock"),
        root.join("tests/crates").join(name).join("Cargo.lock"),
    )
    .expect("copy the workspace lockfile");
    let output = Command::new(cargo)
        .args(["check", "--quiet", "--offline", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "`cargo check` of tests/crates/{name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn nn_renamed_in_cargo_toml() {
    check("renamed");
}

#[test]
fn nn_runtime_and_nn_macros_without_nn() {
    check("runtime_only");
}
