//! AWS's certificate flows with files shaped like AWS's, made here with openssl: `otactl certs
//! csr` for create-certificate-from-csr, and `otactl cert-to-c` with an `AmazonRootCA1.pem`-like
//! RSA-2048 root and device certificates whose CN is AWS's "AWS IoT Certificate".

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::openssl;
use crate::certs::compile_and_run;
use crate::util::{otactl, run, tool};

#[test]
fn certs_csr_writes_a_private_key_and_a_request_openssl_verifies() {
    let Some(ssl) = tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out_dir = d.to_str().unwrap();
    for (name, key_type) in [("board-0001", "ecdsa-p256"), ("board-0002", "rsa2048")] {
        let out = run(otactl().args([
            "certs",
            "csr",
            name,
            "--key-type",
            key_type,
            "--out",
            out_dir,
        ]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = d.join(format!("{name}.key"));
        let csr = format!("{name}.csr");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}.key");
        let verify = run(Command::new(&ssl)
            .current_dir(d)
            .args(["req", "-verify", "-noout", "-in", &csr]));
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let subject = openssl(&ssl, d, &["req", "-noout", "-subject", "-in", &csr]);
        assert!(String::from_utf8_lossy(&subject).contains(&format!("CN = {name}")));
        // The request carries the key's public half.
        let from_csr = openssl(&ssl, d, &["req", "-noout", "-pubkey", "-in", &csr]);
        let from_key = openssl(&ssl, d, &["pkey", "-pubout", "-in", key.to_str().unwrap()]);
        assert_eq!(from_csr, from_key, "{name}");
    }
    let text = openssl(
        &ssl,
        d,
        &["req", "-noout", "-text", "-in", "board-0001.csr"],
    );
    assert!(String::from_utf8_lossy(&text).contains("prime256v1"));

    // Nothing is replaced without --force; bad names are refused before anything is written.
    let again = run(otactl().args(["certs", "csr", "board-0001", "--out", out_dir]));
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let bad = run(otactl().args(["certs", "csr", "a b", "--out", out_dir]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(!d.join("a b.key").exists());
}

/// An RSA-2048 root like AmazonRootCA1.pem, an intermediate named like AWS's issuer, and an
/// AWS-style device certificate (CN "AWS IoT Certificate", PKCS#1 "RSA PRIVATE KEY").
fn aws_like_files(ssl: &Path, d: &Path) {
    openssl(
        ssl,
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-sha256",
            "-days",
            "3650",
            "-nodes",
            "-subj",
            "/C=US/O=Amazon/CN=Amazon Root CA 1",
            "-keyout",
            "root.key",
            "-out",
            "AmazonRootCA1.pem",
        ],
    );
    openssl(
        ssl,
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "device.p8",
            "-subj",
            "/CN=AWS IoT Certificate",
            "-out",
            "device.csr",
        ],
    );
    openssl(
        ssl,
        d,
        &[
            "x509",
            "-req",
            "-in",
            "device.csr",
            "-CA",
            "AmazonRootCA1.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-sha256",
            "-out",
            "aws-certificate.pem.crt",
        ],
    );
    openssl(
        ssl,
        d,
        &[
            "rsa",
            "-in",
            "device.p8",
            "-traditional",
            "-out",
            "aws-private.pem.key",
        ],
    );
    let key = std::fs::read_to_string(d.join("aws-private.pem.key")).unwrap();
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{key}");
    // The same root with its base64 body on one line.
    let pem = std::fs::read_to_string(d.join("AmazonRootCA1.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(
        d.join("AmazonRootCA1-oneline.pem"),
        format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"),
    )
    .unwrap();
}

#[test]
fn cert_to_c_takes_amazon_root_ca_and_aws_device_certificates() {
    let Some(ssl) = tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aws_like_files(&ssl, d);
    let cert_to_c = |args: &[&str]| run(otactl().current_dir(d).arg("cert-to-c").args(args));

    for root in ["AmazonRootCA1.pem", "AmazonRootCA1-oneline.pem"] {
        let out = cert_to_c(&[root]);
        assert!(
            out.status.success(),
            "{root}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("-----BEGIN CERTIFICATE-----\\n"));
    }

    // Every AWS certificate has the same CN: it cannot be the board's SerialNumber.
    let files = [
        "AmazonRootCA1-oneline.pem",
        "aws-certificate.pem.crt",
        "aws-private.pem.key",
    ];
    let mut args = vec!["--header", "aws.h"];
    args.extend(files);
    let out = cert_to_c(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "aws-certificate.pem.crt",
        "AWS IoT Certificate",
        "--serial",
        "--certs-only",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert!(!d.join("aws.h").exists(), "nothing written on error");

    args.extend(["--serial", "board-0001"]);
    let out = cert_to_c(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = std::fs::read_to_string(d.join("aws.h")).unwrap();
    assert!(
        header.contains(r#"\"SerialNumber\": \"board-0001\""#),
        "{header}"
    );
    let mut only = vec!["--header", "aws-certs.h", "--certs-only"];
    only.extend(files);
    assert!(cert_to_c(&only).status.success());

    let Some(cc) = tool("cc") else {
        return;
    };
    let stdout = compile_and_run(
        &cc,
        d,
        "print_aws",
        "#include <stdio.h>\n#include \"aws.h\"\nint main(void) {\n\
         fputs(ROOT_CA_CERTIFICATE, stdout); fputs(\"@@\", stdout);\n\
         fputs(CLIENT_CERTIFICATE, stdout); fputs(\"@@\", stdout);\n\
         fputs(CLIENT_KEY, stdout); return 0; }\n",
    );
    let want: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(d.join(f)).unwrap())
        .collect();
    assert_eq!(stdout, want.join(&b"@@"[..]));
}
