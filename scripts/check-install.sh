#!/usr/bin/env bash
# Checks that the demo ships with the binary: `cargo install --path . --root R` into a new
# directory, then `R/bin/otactl demo` from an empty directory, with no source tree and no cargo on
# PATH. Prints the time of each part (the install is one release build of the workspace).
#
# Usage: scripts/check-install.sh [extra `otactl demo` flags]
# CARGO_TARGET_DIR is honoured (a warm target directory makes the install incremental); set
# CHECK_INSTALL_FRESH=1 to install with a new, empty target directory instead (a fresh clone).
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
empty="$work/empty"
mkdir -p "$root" "$empty"
if [ "${CHECK_INSTALL_FRESH:-0}" = 1 ]; then
  export CARGO_TARGET_DIR="$work/target"
fi

t0=$(date +%s.%N)
cargo install --locked --quiet --path "$src" --root "$root"
t1=$(date +%s.%N)
ls -l "$root/bin"
for exe in otactl otactl-simboard otactl-devapp; do
  [ -x "$root/bin/$exe" ] || { echo "cargo install did not install $exe" >&2; exit 1; }
done

# The demo must need nothing but what was installed: no cargo, no source tree.
( cd "$empty" && env -i HOME="$work" PATH=/usr/bin:/bin "$root/bin/otactl" demo "$@" ) | tee "$work/demo.log"
t2=$(date +%s.%N)
grep -q '^demo complete' "$work/demo.log"
[ -z "$(ls -A "$empty")" ] || { echo "the demo left files in the working directory" >&2; exit 1; }

awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "\ncargo install: %.1f s\notactl demo:   %.1f s\n", b - a, c - b
}'
