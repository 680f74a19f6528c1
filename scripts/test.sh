#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
