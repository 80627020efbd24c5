//! `sign --flashmap` on Infineon's XMC7000 maps reproduces cysecuretools 5.0.0, the signer of
//! Infineon's `sign_script_xmc7000.bash`, byte for byte (its randomised ECDSA signature carried
//! over with `--fix-sig`), for the primary and the update image, binary and HEX.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ota_core::image::{ImageFlags, ParsedImage, TlvKind};

use crate::util::{flashmap_dir, otactl, run, tool, vectors_dir};

const KEY: &str = "keys/cypress-test-ec-p256.pem";
const PUB: &str = "keys/cypress-test-ec-p256.pub.pem";
const MAPS: [&str; 4] = [
    "xmc7100_int_overwrite_single.json",
    "xmc7100_int_swap_single.json",
    "xmc7200_int_overwrite_single.json",
    "xmc7200_int_swap_single.json",
];

/// (primary start, secondary start, slot size) of an XMC7000 map.
fn slots(map: &str) -> (String, String, String) {
    let text = std::fs::read_to_string(flashmap_dir().join(map)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = &v["application_1"]["slots"];
    let get = |k: &str| s[k].as_str().unwrap().to_string();
    (get("boot"), get("upgrade"), get("size"))
}

fn otactl_sign(map: &str, extra: &[&str], out: &Path) -> std::process::Output {
    let o = run(otactl()
        .current_dir(vectors_dir())
        .arg("sign")
        .arg("--flashmap")
        .arg(flashmap_dir().join(map))
        .args(["-v", "1.1.0"])
        .args(extra)
        .arg("payload-64k.bin")
        .arg(out));
    assert!(
        o.status.success(),
        "otactl sign --flashmap {map} {extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn image_bytes(path: &Path) -> Vec<u8> {
    otactl::assemble::read_image_file(path).unwrap()
}

#[test]
fn xmc7000_maps_take_cysecuretools_recipe_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for map in MAPS {
        let out = dir.path().join("o.bin");
        let o = otactl_sign(map, &["-k", KEY], &out);
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(
            log.contains("XMC7000 recipe (cysecuretools"),
            "{map}: {log}"
        );
        let bytes = std::fs::read(&out).unwrap();
        let p = ParsedImage::parse(&bytes).unwrap();
        assert_eq!(p.header.flags, ImageFlags(0), "{map}: no RAM_LOAD");
        assert_eq!(p.header.load_addr, 0, "{map}: no -L");
        assert_eq!(bytes[28..32], [0xff; 4], "{map}: _pad1 = the erased value");
        // The same bytes as the explicit cysecuretools flags; the imgtool recipe differs.
        let (_, _, size) = slots(map);
        let explicit = "--pad-header -H 0x400 --align 8 -R 0xff --overwrite-only -v 1.1.0";
        for (recipe, same) in [("cysecuretools", true), ("imgtool", false)] {
            let other = dir.path().join(format!("{recipe}.bin"));
            let o = run(otactl()
                .current_dir(vectors_dir())
                .arg("sign")
                .args(explicit.split_whitespace())
                .args([
                    "-S",
                    &size,
                    "--recipe",
                    recipe,
                    "-k",
                    KEY,
                    "payload-64k.bin",
                ])
                .arg(&other));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let other = std::fs::read(&other).unwrap();
            assert_eq!(other == bytes, same, "{map} --recipe {recipe}");
            if !same {
                assert_eq!(
                    other[..28],
                    bytes[..28],
                    "{map}: only _pad1 and what hashes it"
                );
                assert_eq!(other[28..32], [0; 4]);
            }
        }
    }
}

#[test]
fn xmc7000_images_equal_cysecuretools_5_output_bin_and_hex() {
    let Some(cst) = tool("cysecuretools") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for map in MAPS {
        let (primary, secondary, size) = slots(map);
        // The primary image as a binary, the update (its slot's address) as HEX, as
        // Infineon's script makes them.
        for (addr, ext) in [(&primary, "bin"), (&secondary, "hex")] {
            let theirs = dir.path().join(format!("cst.{ext}"));
            let o = run(Command::new(&cst)
                .current_dir(vectors_dir())
                .args(["-t", "xmc7200", "sign-image", "--header-size", "0x400"])
                .args(["--align", "8", "-v", "1.1.0", "-S", &size, "-R", "0xff"])
                .args(["--overwrite-only", "--key-path", KEY])
                .args(["--image", "payload-64k.bin", "--output"])
                .arg(&theirs)
                .arg(format!("--hex-addr={addr}")));
            assert!(
                o.status.success() && theirs.is_file(),
                "cysecuretools {map}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let sig = signature_file(&theirs, dir.path());
            let ours = dir.path().join(format!("otactl.{ext}"));
            let x: &[&str] = if addr == &secondary {
                &["-x", addr]
            } else {
                &[]
            };
            let fixed = ["--fix-sig", sig.to_str().unwrap(), "--fix-sig-pubkey", PUB];
            otactl_sign(map, &[x, &fixed[..]].concat(), &ours);
            assert!(
                std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
                "{map} {ext} at {addr}: otactl differs from cysecuretools"
            );
            let o = run(otactl()
                .current_dir(vectors_dir())
                .args(["verify", "-k", PUB])
                .arg(&theirs));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// Writes the ECDSA_SIG TLV of `image` as `--fix-sig` reads it (base64 DER).
fn signature_file(image: &Path, dir: &Path) -> PathBuf {
    let bytes = image_bytes(image);
    let p = ParsedImage::parse(&bytes).unwrap();
    let sig = p.find(TlvKind::ECDSA_SIG).expect("a signature TLV").value;
    let path = dir.join("cst.sig");
    std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(sig)).unwrap();
    path
}
