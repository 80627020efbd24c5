//! `otactl certs check` and `otactl cert-to-c --header` on the material Infineon's
//! `generate_ssl_cert.sh` makes (made with openssl as the script does, see
//! tests/publish/infineon.rs): a matching v1 client set passes with a warning; the key of another
//! device, a CA of another project, the broker's pair in a client's place and an expired
//! certificate are refused, each with a message that says what is wrong.

use std::path::Path;
use std::process::{Command, Output};

use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use time::{Date, Month, OffsetDateTime, Time};

use super::gen;
use crate::publish::infineon::Infineon;
use crate::util::{otactl, run, tool};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `otactl certs check` in `dir` with CA, certificate, key and `extra` flags.
fn check(dir: &Path, files: [&str; 3], extra: &[&str]) -> Output {
    run(otactl()
        .current_dir(dir)
        .args([
            "certs", "check", "--ca", files[0], "--cert", files[1], "--key", files[2],
        ])
        .args(extra))
}

/// `otactl cert-to-c --header board.h` in `dir` with the three files.
fn cert_to_c(dir: &Path, files: [&str; 3]) -> Output {
    run(otactl()
        .current_dir(dir)
        .args(["cert-to-c", "--force", "--header", "board.h"])
        .args(files))
}

/// `certs check` says no (exit 1) and `cert-to-c` refuses (exit 2, nothing written), both
/// saying every one of `want`.
fn refused(dir: &Path, files: [&str; 3], want: &[&str]) {
    let out = check(dir, files, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{files:?}: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    let _ = std::fs::remove_file(dir.join("board.h"));
    let c = cert_to_c(dir, files);
    assert_eq!(c.status.code(), Some(2), "{files:?}");
    let c_err = text(&c.stderr);
    assert!(!dir.join("board.h").exists(), "{files:?}: header written");
    for w in want {
        assert!(
            err.contains(w),
            "certs check {files:?}: missing {w:?} in: {err}"
        );
        assert!(
            c_err.contains(w),
            "cert-to-c {files:?}: missing {w:?} in: {c_err}"
        );
    }
}

/// A second board's v1 client pair from the script's CA, as the script makes the first.
fn second_client(ssl: &Path, dir: &Path) {
    let sh = |args: &[&str]| {
        let o = run(Command::new(ssl).current_dir(dir).args(args));
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o.stderr));
    };
    sh(&["genrsa", "-out", "other.key", "2048"]);
    sh(&[
        "req",
        "-new",
        "-key",
        "other.key",
        "-out",
        "other.csr",
        "-subj",
        "/CN=other",
    ]);
    sh(&[
        "x509",
        "-req",
        "-in",
        "other.csr",
        "-CA",
        "mosquitto_ca.crt",
        "-CAkey",
        "mosquitto_ca.key",
        "-CAcreateserial",
        "-out",
        "other.crt",
        "-days",
        "3650",
        "-sha256",
    ]);
}

const CLIENT: [&str; 3] = [
    "mosquitto_ca.crt",
    "mosquitto_client.crt",
    "mosquitto_client.key",
];

