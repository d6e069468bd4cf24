#!/usr/bin/env bash
# Fuzzes nn's file readers: every cargo-fuzz target (idx, csv, safetensors, checkpoint) for
# SECONDS seconds each (default 60), starting from the valid files in seeds/, and prints executions
# and crashes per target. Installs cargo-fuzz if missing; uses the nightly toolchain if there
# is one, else stable with RUSTC_BOOTSTRAP=1. Exits non-zero if any target crashed (the
# crashing inputs are in fuzz/artifacts/<target>/).
#
#   bash fuzz/run.sh 20
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
budget="${seconds}s"
targets=(idx csv safetensors checkpoint)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi

# Scratch files of the targets, in memory where possible, removed at the end.
scratch="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export NN_FUZZ_SCRATCH="$scratch"

# The seed files are committed; `cargo run --bin seeds` rewrites them (after a format change).
if [ ! -d seeds ]; then
  cargo "${toolchain[@]}" run --quiet --bin seeds
fi
mkdir -p logs
. ./common.sh
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  fuzz_target "$t" "logs/$t.log" cargo "${toolchain[@]}" fuzz run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
printf '%s\n' "${summary[@]}"
exit "$failed"
