#!/usr/bin/env bash
# Times `otactl sign` (release build) against `imgtool sign` (2.5.0) on a payload that fills the
# Infineon PSoC 6 primary slot, with the exact arguments Infineon's sign_script.bash passes for
# psoc62_2m_ext_swap_single.json (HEX in, HEX out, like the Infineon build), the same with raw
# binary in/out, and sign + encrypt (-E, ECIES-P256, raw binary). Whole process, median of RUNS
# runs (default 10) via hyperfine.
#
# Payload size: 0x1c0000 slot − 0x400 header − 0x98 TLVs (SHA256, KEYHASH, a 72-byte signature)
# − 0x15030 trailer (-M 3584, --align 8) = 1747768 bytes (≈1.67 MiB). Encrypted: 149 bytes less
# (the 4 + 113-byte ENCEC256 TLV, the trailer's two 16-byte AES keys), rounded down to 16 bytes
# (imgtool pads the plaintext to 16) = 1747616 bytes.
#
# Usage: scripts/bench-sign.sh [RUNS]     (needs hyperfine and .venv/bin/imgtool)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
IMGTOOL="${IMGTOOL:-.venv/bin/imgtool}"
PY="$(dirname "$IMGTOOL")/python3"
KEY="${KEY:-tests/data/vectors/keys/cypress-test-ec-p256.pem}"
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install -y hyperfine)" >&2; exit 2; }

cargo build --release --quiet --bin otactl
OTACTL="${CARGO_TARGET_DIR:-$PWD/target}/release/otactl"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

SIZE=$((0x1c0000 - 0x400 - 0x98 - 0x15030))
ENC_SIZE=$(( (SIZE - 149) / 16 * 16 ))
"$PY" - "$W" "$SIZE" "$ENC_SIZE" <<'PYEOF'
import random, sys
from intelhex import IntelHex
w, size, enc_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(6550).randbytes(size)
open(f"{w}/app.unsigned.bin", "wb").write(data)
open(f"{w}/app-enc.unsigned.bin", "wb").write(data[:enc_size])
ih = IntelHex()
ih.frombytes(data, offset=0x10028400)   # primary slot 0x10028000 + 0x400 header
ih.tofile(f"{w}/app.unsigned.hex", "hex")
PYEOF

IFX="-e little --pad-header --align 8 -H 0x400 -M 3584 -v 1.1.0 -L 0x028000 -S 0x1c0000 -k $KEY"
echo "payload: $SIZE bytes; otactl $("$OTACTL" --version); imgtool $("$IMGTOOL" version)"
hyperfine --runs "$RUNS" --warmup 2 --style basic --export-json "$W/hex.json" \
  -n "otactl sign (HEX)" "$OTACTL sign $IFX $W/app.unsigned.hex $W/o.hex" \
  -n "imgtool sign (HEX)" "$IMGTOOL sign $IFX $W/app.unsigned.hex $W/i.hex"
hyperfine --runs "$RUNS" --warmup 2 --style basic --export-json "$W/bin.json" \
  -n "otactl sign (bin)" "$OTACTL sign $IFX $W/app.unsigned.bin $W/o.bin" \
  -n "imgtool sign (bin)" "$IMGTOOL sign $IFX $W/app.unsigned.bin $W/i.bin"
"$OTACTL" keygen -q -t enc-ec256 -k "$W/enc.pem"
hyperfine --runs "$RUNS" --warmup 2 --style basic --export-json "$W/enc.json" \
  -n "otactl sign -E (bin)" "$OTACTL sign $IFX -E $W/enc.pem $W/app-enc.unsigned.bin $W/oe.bin" \
  -n "imgtool sign -E (bin)" "$IMGTOOL sign $IFX -E $W/enc.pem $W/app-enc.unsigned.bin $W/ie.bin"
"$IMGTOOL" verify -k "$KEY" "$W/o.hex" >/dev/null && "$IMGTOOL" verify -k "$KEY" "$W/o.bin" >/dev/null \
  && echo "imgtool verify: otactl outputs OK"
"$OTACTL" verify -q -k "$KEY" --enc-key "$W/enc.pem" "$W/oe.bin" \
  && "$OTACTL" verify -q -k "$KEY" --enc-key "$W/enc.pem" "$W/ie.bin" \
  && echo "otactl verify --enc-key: both encrypted outputs OK"
"$PY" - "$W/hex.json" "$W/bin.json" "$W/enc.json" <<'PYEOF'
import json, sys
print("| input/output | otactl median | imgtool median | imgtool / otactl |")
print("| --- | ---: | ---: | ---: |")
for path in sys.argv[1:]:
    r = json.load(open(path))["results"]
    o, i = r[0]["median"], r[1]["median"]
    kind = "HEX" if "HEX" in r[0]["command"] else "bin"
    if "-E" in r[0]["command"]:
        kind += ", -E (ECIES-P256)"
    print(f"| {kind} | {o*1000:.1f} ms | {i*1000:.1f} ms | {i/o:.1f}x |")
PYEOF
