use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::*;

fn url(s: &str) -> BrokerUrl {
    BrokerUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn urls_with_default_and_explicit_ports() {
    let u = url("mqtt://broker.example.com");
    assert_eq!(
        (u.tls, u.host.as_str(), u.port),
        (false, "broker.example.com", 1883)
    );
    let u = url("mqtts://broker.example.com/");
    assert_eq!((u.tls, u.port), (true, 8883));
    let u = url("mqtts://192.168.0.10:8884");
    assert_eq!(
        (u.tls, u.host.as_str(), u.port),
        (true, "192.168.0.10", 8884)
    );
    assert_eq!(u.ip(), Some("192.168.0.10".parse().unwrap()));
    let u = url("mqtt://[::1]:1884");
    assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
    assert_eq!(u.to_string(), "mqtt://[::1]:1884");
    let u = url("mqtts://[fe80::1]");
    assert_eq!((u.host.as_str(), u.port), ("fe80::1", 8883));
    assert_eq!(url("mqtt://localhost").to_string(), "mqtt://localhost:1883");
    assert_eq!(url("mqtt://a-b_c.x:1").port, 1);
}

#[test]
fn bad_urls_are_errors_quoting_the_value() {
    for bad in [
        "",
        "broker:1883",
        "tcp://broker",
        "http://broker",
        "mqtt://",
        "mqtt://:1883",
        "mqtt://host:",
        "mqtt://host:0",
        "mqtt://host:65536",
        "mqtt://host:x",
        "mqtt://host/path",
        "mqtt://user@host",
        "mqtt://::1",
        "mqtt://[::1",
        "mqtt://[::1]x",
        "mqtt://[nothost]:1",
        "mqtt://bad host",
        "mqtt://-bad.example",
        "mqtt://a..b",
    ] {
        let e = BrokerUrl::parse(bad).expect_err(bad).to_string();
        assert!(e.starts_with(&format!("{bad:?}")), "{e}");
    }
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// CA + a leaf for 127.0.0.1, PEM files in a temp dir.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let other = KeyPair::generate().unwrap();
        let w = |n: &str, s: String| std::fs::write(dir.path().join(n), s).unwrap();
        w("ca.crt", ca_cert.pem());
        w("leaf.crt", leaf.pem());
        w("leaf.key", key.serialize_pem());
        w("other.key", other.serialize_pem());
        w("junk.pem", "not pem\n".into());
        Self { dir }
    }

    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
}

fn settings(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> TlsSettings {
    TlsSettings {
        ca: ca.map(Path::to_path_buf),
        cert: cert.map(Path::to_path_buf),
        key: key.map(Path::to_path_buf),
        server_name: None,
        insecure: false,
    }
}

#[test]
fn client_configs_from_pem_files() {
    let pki = Pki::new();
    let ca = pki.p("ca.crt");
    let c = client_config(&settings(Some(&ca), None, None)).unwrap();
    assert!(!c.client_auth_cert_resolver.has_certs());
    let c = client_config(&settings(
        Some(&ca),
        Some(&pki.p("leaf.crt")),
        Some(&pki.p("leaf.key")),
    ))
    .unwrap();
    assert!(c.client_auth_cert_resolver.has_certs());
    let insecure = TlsSettings {
        insecure: true,
        ..TlsSettings::default()
    };
    client_config(&insecure).unwrap();
}

#[test]
fn client_config_errors_name_the_flag_and_file() {
    let pki = Pki::new();
    let ca = pki.p("ca.crt");
    // The error and its causes, as the CLI prints them.
    let msg = |s: TlsSettings| format!("{:#}", anyhow::Error::from(client_config(&s).unwrap_err()));
    let e = msg(settings(Some(&pki.p("junk.pem")), None, None));
    assert!(e.contains("--ca") && e.contains("junk.pem"), "{e}");
    let e = msg(settings(Some(&pki.p("missing.crt")), None, None));
    assert!(e.contains("missing.crt"), "{e}");
    let e = msg(settings(Some(&ca), Some(&pki.p("leaf.crt")), None));
    assert!(e.contains("--client-key"), "{e}");
    let e = msg(settings(Some(&ca), None, Some(&pki.p("leaf.key"))));
    assert!(e.contains("--cert"), "{e}");
    let e = msg(settings(
        Some(&ca),
        Some(&pki.p("leaf.crt")),
        Some(&pki.p("ca.crt")),
    ));
    assert!(e.contains("--client-key") && e.contains("ca.crt"), "{e}");
    let e = msg(settings(
        Some(&ca),
        Some(&pki.p("leaf.crt")),
        Some(&pki.p("other.key")),
    ));
    assert!(e.contains("unusable client certificate or key"), "{e}");
}

#[test]
fn options_carry_host_port_and_tls_transport() {
    let pki = Pki::new();
    let tls = settings(Some(&pki.p("ca.crt")), None, None);
    let o = options_v4(&url("mqtts://127.0.0.1:8884"), "id", &tls).unwrap();
    assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 8884));
    assert!(matches!(
        o.transport(),
        Transport::Tls(TlsConfiguration::Rustls(_))
    ));
    let o = options_v5(&url("mqtts://[::1]"), "id", &tls).unwrap();
    assert_eq!(o.broker_address(), ("::1".to_string(), 8883));
    assert!(matches!(
        o.transport(),
        Transport::Tls(TlsConfiguration::Rustls(_))
    ));
    let o = options_v4(&url("mqtt://h"), "id", &TlsSettings::default()).unwrap();
    assert!(matches!(o.transport(), Transport::Tcp));
    let e = options_v5(&url("mqtt://h"), "id", &tls)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mqtts://"), "{e}");
}

#[test]
fn port_443_asks_for_the_aws_alpn_protocol() {
    let tls = TlsSettings {
        insecure: true,
        ..TlsSettings::default()
    };
    let alpn = |u: &str| match transport(&url(u), &tls).unwrap() {
        Some(Transport::Tls(TlsConfiguration::Rustls(c))) => c.alpn_protocols.clone(),
        _ => panic!("{u}: not a rustls transport"),
    };
    assert_eq!(
        alpn("mqtts://a1-ats.iot.eu-west-1.amazonaws.com:443"),
        vec![crate::aws::ALPN_MQTT_443.as_bytes().to_vec()]
    );
    assert!(alpn("mqtts://a1-ats.iot.eu-west-1.amazonaws.com:8883").is_empty());
}