#[test]
fn the_scripts_v1_client_set_passes_with_a_warning() {
    let Some(pki) = Infineon::make() else { return };
    let d = pki.p("");
    let out = check(&d, CLIENT, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for want in [
        "ok: the key mosquitto_client.key belongs to the certificate mosquitto_client.crt",
        "ok: mosquitto_client.crt is signed by the CA mosquitto_ca.crt (CN=myCA)",
        "warning: mosquitto_client.crt is an X.509 version 1 certificate",
        "yes:",
    ] {
        assert!(said.contains(want), "missing {want:?} in: {said}");
    }
    // The same files as PKCS#1 key, and through cert-to-c (a warning on stderr, a header).
    let pkcs1 = [CLIENT[0], CLIENT[1], "client_pkcs1.key"];
    assert_eq!(check(&d, pkcs1, &[]).status.code(), Some(0));
    let c = cert_to_c(&d, CLIENT);
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(text(&c.stderr).contains("version 1"), "{}", text(&c.stderr));
    assert!(d.join("board.h").is_file());
}

#[test]
fn the_key_of_another_device_is_refused() {
    let Some(ssl) = tool("openssl") else { return };
    let Some(pki) = Infineon::make() else { return };
    let d = pki.p("");
    second_client(&ssl, &d);
    assert_eq!(
        check(&d, [CLIENT[0], "other.crt", "other.key"], &[])
            .status
            .code(),
        Some(0)
    );
    refused(
        &d,
        [CLIENT[0], CLIENT[1], "other.key"],
        &["the key other.key does not belong to the certificate mosquitto_client.crt"],
    );
}

#[test]
fn a_ca_of_another_project_is_refused() {
    let Some(pki) = Infineon::make() else { return };
    let Some(other) = Infineon::make() else {
        return;
    };
    let d = pki.p("");
    // Another run of the script: a CA with the same name and another key.
    std::fs::copy(other.p("mosquitto_ca.crt"), d.join("other_ca.crt")).unwrap();
    refused(
        &d,
        ["other_ca.crt", CLIENT[1], CLIENT[2]],
        &[
            "is not signed by the CA other_ca.crt",
            "another CA of that name",
        ],
    );
    // otactl's own CA ("otactl CA").
    gen(&d.join("otactl"), 8884, "ecdsa-p256", &[]);
    refused(
        &d,
        ["otactl/ca.crt", CLIENT[1], CLIENT[2]],
        &["is not signed by the CA otactl/ca.crt", "issued by CN=myCA"],
    );
    // The hint for AWS-style sets, where the CA only verifies the broker.
    let files = ["otactl/ca.crt", CLIENT[1], CLIENT[2]];
    assert!(text(&cert_to_c(&d, files).stderr).contains("--broker-ca-only"));
    let c = run(otactl()
        .current_dir(&d)
        .args([
            "cert-to-c",
            "--force",
            "--broker-ca-only",
            "--header",
            "board.h",
        ])
        .args(files));
    assert!(c.status.success(), "{}", text(&c.stderr));
}

#[test]
fn a_server_pair_used_as_a_client_pair_is_refused() {
    let Some(pki) = Infineon::make() else { return };
    let d = pki.p("");
    // The script's broker certificate has no extendedKeyUsage: its host names give it away.
    refused(
        &d,
        [CLIENT[0], "mosquitto_server.crt", "mosquitto_server.key"],
        &["looks like a broker's certificate", "DNS:mosquitto_server"],
    );
    // otactl's carries serverAuth.
    gen(&d.join("o"), 8884, "ecdsa-p256", &[]);
    refused(
        &d,
        ["o/ca.crt", "o/server.crt", "o/server.key"],
        &[
            "a broker's (server) certificate used as a client certificate",
            "serverAuth",
        ],
    );
    // As the broker's pair the script's is usable: the DNS:IP: entry is explained.
    let out = check(
        &d,
        [CLIENT[0], "mosquitto_server.crt", "mosquitto_server.key"],
        &["--server", "--broker", "mqtts://127.0.0.1:8884"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for want in [
        "does not name the broker address 127.0.0.1",
        "its DNS:IP:127.0.0.1 entry is a name, not the address",
        "--tls-server-name mosquitto_server",
    ] {
        assert!(said.contains(want), "missing {want:?} in: {said}");
    }
    // A client certificate as the broker's, and a v1 one at that.
    let out = check(&d, CLIENT, &["--server"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("webpki"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let Some(pki) = Infineon::make() else { return };
    let d = pki.p("");
    // openssl 3.0 cannot back-date (-days must be positive): rcgen signs with the script's CA.
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(pki.p("mosquitto_ca.key")).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(pki.p("mosquitto_ca.crt")).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "old-board");
    p.distinguished_name = dn;
    let day =
        |y, m| OffsetDateTime::new_utc(Date::from_calendar_date(y, m, 1).unwrap(), Time::MIDNIGHT);
    p.not_before = day(2020, Month::January);
    p.not_after = day(2021, Month::January);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(d.join("old.crt"), cert.pem()).unwrap();
    std::fs::write(d.join("old.key"), key.serialize_pem()).unwrap();
    refused(
        &d,
        [CLIENT[0], "old.crt", "old.key"],
        &["old.crt expired on 2021-01-01 00:00 UTC"],
    );
}

#[test]
fn unreadable_input_is_exit_2_naming_the_file() {
    let Some(pki) = Infineon::make() else { return };
    let d = pki.p("");
    std::fs::write(d.join("empty.pem"), "").unwrap();
    for (files, want) in [
        (["missing.crt", CLIENT[1], CLIENT[2]], "missing.crt"),
        (
            [CLIENT[0], "empty.pem", CLIENT[2]],
            "empty.pem: no CERTIFICATE",
        ),
        (
            [CLIENT[0], CLIENT[1], "mosquitto_ca.crt"],
            "mosquitto_ca.crt: no PRIVATE KEY",
        ),
    ] {
        let out = check(&d, files, &[]);
        assert_eq!(out.status.code(), Some(2), "{files:?}");
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    }
}
