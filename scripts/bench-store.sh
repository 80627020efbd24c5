#!/usr/bin/env bash
# Measures the state store: DEVICES identified devices (default 10,000) recorded in the SQLite
# database as a publisher records them, one transaction per decision (offer, transfer, result),
# on the file system of the temporary directory (see examples/bench_store.rs).
# Usage: scripts/bench-store.sh [DEVICES]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_store >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "$(nproc) cores, $(df -T "$WORK" | awk 'NR==2 {print $2}') at $WORK"
"${CARGO_TARGET_DIR:-target}"/release/examples/bench_store "$WORK" "${1:-10000}"
