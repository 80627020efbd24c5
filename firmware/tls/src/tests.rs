use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::UnixTime;

use super::*;

/// A CA (`ca.crt`), a leaf it signed for `names` (`leaf.crt`, `leaf.key`) and an unrelated key
/// (`other.key`) in `dir`.
fn pki(dir: &Path, names: &[&str]) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    let other = KeyPair::generate().unwrap();
    std::fs::write(dir.join("other.key"), other.serialize_pem()).unwrap();
    std::fs::write(dir.join("junk.pem"), "not PEM at all\n").unwrap();
}

fn leaf(dir: &Path) -> CertificateDer<'static> {
    load_certs(&dir.join("leaf.crt")).unwrap().remove(0)
}

fn check(tls: &ClientTls, leaf: &CertificateDer<'_>, host: &str) -> Result<(), String> {
    let host = ServerName::try_from(host.to_owned()).unwrap();
    tls.verifier()
        .map_err(|e| error_chain(&e))?
        .verify_server_cert(leaf, &[], &host, &[], UnixTime::now())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn chain(tls: &ClientTls) -> String {
    error_chain(&tls.build().unwrap_err())
}

#[test]
fn builds_with_and_without_a_client_certificate_and_alpn() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &["broker.example"]);
    let p = |n: &str| dir.path().join(n);
    let plain = ClientTls::new(Roots::File(p("ca.crt"))).build().unwrap();
    assert!(!plain.client_auth_cert_resolver.has_certs());
    assert!(plain.alpn_protocols.is_empty());
    let mutual = ClientTls::new(Roots::File(p("ca.crt")))
        .client_auth(p("leaf.crt"), p("leaf.key"))
        .alpn(vec![b"x-amzn-mqtt-ca".to_vec()])
        .build()
        .unwrap();
    assert!(mutual.client_auth_cert_resolver.has_certs());
    assert_eq!(mutual.alpn_protocols, [b"x-amzn-mqtt-ca".to_vec()]);
    // Insecure never reads the CA.
    ClientTls::new(Roots::File(p("missing.crt")))
        .insecure(true)
        .build()
        .unwrap();
}

#[test]
fn errors_name_the_file_and_what_is_wrong_in_words() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &["broker.example"]);
    let p = |n: &str| dir.path().join(n);
    let ca = || ClientTls::new(Roots::File(p("ca.crt")));
    let cases = [
        (
            ClientTls::new(Roots::File(p("missing.crt"))),
            format!(
                "CA certificate file: cannot read {}: ",
                p("missing.crt").display()
            ),
        ),
        (
            ClientTls::new(Roots::File(p("junk.pem"))),
            format!(
                "CA certificate file: {}: no CERTIFICATE found",
                p("junk.pem").display()
            ),
        ),
        (
            ca().client_auth(p("leaf.key"), p("leaf.key")),
            format!(
                "client certificate file: {}: no CERTIFICATE found",
                p("leaf.key").display()
            ),
        ),
        (
            ca().client_auth(p("leaf.crt"), p("ca.crt")),
            format!(
                "client key file: {}: no PRIVATE KEY found",
                p("ca.crt").display()
            ),
        ),
        (
            ca().client_auth(p("leaf.crt"), p("other.key")),
            format!(
                "{} / {}: unusable client certificate or key: the key does not belong to the \
                 certificate",
                p("leaf.crt").display(),
                p("other.key").display()
            ),
        ),
        (
            ca().server_name("IP:127.0.0.1"),
            r#"TLS server name "IP:127.0.0.1": not a host name or IP address"#.to_owned(),
        ),
    ];
    for (tls, want) in cases {
        let e = chain(&tls);
        assert!(e.starts_with(&want), "{want:?} expected: {e}");
        // Words only: no Debug of Rust types.
        assert!(!e.contains("Error") && !e.contains('{'), "{e}");
    }
    let e = tls_error(ca().client_auth(p("leaf.crt"), p("other.key")));
    assert!(matches!(
        e,
        TlsError::ClientAuth {
            source: ClientAuthError::KeyMismatch,
            ..
        }
    ));
}

fn tls_error(tls: ClientTls) -> TlsError {
    tls.build().unwrap_err()
}

