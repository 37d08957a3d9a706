#!/usr/bin/env bash
# Fuzzes the stdin line parser and both dialects with cargo fuzz (libFuzzer). Not part of CI.
# Usage: scripts/fuzz.sh [SECONDS]   (default 300)
# cargo fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the machine's stable toolchain
# provide them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
mkdir -p corpus
cargo fuzz run stdin_line corpus seeds -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048
