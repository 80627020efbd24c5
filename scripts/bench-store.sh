#!/usr/bin/env bash
# Measures the state store: DEVICES identified devices (default 10,000) recorded as a publisher
# records them, one transaction per decision (offer, transfer, result), in the SQLite database on
# the file system of the temporary directory, or with BACKEND=postgres in a private PostgreSQL
# server started for the run (initdb + postgres from /usr/lib/postgresql/*/bin on a free loopback
# port, TCP like a real deployment, default settings; see examples/bench_store.rs).
# Usage: scripts/bench-store.sh [DEVICES] [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_store >&2
WORK="$(mktemp -d)"
PG_PID=""
cleanup() {
  if [ -n "$PG_PID" ]; then kill -INT "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench_store"
echo "$(nproc) cores, $(df -T "$WORK" | awk 'NR==2 {print $2}') at $WORK"
if [ "${2:-sqlite}" = postgres ]; then
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  AS=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL does not run as root.
    chmod 755 "$WORK"
    install -d -o postgres -g postgres "$WORK/pg"
    AS=(runuser -u postgres --)
  else
    mkdir "$WORK/pg"
  fi
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${AS[@]}" "$PGBIN/postgres" -D "$WORK/pg/data" -h 127.0.0.1 -p "$PORT" \
    -c unix_socket_directories= >"$WORK/pg.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 1 300); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.1
  done
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || { cat "$WORK/pg.log" >&2; exit 1; }
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync on, synchronous_commit on)"
  "$BIN" "$WORK" "${1:-10000}" "postgres://postgres@127.0.0.1:$PORT/postgres"
else
  "$BIN" "$WORK" "${1:-10000}"
fi
