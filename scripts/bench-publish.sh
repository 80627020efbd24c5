#!/usr/bin/env bash
# Measures otactl publish end to end on a loopback mosquitto: a slot-filling PSoC 6 image
# (about 1.66 MiB) delivered in job mode and chunk mode to the spec-written test device, and the
# raw QoS 1 pub/sub throughput of the same chunk bytes through the same broker (the limit).
# With FLEET, first FLEET devices ask at once and are all served (default flags).
# With `aws`, instead: fleets through the AWS IoT Core test front (100 PUBLISH/s per connection)
# on the aws broker profile, against the bound the limits set, with 1 and 4 connections.
# Usage: scripts/bench-publish.sh [RUNS] [FLEET]
#        scripts/bench-publish.sh aws            (release build; needs mosquitto)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench_publish
if [ "${1:-}" = aws ]; then
    BENCH=bench_aws
    shift
fi
RUNS="${1:-5}"
FLEET="${2:-0}"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
cargo build --release --example "$BENCH" >&2
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_inflight_messages 0
max_queued_messages 10000
CONF
"$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
BROKER=$!
trap 'kill "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done
echo "mosquitto $("$MOSQUITTO" -h | head -1 | awk '{print $3}') on 127.0.0.1:$PORT, $(nproc) cores"
if [ "$BENCH" = bench_aws ]; then
    "${CARGO_TARGET_DIR:-target}"/release/examples/bench_aws "$PORT"
else
    "${CARGO_TARGET_DIR:-target}"/release/examples/bench_publish "$PORT" "$RUNS" "$FLEET"
fi
