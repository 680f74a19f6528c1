#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test.
#
# A test that cannot run here (not root, no namespaces, a tool or a CPU or
# kernel feature missing) reports `skipped: <reason>` through
# host::capability and returns; libtest counts it as passed, so each skip is
# also appended to $RR_SKIP_LOG, and the closing line counts skips apart:
#   tests: N passed, M failed, K skipped
# where N counts only the tests that ran. With RR_REQUIRE_LABS=1 (.ci/run
# sets it) a missing lab prerequisite (root, namespaces, a tool this script
# installs) fails its test instead; a missing CPU or kernel feature stays a
# skip.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh

# Salt (master, minions, salt-call) and salt-lint for salt/ and its tests
# (testbed/tests/salt_lab.rs), in a virtual environment made once and
# reused. Without it those tests report what is missing (a failure under
# RR_REQUIRE_LABS=1), so a registry out of reach does not stop the rest.
if ! bash scripts/salt-venv.sh >/dev/null; then
  echo "warning: scripts/salt-venv.sh failed: the salt tests will say what is missing" >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# FreeBSD: the balancer's crates compile and are lint-clean for it (checked,
# not built or run: this is Linux). ensure-tools.sh added the target.
freebsd=(--target x86_64-unknown-freebsd -p dataplane -p netmap-sys -p control --locked)
cargo check "${freebsd[@]}"
cargo clippy "${freebsd[@]}" -- -D warnings

log=$(mktemp /tmp/rusty-rail-tests.XXXXXX)
skips=$(mktemp /tmp/rusty-rail-skips.XXXXXX)
trap 'rm -f "$log" "$skips"' EXIT
export RR_SKIP_LOG="$skips"
status=0
# --no-fail-fast: every test binary runs after a failure too, so the closing
# line counts the whole suite.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The live suite once more on AF_PACKET: the run above used what `auto`
# picks (AF_XDP where the kernel allows it), and AF_PACKET is the backend
# every Linux has, and the fallback.
RR_IO=af_packet cargo test -p control --locked --no-fail-fast --test live_lab 2>&1 | tee -a "$log" || status=$?
# And on the netmap backend, through the emulated port (netmap's rings laid
# out and synced in userspace over a packet socket): the same backend code a
# netmap kernel runs, on a machine without netmap.
RR_IO=netmap-emulated cargo test -p control --locked --no-fail-fast --test live_lab 2>&1 | tee -a "$log" || status=$?

# Why tests were skipped, most frequent reason first (lines: test<TAB>reason).
skipped=$(wc -l <"$skips")
if ((skipped > 0)); then
  echo "skipped tests by reason:"
  cut -f2- "$skips" | sort | uniq -c | sort -k1,1nr -k2
fi

# One closing line for the whole run: cargo prints a result per test binary,
# the last of which (doc tests) is often "0 passed". A skipped test passed in
# cargo's count: it moves from passed to skipped.
awk -v skipped="$skipped" '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "tests: %d passed, %d failed, %d skipped\n", p - skipped, f, skipped }
' "$log"
exit "$status"
