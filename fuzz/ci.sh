#!/usr/bin/env bash
# Short, bounded fuzzing for CI on stable Rust, without cargo-fuzz: builds the four targets
# (idx, csv, safetensors, checkpoint) with plain `cargo build --release` and the coverage flags
# `cargo fuzz build -s none` passes (no AddressSanitizer, no nightly), then runs each target
# binary from the committed seeds for SECONDS seconds (default 25), or for N executions each
# with `--runs N` (the local mode: `--runs 1000000` takes 5-15 minutes per target on two
# cores). Prints executions and seconds per target; exits non-zero if any target crashed,
# went past the RSS limit or timed out (the input is kept in fuzz/artifacts/<target>/).
# `run.sh` is the longer cargo-fuzz mode with ASan.
#
#   bash fuzz/ci.sh 25
#   bash fuzz/ci.sh --runs 1000000
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--runs" ]; then
  runs="${2:?--runs takes a number of executions}"
  limit=(-runs="$runs")
  budget="$runs executions"
else
  seconds="${1:-25}"
  limit=(-max_total_time="$seconds")
  budget="${seconds}s"
fi
targets=(idx csv safetensors checkpoint)
host="$(rustc -vV | sed -n 's/^host: //p')"

# The flags of cargo-fuzz 0.13 (`src/project.rs`) for a default build with `-s none`: sancov
# coverage and comparison tracing for libFuzzer, `--cfg fuzzing`, debug assertions (so integer
# overflow is a finding). Not its `-Ccodegen-units=1`: the build from clean takes about 35 s
# less on two cores, and the executions per second were about the same. `--target` keeps the
# flags off build scripts and the proc-macro crate, which run on the host.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 --cfg fuzzing -Cdebug-assertions"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
echo "== build fuzz targets (release, sancov, $host)"
cargo build --release --target "$host" --target-dir target \
  --config 'profile.release.debug="line-tables-only"' "${bins[@]}"
unset RUSTFLAGS

# Scratch files of the targets and the corpus each run grows, removed at the end; the
# committed seeds are only read.
scratch="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export NN_FUZZ_SCRATCH="$scratch/files"
mkdir -p "$NN_FUZZ_SCRATCH" logs

. ./common.sh
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/corpus/$t" "artifacts/$t"
  fuzz_target "$t" "logs/$t.log" "target/$host/release/$t" "$scratch/corpus/$t" "seeds/$t" \
    "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/"
done
printf '%s\n' "${summary[@]}"
exit "$failed"
