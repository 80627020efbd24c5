#!/usr/bin/env bash
# Makes tests/data/, everything the tests read that is not code:
#   vectors/   imgtool 2.5.0 test vectors, their inputs, Infineon's public test key and imgtool's
#              getpub outputs, copied from SHARED_DIR/vectors (checked against its SHA256SUMS);
#   flashmap/  the repository's own flash maps in Infineon's two JSON schemas (PSoC 6 and
#              XMC7000), written here from the values below; when SHARED_DIR/flashmap-infineon
#              exists, every value is compared with Infineon's files and any difference is an error;
#   SHA256SUMS of every file above (tests/image checks it), README.md (sources and commands).
# Only the files the tests use are copied: the 13 signed/unsigned vectors recorded in
# out/commands.log with their signatures, the sign inputs, the keys and the getpub outputs.
#
# Usage: scripts/make-test-data.sh SHARED_DIR
#   SHARED_DIR: the project's reference folder (holds vectors/ and flashmap-infineon/).
# Needs bash, python3 and sha256sum. tests/data/ is replaced only when everything succeeded.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -d "$1/vectors" ]; then
  echo "usage: $0 SHARED_DIR   (the reference folder holding vectors/ and flashmap-infineon/)" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/tests/data
tmp=$(mktemp -d "$root/tests/.data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

echo "== checking $src/vectors against its SHA256SUMS"
(cd "$src/vectors" && sha256sum --check --quiet SHA256SUMS)

# The sign inputs, keys and getpub outputs (tests/image/cli.rs, firmware/host/tests/vectors.rs), then
# every output recorded in out/commands.log with its --sig-out signature; for the HEX output
# also the raw binary imgtool's HEX converts to (v04).
files=(
  payload-64k.bin payload-64k-zerohdr32.bin payload-64k-at-0x10028400.hex
  keys/cypress-test-ec-p256.pem keys/cypress-test-ec-p256.pub keys/cypress-test-ec-p256.pub.pem
  getpub/getpub-raw.der getpub/getpub-lang-c.txt getpub/getpub-lang-rust.txt
  getpub/getpubhash-lang-c.txt getpub/getpubhash-raw.bin
  out/commands.log
)
while read -r -a words; do
  [ "${words[0]:-}" = imgtool ] || continue
  out=${words[-1]}
  files+=("$out")
  [[ $out == *.hex ]] && files+=("${out%.hex}.bin")
  for ((i = 0; i < ${#words[@]} - 1; i++)); do
    [ "${words[i]}" = --sig-out ] && files+=("${words[i + 1]}")
  done
done < "$src/vectors/out/commands.log"

echo "== copying ${#files[@]} files into tests/data/vectors"
for f in "${files[@]}"; do
  install -D -m 0644 "$src/vectors/$f" "$tmp/vectors/$f"
done

echo "== writing the flash maps into tests/data/flashmap"
python3 - "$tmp/flashmap" "$src/flashmap-infineon" <<'PYEOF'
import json, os, re, sys

out, infineon = sys.argv[1], sys.argv[2]
S25 = "S25HS256T"  # the external QSPI NOR flash of the PSoC 6 boards

# PSoC 6 schema: boot_and_upgrade.{bootloader, application_1}, optional external_flash.
# (address, size) pairs; "ext" names the external flash, "xip" runs the app from it.
PSOC6 = {
    "psoc62_1m_cm0_int_swap_single": dict(
        boot=(0x10000000, 0x18000), scratch=(0x100E0400, 0x4000), status=(0x100E4400, 0x2400),
        core="CM0P", primary=(0x10020000, 0x60000), secondary=(0x10080400, 0x60000)),
    "psoc62_2m_ext_overwrite_single": dict(
        ext=S25, boot=(0x10000000, 0x18000),
        primary=(0x10018000, 0x1C0000), secondary=(0x18000200, 0x1C0000)),
    "psoc62_2m_ext_swap_single": dict(
        ext=S25, boot=(0x10000000, 0x28000), scratch=(0x18440000, 0x80000),
        status=(0x101E8000, 0x6C00), primary=(0x10028000, 0x1C0000),
        secondary=(0x18000200, 0x1C0000)),
    "psoc62_2m_int_overwrite_single": dict(
        boot=(0x10000000, 0x18000), primary=(0x10018000, 0xEE000), secondary=(0x10106000, 0xEE000)),
    "psoc62_2m_int_swap_single": dict(
        boot=(0x10000000, 0x28000), scratch=(0x101F7C00, 0x1000), status=(0x101F4000, 0x3C00),
        primary=(0x10028000, 0xE6000), secondary=(0x1010E000, 0xE6000)),
    "psoc62_512k_ext_overwrite_single": dict(
        ext=S25, boot=(0x10000000, 0x18000),
        primary=(0x10018000, 0x58200), secondary=(0x18028000, 0x58200)),
    "psoc62_512k_ext_swap_single": dict(
        ext=S25, boot=(0x10000000, 0x28000), scratch=(0x180C0000, 0x80000),
        status=(0x10074400, 0x3C00), primary=(0x10028000, 0x4C000), secondary=(0x18034200, 0x4C000)),
    "psoc62_512k_xip_swap_single": dict(
        ext=S25, xip=True, boot=(0x10000000, 0x18000), scratch=(0x18440000, 0x80000),
        status=(0x10018000, 0x3C00), primary=(0x18000000, 0x140200), secondary=(0x18180000, 0x140200)),
}
# XMC7000 schema: bootloader.{bootloader_area, status_area, scratch_area}, application_1.slots;
# the geometry is in <prefix>_platform.json.
XMC_SLOTS = {"xmc7100": (0x10080000, 0x10228000, 0x100000), "xmc7200": (0x10080000, 0x103F8000, 0x200000)}
XMC_SWAP = dict(status=(0x14030000, 0x2800), scratch=(0x14000000, 0x8000))
# memory regions (address, size, erase size, mem_type); all erase to 0xFF.
XMC_REGIONS = {
    "xmc7100": [(0x10000000, 0x3F0000, 0x8000, "CODE_LARGE"), (0x107F0000, 0x20000, 0x2000, "CODE_SMALL"),
                (0x14000000, 0x30000, 0x800, "WORK_LARGE"), (0x14030000, 0x10000, 0x80, "WORK_SMALL")],
    "xmc7200": [(0x10000000, 0x7F0000, 0x8000, "CODE_LARGE"), (0x107F0000, 0x40000, 0x2000, "CODE_SMALL"),
                (0x14000000, 0x30000, 0x800, "WORK_LARGE"), (0x14030000, 0x10000, 0x80, "WORK_SMALL")],
}
XMC_CORES = ["CM0P", "CM7_0", "CM7_1"]

def h(n):
    return f"0x{n:08x}"

def field(what, n):
    return {"description": what, "value": h(n)}

def psoc6(v):
    boot = {"address": field("bootloader: start", v["boot"][0]),
            "size": field("bootloader: length", v["boot"][1])}
    for area in ("scratch", "status"):
        if area in v:
            boot[f"{area}_address"] = field(f"{area} area: start", v[area][0])
            boot[f"{area}_size"] = field(f"{area} area: length", v[area][1])
    app = {}
    if "core" in v:
        app["core"] = {"description": "core the application runs on", "value": v["core"]}
    app["address"] = field("primary slot: start", v["primary"][0])
    app["size"] = field("primary slot: length", v["primary"][1])
    app["upgrade_address"] = field("secondary slot: start", v["secondary"][0])
    app["upgrade_size"] = field("secondary slot: length", v["secondary"][1])
    doc = {}
    if "ext" in v:
        doc["external_flash"] = [dict(model=v["ext"], **({"mode": "XIP"} if v.get("xip") else {}))]
    doc["boot_and_upgrade"] = {"bootloader": boot, "application_1": app}
    return doc

def area(a):
    return {"address": h(a[0]), "size": h(a[1])}

def xmc(chip, swap):
    boot = {"bootloader_area": area((0x10000000, 0x20000))}
    if swap:
        boot["status_area"] = area(XMC_SWAP["status"])
        boot["scratch_area"] = area(XMC_SWAP["scratch"])
    primary, secondary, size = XMC_SLOTS[chip]
    return {"bootloader": boot,
            "application_1": {"slots": {"boot": h(primary), "upgrade": h(secondary), "size": h(size)}}}

def platform(chip):
    regions = [{"address": h(a), "size": h(s), "erase_size": h(e), "erase_value": "0xff",
                "mem_type": f"INTERNAL_FLASH_{t}"} for a, s, e, t in XMC_REGIONS[chip]]
    return {"memory_regions": regions, "core_list": [{"name": n, "id": i} for i, n in enumerate(XMC_CORES)]}

maps = {f"{n}.json": psoc6(v) for n, v in PSOC6.items()}
for chip in XMC_SLOTS:
    maps[f"{chip}_int_swap_single.json"] = xmc(chip, True)
    maps[f"{chip}_int_overwrite_single.json"] = xmc(chip, False)
    maps[f"{chip}_platform.json"] = platform(chip)

os.makedirs(out)
for name, doc in sorted(maps.items()):
    with open(os.path.join(out, name), "w") as f:
        json.dump(doc, f, indent=4)
        f.write("\n")

# Same values as Infineon's files: numbers compared as numbers, descriptions ignored.
def values(x):
    if isinstance(x, dict):
        if "value" in x:
            return values(x["value"])
        return {k: values(v) for k, v in x.items() if k != "description"}
    if isinstance(x, list):
        return [values(v) for v in x]
    if isinstance(x, str) and re.fullmatch(r"0[xX][0-9a-fA-F]+", x):
        return int(x, 16)
    return x

if os.path.isdir(infineon):
    theirs = sorted(n for n in os.listdir(infineon) if n.endswith(".json"))
    if theirs != sorted(maps):
        sys.exit(f"flash maps: {infineon} has {theirs}, this script writes {sorted(maps)}")
    for name in theirs:
        with open(os.path.join(infineon, name)) as f:
            want = values(json.load(f))
        if values(maps[name]) != want:
            sys.exit(f"flash maps: {name} differs from {infineon}/{name}:\n"
                     f"  ours:     {values(maps[name])}\n  Infineon: {want}")
    print(f"   {len(maps)} maps, same values as {infineon}")
else:
    print(f"   {len(maps)} maps ({infineon} not found: values not compared)")
PYEOF

printf '* -text\n' > "$tmp/.gitattributes"
(cd "$tmp" && find vectors flashmap -type f | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

echo "== writing tests/data/README.md"
{
  cat <<'EOF'
# Test data

Everything the tests read that is not code. Made by `scripts/make-test-data.sh SHARED_DIR` (the
project's reference folder, usually `shared/` beside the repository); do not edit by hand. No test
reads anything outside the repository. `.gitattributes` keeps every byte as it is (no line-ending
conversion): `SHA256SUMS` lists every file in `vectors/` and `flashmap/`, and the test
`image::test_data_matches_its_sha256sums` checks them.

## `vectors/`: imgtool 2.5.0 vectors

Copied unchanged from `SHARED_DIR/vectors/` after checking them against its `SHA256SUMS`. They were
made there with the real `imgtool` 2.5.0 from PyPI (`pip install imgtool==2.5.0`, Python 3.11,
cryptography 50.0.2, intelhex 2.3.0), every command run in that folder. ECDSA signing is
randomised, so re-running the commands gives other signatures: the copied outputs are the reference.

| file | origin |
| --- | --- |
| `payload-64k.bin` | 65536 bytes, byte i = (i * 7) mod 251 |
| `payload-64k-zerohdr32.bin` | 32 zero bytes, then `payload-64k.bin` (signing without `--pad-header`) |
| `payload-64k-at-0x10028400.hex` | `payload-64k.bin` as Intel HEX at 0x10028400 (PSoC 6 primary slot 0x10028000 + 0x400 header), written by intelhex `tofile` |
| `keys/cypress-test-ec-p256.pem` | Infineon's published **test** key (PKCS#8 P-256), Infineon/ota-bootloader-abstraction `scripts/mcuboot/keys/` (commit b2d78cad). Public test key: never use it for a product |
| `keys/cypress-test-ec-p256.pub` | Infineon's C array of its public key, same source |
| `keys/cypress-test-ec-p256.pub.pem` | `imgtool getpub -k keys/cypress-test-ec-p256.pem -e pem` |
| `getpub/getpub-raw.der` | `imgtool getpub -k keys/cypress-test-ec-p256.pem -e raw` |
| `getpub/getpub-lang-c.txt` | `imgtool getpub -k keys/cypress-test-ec-p256.pem -e lang-c` |
| `getpub/getpub-lang-rust.txt` | `imgtool getpub -k keys/cypress-test-ec-p256.pem -e lang-rust` |
| `getpub/getpubhash-lang-c.txt` | `imgtool getpubhash -k keys/cypress-test-ec-p256.pem -e lang-c` |
| `getpub/getpubhash-raw.bin` | `imgtool getpubhash -k keys/cypress-test-ec-p256.pem -e raw` |
| `out/commands.log` | the exact `imgtool sign` argument lists, as run (below); `tests/image` replays them |
| `out/vNN-*.bin`, `out/v04-*.hex` | the outputs of those commands |
| `out/vNN-*.sig.b64` | each signed run's `--sig-out`: base64 of the DER signature (the ECDSA_SIG TLV value) |
| `out/v04-ifx-psoc6-ext-swap-hex.bin` | v04's HEX output as raw binary from its lowest address (intelhex `tobinfile`, like Infineon's `objcopy -I ihex -O binary`) |

The `imgtool sign` commands (`out/commands.log`; the `-d` value has no spaces, quote it in a shell):

```
EOF
  cat "$tmp/vectors/out/commands.log"
  cat <<'EOF'
```

The padded vectors (v02, v03, v06, v07) are a whole slot long (0.9 to 1.8 MB) but nearly all
erased bytes; git stores each in a few KiB.

## `flashmap/`: flash maps

The repository's own flash maps, written by the script from its table of values, in Infineon's
two JSON schemas: PSoC 6 (`psoc62_*`: `boot_and_upgrade`, optional `external_flash`) and
XMC7000 (`xmc7x00_*` with the geometry in `xmc7x00_platform.json`). The values (addresses, sizes,
erase geometry, external flash model, core) are those of Infineon's flash maps for these parts;
the script compares them with the files in `SHARED_DIR/flashmap-infineon/` when that folder
exists. The descriptions are the repository's own.

## Who reads what

| data | tests |
| --- | --- |
| `vectors/` | `tests/image/` (sign, verify, info, getpub against the vectors and live imgtool), `tests/cli/` (the test key), `firmware/host/tests/vectors.rs` (bootloader on imgtool's trailers) |
| `flashmap/` | `tests/image/` (`sign --flashmap`), `tests/cli/` (project folders for `otactl init`), `src/assemble/recipe.rs` and `firmware/core/src/flashmap/infineon/tests.rs` (unit tests), `firmware/host/tests/vectors.rs` |
EOF
} > "$tmp/README.md"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "== tests/data: $(find "$dest" -type f | wc -l) files, $(du -sh "$dest" | cut -f1)"
