#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp /tmp/rusty-rail-tests.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?

# One closing line for the whole run: cargo prints a result per test binary,
# the last of which (doc tests) is often "0 passed".
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "tests: %d passed, %d failed\n", p, f }
' "$log"
exit "$status"
