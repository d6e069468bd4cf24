#!/bin/sh
# Builds the documentation book into docs/book (gitignored). Run from anywhere; CI calls it.
set -eu
cd "$(dirname "$0")/.."
command -v mdbook >/dev/null 2>&1 || cargo install mdbook --locked --version ^0.4
mdbook build docs
