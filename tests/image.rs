//! `otactl sign / verify / info / keygen / getpub` against imgtool 2.5.0's vectors and the real
//! `imgtool verify`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{otactl, run, tool, vectors_dir};

const KEY: &str = "keys/cypress-test-ec-p256.pem";
const PUB: &str = "keys/cypress-test-ec-p256.pub.pem";

fn vectors() -> PathBuf {
    let d = vectors_dir();
    assert!(
        d.join("out/commands.log").is_file(),
        "imgtool vectors not found at {} (set OTACTL_SHARED to the shared folder)",
        d.display()
    );
    d
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
    let log = std::fs::read_to_string(vectors().join("out/commands.log")).unwrap();
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
        .current_dir(vectors())
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
    c.current_dir(vectors()).arg("verify");
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
        let want = std::fs::read(vectors().join(&v.output)).unwrap();
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
            .current_dir(vectors())
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
    let key = vectors().join(KEY);
    let v01 = std::fs::read(vectors().join("out/v01-ifx-psoc6-ext-swap.bin")).unwrap();
    let v12 = std::fs::read(vectors().join("out/v12-plain-prot-tlvs.bin")).unwrap();
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
fn getpub_and_getpubhash_match_imgtool_byte_for_byte() {
    let cases: [(&str, &[&str], &str); 6] = [
        ("getpub", &["-e", "raw"], "getpub/getpub-raw.der"),
        ("getpub", &["-e", "lang-c"], "getpub/getpub-lang-c.txt"),
        ("getpub", &[], "getpub/getpub-lang-c.txt"),
        (
            "getpub",
            &["-e", "lang-rust"],
            "getpub/getpub-lang-rust.txt",
        ),
        ("getpubhash", &[], "getpub/getpubhash-lang-c.txt"),
        ("getpubhash", &["-e", "raw"], "getpub/getpubhash-raw.bin"),
    ];
    for (cmd, args, want) in cases {
        let o = run(otactl()
            .current_dir(vectors())
            .args([cmd, "-k", KEY])
            .args(args));
        assert!(o.status.success(), "{cmd} {args:?}");
        let want_bytes = std::fs::read(vectors().join(want)).unwrap();
        assert!(o.stdout == want_bytes, "{cmd} {args:?} differs from {want}");
    }
    // PEM, from the private key and from the public key itself.
    for k in [KEY, PUB] {
        let o = run(otactl()
            .current_dir(vectors())
            .args(["getpub", "-e", "pem", "-k", k]));
        assert_eq!(o.stdout, std::fs::read(vectors().join(PUB)).unwrap());
    }
}

#[cfg(unix)]
#[test]
fn keygen_writes_0600_and_never_overwrites_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("signing.pem");
    let o = run(otactl().arg("keygen").arg("-k").arg(&k));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta = std::fs::metadata(&k).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let first = std::fs::read(&k).unwrap();
    assert!(first.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));

    let o = run(otactl().arg("keygen").arg("-k").arg(&k));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(std::fs::read(&k).unwrap(), first);

    let o = run(otactl().arg("keygen").arg("--force").arg("-k").arg(&k));
    assert!(o.status.success());
    assert_ne!(std::fs::read(&k).unwrap(), first);
    assert_eq!(
        std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Signs the 64 KiB payload with `args` into `dir/out.bin`; returns the process output.
fn sign_payload(dir: &Path, args: &[&str]) -> Output {
    run(otactl()
        .current_dir(vectors())
        .arg("sign")
        .args(args)
        .arg("payload-64k.bin")
        .arg(dir.join("out.bin")))
}

#[test]
fn sign_refuses_images_that_cannot_work_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["--pad-header", "--align", "4", "-v", "1.0.0"];
    // Unsigned: 0x20 header + 0x10000 payload + 0x28 TLVs + 0x630 trailer in a 0x10000 slot.
    let o = sign_payload(
        dir.path(),
        &[&base[..], &["-H", "0x20", "-S", "0x10000"]].concat(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // 0x20 + 0x10000 + 0x28 + 0x630 - 0x10000 = 0x678 = 1656 bytes too many.
    assert!(err.contains("1656 bytes (0x678) too large"), "{err}");
    let o = sign_payload(
        dir.path(),
        &[&base[..], &["-H", "0x10", "-S", "0x20000"]].concat(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("header size 0x10 is invalid"), "{err}");
    let o = sign_payload(
        dir.path(),
        &[
            "--pad-header",
            "-H",
            "0x20",
            "-S",
            "0x20000",
            "-v",
            "1.02.0",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-v \"1.02.0\""));
    // Without --pad-header the payload's first bytes are not zero.
    let o = sign_payload(dir.path(), &["-H", "0x20", "-S", "0x20000", "-v", "1.0.0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pad-header"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn sign_refuses_a_key_that_is_not_p256() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("p384.pem");
    let o = run(std::process::Command::new(imgtool)
        .args(["keygen", "-t", "ecdsa-p384", "-k"])
        .arg(&k));
    assert!(o.status.success());
    let key = k.to_str().unwrap();
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let o = sign_payload(
        &out,
        &[
            "--pad-header",
            "-H",
            "0x20",
            "-S",
            "0x20000",
            "-v",
            "1.0.0",
            "-k",
            key,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("P-384") && err.contains("not an ECDSA P-256 key"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn info_json_shows_header_tlvs_and_trailer_state() {
    let o = run(otactl().current_dir(vectors()).args([
        "info",
        "--json",
        "out/v10-plain-min-pad-confirm.bin",
    ]));
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["header"]["version"], "1.2.3+4");
    assert_eq!(v["header"]["hdr_size"], 0x20);
    let names: Vec<&str> = v["tlvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SHA256", "KEYHASH", "ECDSASIG"]);
    assert_eq!(v["trailer"]["magic"], "good");
    assert_eq!(v["trailer"]["image_ok"], "set");
    assert_eq!(v["trailer"]["copy_done"], "unset");

    let o = run(otactl().current_dir(vectors()).args([
        "info",
        "--json",
        "out/v12-plain-prot-tlvs.bin",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["protected_tlvs"][0]["name"], "SEC_CNT");
    assert_eq!(v["protected_tlvs"][2]["value"], "deadbeef");
    assert!(v["trailer"].is_null());

    let o = run(otactl()
        .current_dir(vectors())
        .args(["info", "payload-64k.bin"]));
    assert_eq!(o.status.code(), Some(1));
}