#[test]
fn a_wrong_name_lists_the_certificate_names_and_the_callers_setting() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &["mosquitto_server", "IP:127.0.0.1"]);
    let tls = ClientTls::new(Roots::File(dir.path().join("ca.crt"))).name_advice(NameAdvice {
        setting: "--tls-server-name".into(),
        elsewhere: "OTA_DEVICE_TLS_SERVER_NAME".into(),
    });
    let leaf = leaf(dir.path());
    let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
    assert_eq!(
        e,
        "other error: the broker's certificate is signed by the CA but is not valid for 127.0.0.1: \
         it names \
         DNS:mosquitto_server, DNS:IP:127.0.0.1 (\"DNS:IP:127.0.0.1\" is a DNS name that reads \
         \"IP:127.0.0.1\", not an IP address entry); to verify it under one of its names, pass \
         --tls-server-name mosquitto_server (or set OTA_DEVICE_TLS_SERVER_NAME)"
    );
    let named = tls.clone().server_name("mosquitto_server");
    check(&named, &leaf, "127.0.0.1").unwrap();
    let e = check(&tls.server_name("other.example"), &leaf, "127.0.0.1").unwrap_err();
    assert!(
        e.contains("not valid for --tls-server-name other.example")
            && e.contains("e.g. --tls-server-name mosquitto_server"),
        "{e}"
    );
}

#[test]
fn the_name_override_never_skips_the_chain_and_insecure_does() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &["mosquitto_server"]);
    let other = tempfile::tempdir().unwrap();
    pki(other.path(), &["mosquitto_server"]);
    let leaf = leaf(dir.path());
    let tls =
        ClientTls::new(Roots::File(other.path().join("ca.crt"))).server_name("mosquitto_server");
    let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
    assert!(e.starts_with("invalid peer certificate"), "{e}");
    check(&tls.insecure(true), &leaf, "127.0.0.1").unwrap();
}

/// Infineon's generate_ssl_cert.sh material made with openssl in `dir`: an RSA CA, a broker
/// certificate naming `DNS:mosquitto_server` and `DNS:IP:127.0.0.1`, and an X.509 v1 client
/// certificate. `false` (skip) without openssl, unless CI requires every tool.
fn infineon_certs(dir: &Path) -> bool {
    let ok = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok(&["version"]) {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "openssl is required (CI=true)"
        );
        return false;
    }
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:mosquitto_server,DNS:IP:127.0.0.1\n",
    )
    .unwrap();
    assert!(ok(&["genrsa", "-out", "ca.key", "2048"]));
    assert!(ok(&[
        "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-subj", "/CN=myCA", "-out",
        "ca.crt"
    ]));
    for (who, ext) in [("server", true), ("client", false)] {
        let (key, csr, crt) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.crt"),
        );
        assert!(ok(&["genrsa", "-out", &key, "2048"]));
        assert!(ok(&[
            "req", "-new", "-key", &key, "-out", &csr, "-subj", "/CN=x"
        ]));
        let mut sign = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "3650",
        ];
        if ext {
            sign.extend(["-extfile", "ext"]);
        }
        assert!(ok(&sign));
    }
    true
}

#[test]
fn infineon_v1_client_certificate_rsa_keys_and_tls_server_name() {
    let dir = tempfile::tempdir().unwrap();
    if !infineon_certs(dir.path()) {
        return;
    }
    let p = |n: &str| dir.path().join(n);
    let tls =
        ClientTls::new(Roots::File(p("ca.crt"))).client_auth(p("client.crt"), p("client.key"));
    assert!(tls.build().unwrap().client_auth_cert_resolver.has_certs());
    // The v1 certificate with another RSA key is refused before any connection.
    let e = chain(&tls.clone().client_auth(p("client.crt"), p("server.key")));
    assert!(
        e.contains("the key does not belong to the certificate"),
        "{e}"
    );
    let server = load_certs(&p("server.crt")).unwrap().remove(0);
    assert!(
        check(&tls, &server, "127.0.0.1").is_err(),
        "no IP address entry for 127.0.0.1"
    );
    check(&tls.server_name("mosquitto_server"), &server, "127.0.0.1").unwrap();
}
