#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine
# (run as root). Sourced by demo.sh and test.sh; does nothing when all is there.
set -euo pipefail

need_apt=()
# command:package pairs. socat is the fault proxy bench's peer; python3's pip
# and npm install the real Toxiproxy clients the proxy tests drive; curl,
# nginx and iperf3 are the real clients and servers of the balancer's lab;
# prometheus (with promtool) checks and scrapes the balancer's /metrics;
# ethtool is what salt/'s balancer state turns offloads off with; bird
# (BIRD 2, with birdc) is the BGP speaker of the balancers and the lab's
# router, sysctl turns the router's multipath hashing on; haproxy (TCP mode)
# is the peer balancer `testbed experiment` compares rusty_rail with.
# The tests check for these (host::capability's Need::Tool): under
# RR_REQUIRE_LABS=1 (CI) a test whose tool is missing fails.
for pair in "ip:iproute2" "nft:nftables" "tcpdump:tcpdump" "python3:python3" "socat:socat" \
            "npm:npm" "node:nodejs" "cc:build-essential" "pkg-config:pkg-config" "ping:iputils-ping" \
            "curl:curl" "ss:iproute2" "nginx:nginx-light" "iperf3:iperf3" "promtool:prometheus" \
            "ethtool:ethtool" "bird:bird2" "birdc:bird2" "sysctl:procps" \
            "haproxy:haproxy"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
python3 -m pip --version >/dev/null 2>&1 || need_apt+=("python3-pip")
# The salt tests' virtual environment (below) needs venv with ensurepip.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=("python3-venv")
if ((${#need_apt[@]})); then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Rusty Rail needs Rust 1.89 or newer; install it with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
# The FreeBSD build is checked (not run) on every test run: the standard
# library for x86_64-unknown-freebsd, added once.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-freebsd; then
  rustup target add x86_64-unknown-freebsd
fi
