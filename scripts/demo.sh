#!/usr/bin/env bash
# The demo: the balancer live in a lab of network namespaces. `testbed up`
# builds testbed/examples/lb-demo.toml (a client behind a GRE-tunnelling
# router, the balancer host, five DSR servers), rusty_rail runs on the
# balancer's interface with two services: the default one (10.99.0.1, on
# server1-3, from the environment) and "api" (10.99.0.2:5002, on server4-5,
# from a configuration file). 10,000 mconnect connections go through the
# first VIP and 4,000 through the second, the split per backend, the
# services and the balancer's counters are printed, and the lab is taken
# down again.
# Without root or network namespaces it replays a synthetic capture through
# the same pipeline instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh

cargo build --release --locked -p control -p testbed
export PATH="${CARGO_TARGET_DIR:-$PWD/target}/release:$PATH"

offline_demo() {
  local work
  work=$(mktemp -d /tmp/rusty-rail-demo.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  rusty_rail synth --lb-ip 10.0.0.10 --flows 10000 --packets 100000 --malformed 300 --output "$work/in.pcap"
  RR_LB_IP=10.0.0.10 RR_TARGET_IPS="10.1.0.1;10.1.0.2;10.1.0.3" \
    rusty_rail replay --input "$work/in.pcap" --output "$work/out.pcap" \
    --to-host "$work/host.pcap" --dropped "$work/dropped.pcap"
}

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "not root or no network namespaces here: replaying a synthetic capture instead of the live lab"
  offline_demo
  exit 0
fi

lab=testbed/examples/lb-demo.toml
work=$(mktemp -d /tmp/rusty-rail-demo.XXXXXX)
balancer=
teardown() {
  if [ -n "$balancer" ] && kill -0 "$balancer" 2>/dev/null; then
    kill -TERM "$balancer"; wait "$balancer" || true
  fi
  testbed down "$lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap teardown EXIT
testbed cleanup --prefix rrdemo- >/dev/null 2>&1 || true

echo "== testbed up $lab"
testbed up "$lab" --work-dir "$work/hosts"

cat >"$work/services.toml" <<'EOF'
# The second service: its own VIP, port and backends.
[[service]]
name = "api"
vip = "10.99.0.2"
protocol = "tcp"
port = 5002
backends = ["10.240.2.24", "10.240.2.25"]
table_size = 251
EOF
echo "== rusty_rail on rrdemo-lb1's eth0: the default service on 10.240.2.21-23 (RR_TARGET_IPS),"
echo "   and the services of --config services.toml:"
cat "$work/services.toml"
ip netns exec rrdemo-lb1 env RR_DEVICE=eth0 RR_TARGET_IPS="10.240.2.21;10.240.2.22;10.240.2.23" \
  rusty_rail --config "$work/services.toml" >"$work/counters.txt" 2>"$work/rusty_rail.log" &
balancer=$!
for _ in $(seq 100); do
  grep -q "running; SIGINT or SIGTERM stops" "$work/rusty_rail.log" && break
  kill -0 "$balancer" 2>/dev/null || { cat "$work/rusty_rail.log"; exit 1; }
  sleep 0.1
done
cat "$work/rusty_rail.log"
for server in server3:5001 server5:5002; do
  for _ in $(seq 100); do
    ip netns exec "rrdemo-${server%:*}" ss -Hltn "sport = :${server#*:}" | grep -q . && break
    sleep 0.1
  done
done

echo
echo "== 10,000 connections from the client to the VIP 10.99.0.1:5001 (testbed mconnect)"
ip netns exec rrdemo-client testbed mconnect --address 10.99.0.1:5001 --nconn 10000

echo
echo "== 4,000 connections to the second service, 10.99.0.2:5002: only server4 and server5 answer"
ip netns exec rrdemo-client testbed mconnect --address 10.99.0.2:5002 --nconn 4000

echo
echo "== the balancer's view (GET /backends: every backend; GET /services: the named services)"
ip netns exec rrdemo-lb1 curl -sS http://127.0.0.1:9700/backends
echo
ip netns exec rrdemo-lb1 curl -sS http://127.0.0.1:9700/services
echo

echo
echo "== rusty_rail stopped (SIGTERM): its final counters"
kill -TERM "$balancer"
wait "$balancer" || true
balancer=
cat "$work/counters.txt"
