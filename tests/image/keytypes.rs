//! RSA-2048/3072, Ed25519 and ECDSA P-384 keys against the real imgtool 2.5.0: keys made by
//! either tool load in the other, `getpub`/`getpubhash` print the same bytes, each tool verifies
//! the other's signatures, and with imgtool's signature (`--fix-sig`) otactl writes imgtool's
//! image byte for byte (Ed25519, being deterministic, without it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{otactl, run, tool, vectors_dir};

const TYPES: [&str; 4] = ["rsa-2048", "rsa-3072", "ed25519", "ecdsa-p384"];
const SIGN: &str = "--pad-header -H 0x400 --align 8 -S 0x20000 -v 1.2.3+4 --pad";

pub(super) fn ok(o: &Output, what: &str) -> Vec<u8> {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout.clone()
}

pub(super) fn imgtool(imgtool: &Path, args: &[&str]) -> Output {
    run(Command::new(imgtool).current_dir(vectors_dir()).args(args))
}

pub(super) fn ours(args: &[&str]) -> Output {
    run(otactl().current_dir(vectors_dir()).args(args))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub(super) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `getpub` in every encoding and `getpubhash` in both equal imgtool's for `key`.
fn same_public_output(imgtool_bin: &Path, key: &Path, what: &str) {
    for enc in ["pem", "raw", "lang-c", "lang-rust"] {
        let args = ["getpub", "-k", s(key), "-e", enc];
        let theirs = ok(&imgtool(imgtool_bin, &args), what);
        assert_eq!(ok(&ours(&args), what), theirs, "{what}: getpub -e {enc}");
    }
    for enc in ["raw", "lang-c"] {
        let args = ["getpubhash", "-k", s(key), "-e", enc];
        let theirs = ok(&imgtool(imgtool_bin, &args), what);
        assert_eq!(
            ok(&ours(&args), what),
            theirs,
            "{what}: getpubhash -e {enc}"
        );
    }
}

#[test]
fn other_key_types_interoperate_with_imgtool_both_ways() {
    let Some(imgtool_bin) = tool("imgtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ty in TYPES {
        let theirs_key = d.join(format!("imgtool-{ty}.pem"));
        let ours_key = d.join(format!("otactl-{ty}.pem"));
        ok(
            &imgtool(&imgtool_bin, &["keygen", "-t", ty, "-k", s(&theirs_key)]),
            ty,
        );
        ok(&ours(&["keygen", "-t", ty, "-k", s(&ours_key)]), ty);
        let pem = std::fs::read_to_string(&ours_key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{ty}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&ours_key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{ty}");
        }
        for key in [&theirs_key, &ours_key] {
            let what = format!("{ty} {}", key.file_name().unwrap().to_str().unwrap());
            same_public_output(&imgtool_bin, key, &what);
            both_verify_each_other(&imgtool_bin, d, key, &what);
        }
    }
}

/// otactl's image passes `imgtool verify` and `otactl verify`; imgtool's image passes
/// `otactl verify`, and otactl reproduces it from its signature.
fn both_verify_each_other(imgtool_bin: &Path, d: &Path, key: &Path, what: &str) {
    let stem = key.file_stem().unwrap().to_str().unwrap();
    let pubkey = d.join(format!("{stem}.pub.pem"));
    ok(
        &ours(&["getpub", "-k", s(key), "-e", "pem", "-o", s(&pubkey)]),
        what,
    );
    for fmt in ["hash", "full"] {
        let out = |who: &str| -> PathBuf { d.join(format!("{stem}-{fmt}-{who}.bin")) };
        let (mine, theirs, again) = (out("otactl"), out("imgtool"), out("fixed"));
        let sig = d.join(format!("{stem}-{fmt}.sig"));
        let mut args: Vec<&str> = vec!["sign"];
        args.extend(SIGN.split_whitespace());
        args.extend(["--public-key-format", fmt]);
        let with = |extra: &[&str], input: &str, out: &Path| -> Vec<String> {
            let mut a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
            a.extend(extra.iter().map(|x| x.to_string()));
            a.extend([input.to_string(), s(out).to_string()]);
            a
        };

        let a = with(&["-k", s(key)], "payload-64k.bin", &mine);
        ok(&ours(&strs(&a)), what);
        ok(
            &imgtool(imgtool_bin, &["verify", "-k", s(key), s(&mine)]),
            what,
        );
        ok(&ours(&["verify", "-k", s(&pubkey), s(&mine)]), what);

        let a = with(
            &["-k", s(key), "--sig-out", s(&sig)],
            "payload-64k.bin",
            &theirs,
        );
        ok(&imgtool(imgtool_bin, &strs(&a)), what);
        ok(&ours(&["verify", "-k", s(key), s(&theirs)]), what);
        let extra = ["--fix-sig", s(&sig), "--fix-sig-pubkey", s(&pubkey)];
        ok(&ours(&strs(&with(&extra, "payload-64k.bin", &again))), what);
        let want = std::fs::read(&theirs).unwrap();
        assert!(
            std::fs::read(&again).unwrap() == want,
            "{what} {fmt}: otactl --fix-sig differs from imgtool's image"
        );
        if what.starts_with("ed25519") {
            assert!(
                std::fs::read(&mine).unwrap() == want,
                "{what} {fmt}: Ed25519 signatures are deterministic, the images must be equal"
            );
        }
    }
}
