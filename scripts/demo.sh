#!/usr/bin/env bash
# The demo: a synthetic capture of 100,000 GRE packets over 10,000 flows,
# with 300 malformed frames mixed in, replayed through the real pipeline
# toward three backends.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh

cargo build --release --locked -p control
work=$(mktemp -d /tmp/rusty-rail-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

./target/release/rusty_rail synth --lb-ip 10.0.0.10 --flows 10000 --packets 100000 --malformed 300 --output "$work/in.pcap"
RR_LB_IP=10.0.0.10 RR_TARGET_IPS="10.1.0.1;10.1.0.2;10.1.0.3" \
  ./target/release/rusty_rail replay --input "$work/in.pcap" --output "$work/out.pcap" \
  --to-host "$work/host.pcap" --dropped "$work/dropped.pcap"
echo
echo "first forwarded frames (tcpdump):"
tcpdump -nn -r "$work/out.pcap" -c 3 2>/dev/null || true
