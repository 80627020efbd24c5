//! `otactl keygen / getpub / getpubhash / info` and `sign`'s refusals.

use std::path::Path;
use std::process::Output;

use super::{KEY, PUB};
use crate::util::{otactl, run, tool, vectors_dir};

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
            .current_dir(vectors_dir())
            .args([cmd, "-k", KEY])
            .args(args));
        assert!(o.status.success(), "{cmd} {args:?}");
        let want_bytes = std::fs::read(vectors_dir().join(want)).unwrap();
        assert!(o.stdout == want_bytes, "{cmd} {args:?} differs from {want}");
    }
    // PEM, from the private key and from the public key itself.
    for k in [KEY, PUB] {
        let o = run(otactl()
            .current_dir(vectors_dir())
            .args(["getpub", "-e", "pem", "-k", k]));
        assert_eq!(o.stdout, std::fs::read(vectors_dir().join(PUB)).unwrap());
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
        .current_dir(vectors_dir())
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
fn sign_refuses_an_encryption_key() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("x25519.pem");
    let o = run(std::process::Command::new(imgtool)
        .args(["keygen", "-t", "x25519", "-k"])
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
        err.contains("an X25519 key") && err.contains("not a signing key MCUboot verifies"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn info_json_shows_header_tlvs_and_trailer_state() {
    let o = run(otactl().current_dir(vectors_dir()).args([
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

    let o = run(otactl().current_dir(vectors_dir()).args([
        "info",
        "--json",
        "out/v12-plain-prot-tlvs.bin",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["protected_tlvs"][0]["name"], "SEC_CNT");
    assert_eq!(v["protected_tlvs"][2]["value"], "deadbeef");
    assert!(v["trailer"].is_null());

    let o = run(otactl()
        .current_dir(vectors_dir())
        .args(["info", "payload-64k.bin"]));
    assert_eq!(o.status.code(), Some(1));
}
