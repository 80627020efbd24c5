//! `otactl sign / verify / info / keygen / getpub` against imgtool 2.5.0's vectors and the real
//! `imgtool verify`.

use std::path::Path;
use std::process::Output;

use sha2::{Digest, Sha256};

use crate::util::{data_dir, flashmap_dir, otactl, run, tool, vectors_dir};

mod cli;
mod encrypted;
mod keytypes;
mod props;
mod trailer;
mod xmc7000;

const KEY: &str = "keys/cypress-test-ec-p256.pem";
const PUB: &str = "keys/cypress-test-ec-p256.pub.pem";

/// Every file in `tests/data` is listed in its `SHA256SUMS` with the right hash, and every listed
/// file exists: the vectors are imgtool's bytes, and a lost or changed file fails here by name.
#[test]
fn test_data_matches_its_sha256sums() {
    let data = data_dir();
    let sums = std::fs::read_to_string(data.join("SHA256SUMS")).unwrap();
    let mut listed = std::collections::BTreeSet::new();
    for line in sums.lines() {
        let (want, name) = line.split_once("  ").expect("`HASH  PATH` lines");
        let bytes = std::fs::read(data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = otactl::assemble::hex_string(&Sha256::digest(&bytes));
        assert_eq!(got, want, "{name} differs from tests/data/SHA256SUMS");
        listed.insert(name.to_string());
    }
    let mut found = std::collections::BTreeSet::new();
    let mut dirs = vec![data.join("vectors"), data.join("flashmap")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(&data).unwrap();
                found.insert(rel.to_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(
        found, listed,
        "files in tests/data vs tests/data/SHA256SUMS"
    );
}

/// One recorded `imgtool sign` run from `out/commands.log`.
struct Vector {
    /// Arguments without the key, `--sig-out`, the input and the output.
    args: Vec<String>,
    signed: bool,
    input: String,
    /// `out/<name>.<ext>` as recorded.
    output: String,
}

impl Vector {
    fn name(&self) -> &str {
        Path::new(&self.output)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap()
    }

    fn ext(&self) -> &str {
        Path::new(&self.output)
            .extension()
            .and_then(|s| s.to_str())
            .unwrap()
    }
}

fn recorded() -> Vec<Vector> {
    let log = std::fs::read_to_string(vectors_dir().join("out/commands.log")).unwrap();
    let v: Vec<Vector> = log
        .lines()
        .filter(|l| l.starts_with("imgtool sign "))
        .map(|l| {
            let mut words: Vec<String> = l.split_whitespace().skip(2).map(String::from).collect();
            let output = words.pop().unwrap();
            let mut args = Vec::new();
            let mut signed = false;
            let mut it = words.into_iter();
            while let Some(w) = it.next() {
                match w.as_str() {
                    "-k" | "--sig-out" => {
                        signed |= w == "-k";
                        it.next();
                    }
                    _ => args.push(w),
                }
            }
            let input = args.pop().unwrap();
            Vector {
                args,
                signed,
                input,
                output,
            }
        })
        .collect();
    assert_eq!(v.len(), 13, "commands.log should record 13 vectors");
    v
}

fn sign(v: &Vector, extra: &[&str], out: &Path) -> Output {
    let o = run(otactl()
        .current_dir(vectors_dir())
        .arg("sign")
        .args(&v.args)
        .args(extra)
        .arg(&v.input)
        .arg(out));
    assert!(
        o.status.success(),
        "otactl sign for {} failed: {}",
        v.name(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn otactl_verify(key: Option<&Path>, image: &Path) -> Output {
    let mut c = otactl();
    c.current_dir(vectors_dir()).arg("verify");
    if let Some(k) = key {
        c.arg("-k").arg(k);
    }
    run(c.arg(image))
}

#[test]
fn sign_with_fixed_signature_reproduces_all_13_vectors_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for v in recorded() {
        let out = dir.path().join(format!("{}.{}", v.name(), v.ext()));
        let sig = format!("out/{}.sig.b64", v.name());
        let extra: Vec<&str> = if v.signed {
            vec!["--fix-sig", &sig, "--fix-sig-pubkey", PUB]
        } else {
            vec![]
        };
        sign(&v, &extra, &out);
        let want = std::fs::read(vectors_dir().join(&v.output)).unwrap();
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == want,
            "{}: output differs from imgtool's ({} vs {} bytes)",
            v.name(),
            got.len(),
            want.len()
        );
    }
}

#[test]
fn own_signatures_pass_real_imgtool_verify_and_otactl_verify() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for v in recorded().into_iter().filter(|v| v.signed) {
        let out = dir.path().join(format!("{}.{}", v.name(), v.ext()));
        let sig_out = dir.path().join(format!("{}.sig.b64", v.name()));
        sign(
            &v,
            &["-k", KEY, "--sig-out", sig_out.to_str().unwrap()],
            &out,
        );
        assert!(sig_out.is_file());
        let o = run(std::process::Command::new(&imgtool)
            .current_dir(vectors_dir())
            .args(["verify", "-k", KEY])
            .arg(&out));
        assert!(
            o.status.success(),
            "imgtool verify rejected otactl's {}: {}",
            v.name(),
            String::from_utf8_lossy(&o.stdout)
        );
        let o = otactl_verify(Some(Path::new(KEY)), &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // RFC 6979: signing again gives the same bytes.
        let again = dir.path().join(format!("again-{}.{}", v.name(), v.ext()));
        sign(&v, &["-k", KEY], &again);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    }
}

#[test]
fn verify_accepts_every_vector() {
    let key = Path::new(KEY);
    for v in recorded() {
        // v13 is unsigned: like imgtool, it verifies by hash only (no -k).
        let k = v.signed.then_some(key);
        let o = otactl_verify(k, Path::new(&v.output));
        assert!(
            o.status.success(),
            "{}: {}",
            v.name(),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Image was correctly validated"), "{text}");
    }
    let o = otactl_verify(Some(key), Path::new("out/v04-ifx-psoc6-ext-swap-hex.bin"));
    assert!(o.status.success());
    // Infineon's C-array public key and the PEM public key work as well.
    for k in ["keys/cypress-test-ec-p256.pub", PUB] {
        let o = otactl_verify(Some(Path::new(k)), Path::new("out/v12-plain-prot-tlvs.bin"));
        assert!(
            o.status.success(),
            "{k}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Runs `otactl verify -k KEY` on `bytes` and returns the rejection message (exit must be 1).
fn rejection(dir: &Path, name: &str, bytes: &[u8], key: &Path) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let o = otactl_verify(Some(key), &p);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{name}: {err}");
    err
}

#[test]
fn verify_rejects_each_corruption_with_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let key = vectors_dir().join(KEY);
    let v01 = std::fs::read(vectors_dir().join("out/v01-ifx-psoc6-ext-swap.bin")).unwrap();
    let v12 = std::fs::read(vectors_dir().join("out/v12-plain-prot-tlvs.bin")).unwrap();
    let flip = |img: &[u8], off: usize| {
        let mut b = img.to_vec();
        b[off] ^= 0x01;
        b
    };
    // Header: the version's minor byte (0x15). Payload: a byte in the middle.
    let header = rejection(dir.path(), "hdr.bin", &flip(&v01, 0x15), &key);
    let payload = rejection(dir.path(), "pay.bin", &flip(&v01, 0x8000), &key);
    // v12's protected area starts at 0x10020; SEC_CNT's value is at 0x10028.
    let prot = rejection(dir.path(), "prot.bin", &flip(&v12, 0x10028), &key);
    // The last byte of v01's DER signature (the file ends with it).
    let sig = rejection(dir.path(), "sig.bin", &flip(&v01, v01.len() - 1), &key);
    let other = dir.path().join("other.pem");
    let o = run(otactl().arg("keygen").arg("-k").arg(&other));
    assert!(o.status.success());
    let wrong_key = rejection(dir.path(), "wk.bin", &v01, &other);
    let truncated = rejection(dir.path(), "trunc.bin", &v01[..v01.len() - 10], &key);

    for hash_case in [&header, &payload, &prot] {
        assert!(hash_case.contains("hash mismatch"), "{hash_case}");
    }
    assert!(sig.contains("signature does not verify"), "{sig}");
    assert!(wrong_key.contains("different key"), "{wrong_key}");
    assert!(truncated.contains("truncated"), "{truncated}");
    let all = [&header, &payload, &prot, &sig, &wrong_key, &truncated];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b, "two corruptions gave the same message");
        }
    }
}

#[test]
fn option_combinations_beyond_the_vectors_match_live_imgtool() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = "--pad-header -H 0x200 --align 8 -S 0x20000 -v 2.3.4+5";
    let hex_in = "payload-64k-at-0x10028400.hex";
    let bin_in = "payload-64k.bin";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{p} --pad --confirm"), hex_in, "hex"),
        (format!("{p} --test"), hex_in, "hex"),
        (format!("{p} --align 16 --max-align 32 --confirm"), hex_in, "hex"),
        (format!("{p} --overwrite-only --confirm"), hex_in, "hex"),
        (format!("{p} -x 0x8000000 --pad"), bin_in, "hex"),
        (format!("{p} --max-align 16 --confirm"), bin_in, "bin"),
        (format!("{p} --align 32 --pad"), bin_in, "bin"),
        (format!("{p} --align 4 --align 2 --pad"), bin_in, "bin"),
        (format!("{p} -F 0x10028000 --non-bootable"), bin_in, "bin"),
        (
            format!("{p} -s 0x10 -d (0,1.0.0),(2,3.4.5+6) --custom-tlv 0xa1 hello --custom-tlv 0x1234 0x00ff"),
            bin_in,
            "bin",
        ),
        (format!("{p} --overwrite-only --confirm -R 0"), bin_in, "bin"),
        (
            "-H 0x20 -S 0x20000 -v 0 --public-key-format full -s auto".into(),
            "payload-64k-zerohdr32.bin",
            "hex",
        ),
    ];
    for (i, (args, input, ext)) in cases.iter().enumerate() {
        let args: Vec<&str> = args.split_whitespace().collect();
        let theirs = dir.path().join(format!("i{i}.{ext}"));
        let ours = dir.path().join(format!("o{i}.{ext}"));
        let sig = dir.path().join(format!("s{i}.b64"));
        // Binary input has no address: give HEX output one.
        let x: &[&str] = if *ext == "hex" && !input.ends_with(".hex") && !args.contains(&"-x") {
            &["-x", "0x10000000"]
        } else {
            &[]
        };
        let o = run(std::process::Command::new(&imgtool)
            .current_dir(vectors_dir())
            .arg("sign")
            .args(&args)
            .args(x)
            .args(["-k", KEY, "--sig-out"])
            .arg(&sig)
            .arg(input)
            .arg(&theirs));
        assert!(
            o.status.success(),
            "imgtool {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = run(otactl()
            .current_dir(vectors_dir())
            .arg("sign")
            .args(&args)
            .args(x)
            .arg("--fix-sig")
            .arg(&sig)
            .args(["--fix-sig-pubkey", PUB, input])
            .arg(&ours));
        assert!(
            o.status.success(),
            "otactl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            std::fs::read(&theirs).unwrap() == std::fs::read(&ours).unwrap(),
            "{args:?} {input}: output differs from imgtool's"
        );
    }
}

#[test]
fn sign_with_flashmap_derives_infineons_arguments() {
    let dir = tempfile::tempdir().unwrap();
    // (flash map, extra flags, input, vector it must reproduce)
    let cases = [
        (
            "psoc62_2m_ext_swap_single.json",
            "",
            "payload-64k.bin",
            "v01-ifx-psoc6-ext-swap.bin",
        ),
        (
            "psoc62_2m_ext_swap_single.json",
            "--confirm",
            "payload-64k.bin",
            "v03-ifx-psoc6-ext-swap-confirm.bin",
        ),
        (
            "psoc62_2m_ext_swap_single.json",
            "",
            "payload-64k-at-0x10028400.hex",
            "v04-ifx-psoc6-ext-swap-hex.hex",
        ),
        (
            "psoc62_2m_int_swap_single.json",
            "--pad",
            "payload-64k.bin",
            "v06-ifx-psoc6-int-swap-erased0-pad.bin",
        ),
        (
            "psoc62_2m_ext_overwrite_single.json",
            "--pad",
            "payload-64k.bin",
            "v07-overwrite-only-pad.bin",
        ),
        // Binary in, HEX out: the map gives the address (the primary slot).
        (
            "psoc62_2m_ext_swap_single.json",
            "",
            "payload-64k.bin",
            "v04-ifx-psoc6-ext-swap-hex.hex",
        ),
    ];
    for (i, (map, extra, input, vector)) in cases.iter().enumerate() {
        let name = vector.trim_end_matches(".bin").trim_end_matches(".hex");
        let vector_file = Path::new(vector);
        let out = dir.path().join(format!(
            "{i}.{}",
            vector_file.extension().unwrap().to_str().unwrap()
        ));
        let sig_name = if vector.ends_with(".hex") {
            "v04-ifx-psoc6-ext-swap-hex".to_string()
        } else {
            name.to_string()
        };
        let o = run(otactl()
            .current_dir(vectors_dir())
            .arg("sign")
            .arg("--flashmap")
            .arg(flashmap_dir().join(map))
            .args(["-v", "1.1.0"])
            .args(extra.split_whitespace())
            .arg("--fix-sig")
            .arg(format!("out/{sig_name}.sig.b64"))
            .args(["--fix-sig-pubkey", PUB, input])
            .arg(&out));
        assert!(
            o.status.success(),
            "{map} {extra}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            std::fs::read(&out).unwrap()
                == std::fs::read(vectors_dir().join("out").join(vector)).unwrap(),
            "--flashmap {map} {extra} {input} differs from {vector}"
        );
    }
    // The slot is 0xe6000 on the internal-swap map; a 1 MiB payload cannot fit.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 0x100000]).unwrap();
    let o = run(otactl()
        .arg("sign")
        .arg("--flashmap")
        .arg(flashmap_dir().join("psoc62_2m_int_swap_single.json"))
        .args(["-v", "1.0.0"])
        .arg(&big)
        .arg(dir.path().join("never.bin")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("slot (-S) is 0xe6000") && err.contains("too large"),
        "{err}"
    );
    assert!(!dir.path().join("never.bin").exists());
}
