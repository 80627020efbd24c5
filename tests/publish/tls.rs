//! The publisher's connection over mutual TLS (rustls via `otactl::mqtt`) to a real mosquitto;
//! devices use the same broker's plain listener.

use std::path::{Path, PathBuf};
use std::time::Duration;

use otactl::mqtt::{self, BrokerUrl, TlsSettings};
use otactl::publish::{ClientOptions, Event, PublishConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::device::{self, DeviceConfig};
use super::fixture::{served, write_image, Events, Running, BOARD};
use super::{rt, updated};
use crate::util::{free_port, Mosquitto};

struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    conf_tls: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn pki(dir: &Path) -> Pki {
    let ca1 = ca("otactl test CA");
    let ca2 = ca("some other CA");
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut sp = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    sp.distinguished_name.push(DnType::CommonName, "broker");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let sk = KeyPair::generate().unwrap();
    let server = sp.signed_by(&sk, &ca1).unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "publisher");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let ck = KeyPair::generate().unwrap();
    let client = cp.signed_by(&ck, &ca1).unwrap();
    let ca_path = write("ca.pem", ca1.pem());
    let server_cert = write("server.pem", server.pem());
    let server_key = write("server.key", sk.serialize_pem());
    Pki {
        other_ca: write("other-ca.pem", ca2.pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client.key", ck.serialize_pem()),
        conf_tls: format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            ca_path.display(),
            server_cert.display(),
            server_key.display()
        ),
        ca: ca_path,
    }
}

fn tls_config(tls_port: u16, ca: &Path, p: &Pki, image: &Path) -> PublishConfig {
    let url = BrokerUrl::parse(&format!("mqtts://127.0.0.1:{tls_port}")).unwrap();
    let tls = TlsSettings {
        ca: Some(ca.to_path_buf()),
        cert: Some(p.client_cert.clone()),
        key: Some(p.client_key.clone()),
        server_name: None,
        insecure: false,
    };
    let o = mqtt::options_v4(&url, &format!("tls-pub-{tls_port}"), &tls).unwrap();
    PublishConfig::new(ClientOptions::V4(Box::new(o)), vec![served(BOARD, image)])
}

/// Mutual TLS to the broker, verified against the CA: devices on the plain listener update; a
/// publisher that trusts another CA never gets connected.
#[test]
fn publisher_over_mutual_tls_serves_devices() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (plain, tls) = (free_port(), free_port());
    let conf = dir.path().join("mosquitto-tls.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 10000\nlistener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\n{}",
            p.conf_tls
        ),
    )
    .unwrap();
    let Some(broker) = Mosquitto::start(&conf, plain) else {
        return;
    };
    assert!(
        crate::util::wait_for_port(tls, Duration::from_secs(10)),
        "{}",
        broker.log_text()
    );
    let (image_path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let publisher = Running::start(tls_config(tls, &p.ca, &p, &image_path)).await;
        let d = DeviceConfig::new(plain, BOARD, (1, 0, 0), 1200);
        updated(
            &device::session(&d).await,
            &image,
            "device behind a TLS publisher",
        );
        publisher.stop().await;

        // A broker certificate from an unknown CA can never work: the publisher stops at once
        // with the fix instead of retrying forever.
        let events = Events::new();
        let cfg = tls_config(tls, &p.other_ca, &p, &image_path);
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            otactl::publish::run(cfg, std::future::pending(), events.sink()),
        )
        .await
        .expect("a permanent failure ends the publisher");
        let err = r.expect_err("a broker certificate from an unknown CA must be refused");
        let msg = err.to_string();
        assert!(
            msg.contains("cannot connect to") && msg.contains("--ca"),
            "{msg}"
        );
        assert_eq!(events.count(|e| matches!(e, Event::Connected { .. })), 0);
    });
}
