//! The CA is kept: `certs server` re-issues only the broker's pair, `certs gen --force` issues
//! from the existing CA, and `certs gen --ca-cert/--ca-key` adopts the CA Infineon's
//! `generate_ssl_cert.sh` makes. openssl verifies the device certificates against the CA after
//! each of them.

use std::path::Path;
use std::process::Command;

use super::{gen, ok};
use crate::publish::infineon::Infineon;
use crate::util::{otactl, run, tool};

/// `openssl verify -CAfile ca cert` succeeds.
fn verifies(ssl: &Path, ca: &Path, cert: &Path) -> bool {
    let out = run(Command::new(ssl)
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert));
    out.status.success()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn certs_server_keeps_device_certificates_valid() {
    let Some(ssl) = tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    gen(d, 8884, "rsa2048", &["board-0001"]);
    let (ca, old_server) = (read(&d.join("ca.crt")), read(&d.join("server.crt")));
    let s = d.to_str().unwrap();
    ok(&[
        "certs",
        "server",
        "--ip",
        "10.1.2.3",
        "--dns",
        "broker.example",
        "--out",
        s,
    ]);
    assert_eq!(read(&d.join("ca.crt")), ca, "the CA was replaced");
    assert_ne!(read(&d.join("server.crt")), old_server);
    let ca_path = d.join("ca.crt");
    assert!(verifies(&ssl, &ca_path, &d.join("board-0001.crt")));
    assert!(verifies(&ssl, &ca_path, &d.join("server.crt")));
    let text = run(Command::new(&ssl)
        .args(["x509", "-noout", "-text", "-in"])
        .arg(d.join("server.crt")));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("IP Address:10.1.2.3") && text.contains("DNS:broker.example"),
        "{text}"
    );
    // The new pair belongs together and to the CA, as the broker's at the new address.
    let out = run(otactl().current_dir(d).args([
        "certs",
        "check",
        "--ca",
        "ca.crt",
        "--cert",
        "server.crt",
        "--key",
        "server.key",
        "--server",
        "--broker",
        "10.1.2.3",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a CA there is nothing to issue from.
    let empty = tempfile::tempdir().unwrap();
    let out = run(otactl()
        .args(["certs", "server", "--ip", "10.1.2.3", "--out"])
        .arg(empty.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ca.crt not found"));
}

#[test]
fn certs_gen_force_keeps_the_ca() {
    let Some(ssl) = tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    gen(d, 8884, "ecdsa-p256", &["board-0001"]);
    let (ca, key) = (read(&d.join("ca.crt")), read(&d.join("ca.key")));
    let s = d.to_str().unwrap();
    let out = ok(&["certs", "gen", "--ip", "10.9.9.9", "--out", s, "--force"]);
    assert!(out.contains("kept the CA"), "{out}");
    assert_eq!(
        (read(&d.join("ca.crt")), read(&d.join("ca.key"))),
        (ca.clone(), key)
    );
    for f in ["board-0001.crt", "server.crt", "publisher.crt"] {
        assert!(verifies(&ssl, &d.join("ca.crt"), &d.join(f)), "{f}");
    }
    // --new-ca only ever comes from the command line, never from the environment.
    let out = run(otactl()
        .env("OTACTL_NEW_CA", "true")
        .args(["certs", "gen", "--ip", "10.9.9.9", "--force", "--out", s]));
    assert!(out.status.success());
    assert_eq!(read(&d.join("ca.crt")), ca);
    // Half a CA is not issued from, and not silently replaced.
    std::fs::remove_file(d.join("ca.key")).unwrap();
    let out = run(otactl().args(["certs", "gen", "--ip", "10.9.9.9", "--force", "--out", s]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("half a CA") && err.contains("--new-ca"),
        "{err}"
    );
    assert_eq!(read(&d.join("ca.crt")), ca);
    // --new-ca says so: the old board no longer verifies.
    let out = run(otactl().args([
        "certs", "gen", "--ip", "10.9.9.9", "--force", "--new-ca", "--out", s,
    ]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-flashed"));
    assert_ne!(read(&d.join("ca.crt")), ca);
    assert!(!verifies(
        &ssl,
        &d.join("ca.crt"),
        &d.join("board-0001.crt")
    ));
}

#[test]
fn certs_gen_adopts_the_scripts_ca() {
    let Some(ssl) = tool("openssl") else { return };
    let Some(pki) = Infineon::make() else { return };
    let (ca_crt, ca_key) = (pki.p("mosquitto_ca.crt"), pki.p("mosquitto_ca.key"));
    // The CA key also as PKCS#1, as OpenSSL 1.1's genrsa wrote it.
    let pkcs1 = pki.p("ca_pkcs1.key");
    let conv = run(Command::new(&ssl)
        .args(["rsa", "-traditional", "-in"])
        .arg(&ca_key)
        .arg("-out")
        .arg(&pkcs1));
    assert!(conv.status.success());
    for key in [&ca_key, &pkcs1] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = run(otactl()
            .args([
                "certs",
                "gen",
                "--ip",
                "127.0.0.1",
                "--dns",
                "mosquitto_server",
                "--out",
            ])
            .arg(d)
            .arg("--ca-cert")
            .arg(&ca_crt)
            .arg("--ca-key")
            .arg(key));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read(&d.join("ca.crt")), read(&ca_crt));
        ok(&[
            "certs",
            "device",
            "board-0001",
            "--out",
            d.to_str().unwrap(),
        ]);
        for f in ["server.crt", "publisher.crt", "board-0001.crt"] {
            assert!(
                verifies(&ssl, &ca_crt, &d.join(f)),
                "{f} against mosquitto_ca.crt"
            );
        }
        // Issued from an RSA CA without --key-type: RSA keys, like the script's.
        let text = run(Command::new(&ssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(d.join("server.crt")));
        assert!(String::from_utf8_lossy(&text.stdout).contains("rsaEncryption"));
    }
    // A folder with otactl's own CA is not switched to the script's without --new-ca.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    gen(d, 8884, "ecdsa-p256", &[]);
    let adopt = |extra: &[&str]| {
        run(otactl()
            .args(["certs", "gen", "--ip", "127.0.0.1", "--force", "--out"])
            .arg(d)
            .arg("--ca-cert")
            .arg(&ca_crt)
            .arg("--ca-key")
            .arg(&ca_key)
            .args(extra))
    };
    let out = adopt(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--new-ca"));
    assert!(adopt(&["--new-ca"]).status.success());
    assert!(verifies(&ssl, &ca_crt, &d.join("server.crt")));
}
