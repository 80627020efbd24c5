//! The broker is verified by the address in the URL, over IPv4 and IPv6, through
//! `otactl::mqtt` (MQTT 3.1.1 and 5) against a real mosquitto serving the generated
//! certificates on extra loopback listeners: `[::1]` (in the certificate) and `127.0.0.2`
//! (not in it).

use std::path::Path;
use std::time::Duration;

use otactl::mqtt::{self, BrokerUrl, TlsSettings};
use tokio::time::timeout;

use super::{ok, path};
use crate::util::{free_port, wait_for_addr, Mosquitto};

const LIMIT: Duration = Duration::from_secs(10);

fn publisher_tls(dir: &Path, insecure: bool) -> TlsSettings {
    TlsSettings {
        ca: (!insecure).then(|| path(dir, "ca.crt")),
        cert: Some(path(dir, "publisher.crt")),
        key: Some(path(dir, "publisher.key")),
        server_name: None,
        insecure,
    }
}

/// MQTT 3.1.1 CONNECT → CONNACK through `mqtt::client_v4`.
async fn connect_v4(url: &str, tls: &TlsSettings) -> Result<(), String> {
    let url = BrokerUrl::parse(url).unwrap();
    let opts = mqtt::options_v4(&url, "addr-v4", tls).map_err(|e| format!("{e:#}"))?;
    let (_client, mut events) = mqtt::client_v4(opts, 8);
    loop {
        match timeout(LIMIT, events.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)))) => {
                return match a.code {
                    rumqttc::ConnectReturnCode::Success => Ok(()),
                    c => Err(format!("{c:?}")),
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// MQTT 5 CONNECT → CONNACK with `mqtt::options_v5` (the publisher's share-group client).
async fn connect_v5(url: &str, tls: &TlsSettings) -> Result<(), String> {
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
    let url = BrokerUrl::parse(url).unwrap();
    let opts = mqtt::options_v5(&url, "addr-v5", tls).map_err(|e| format!("{e:#}"))?;
    let (_client, mut events) = rumqttc::v5::AsyncClient::new(opts, 8);
    loop {
        match timeout(LIMIT, events.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(rumqttc::v5::Event::Incoming(Packet::ConnAck(a)))) => {
                return match a.code {
                    ConnectReturnCode::Success => Ok(()),
                    c => Err(format!("{c:?}")),
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// A free TCP port on `[::1]`.
fn free_port_v6() -> u16 {
    std::net::TcpListener::bind("[::1]:0")
        .expect("IPv6 loopback")
        .local_addr()
        .unwrap()
        .port()
}

/// The generated config plus one more TLS listener per `(port, address)`, with the same
/// certificate files and client-certificate rules as the generated listener.
fn add_listeners(conf: &Path, extra: &[(u16, &str)]) {
    let text = std::fs::read_to_string(conf).unwrap();
    let tls: Vec<&str> = text
        .lines()
        .filter(|l| {
            [
                "cafile ",
                "certfile ",
                "keyfile ",
                "require_certificate ",
                "use_identity_as_username ",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .collect();
    assert_eq!(tls.len(), 5, "unexpected mosquitto.conf:\n{text}");
    let mut out = text.clone();
    for (port, addr) in extra {
        out.push_str(&format!("\nlistener {port} {addr}\n{}\n", tls.join("\n")));
    }
    std::fs::write(conf, out).unwrap();
}

#[test]
fn broker_is_verified_by_its_ip_san_over_ipv6_and_refused_at_an_address_not_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (port, port6, port_other) = (free_port(), free_port_v6(), free_port());
    let p = port.to_string();
    ok(&[
        "certs",
        "gen",
        "--ip",
        "127.0.0.1",
        "--ip",
        "::1",
        "--bind",
        "127.0.0.1",
        "--port",
        &p,
        "--out",
        d,
    ]);
    let conf = dir.path().join("mosquitto.conf");
    add_listeners(&conf, &[(port6, "::1"), (port_other, "127.0.0.2")]);
    let Some(broker) = Mosquitto::start(&conf, port) else {
        return;
    };
    let log = || broker.log_text();
    // mosquitto opens its listeners one after another; start() waited for the first only.
    for addr in [format!("[::1]:{port6}"), format!("127.0.0.2:{port_other}")] {
        assert!(
            wait_for_addr(addr.parse().unwrap(), Duration::from_secs(10)),
            "listener {addr} never opened\n{}",
            log()
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let strict = publisher_tls(dir.path(), false);
        let v6 = format!("mqtts://[::1]:{port6}");
        connect_v4(&v6, &strict)
            .await
            .unwrap_or_else(|e| panic!("MQTT 3.1.1 over [::1]: {e}\n{}", log()));
        connect_v5(&v6, &strict)
            .await
            .unwrap_or_else(|e| panic!("MQTT 5 over [::1]: {e}\n{}", log()));
        connect_v5(&format!("mqtts://127.0.0.1:{port}"), &strict)
            .await
            .unwrap_or_else(|e| panic!("MQTT 5 over 127.0.0.1: {e}\n{}", log()));

        // Same broker, same certificate, but 127.0.0.2 is not one of its IP SANs.
        let other = format!("mqtts://127.0.0.2:{port_other}");
        let e = connect_v4(&other, &strict).await.unwrap_err();
        assert!(
            e.to_lowercase().contains("name") || e.contains("NotValidForName"),
            "expected a name mismatch, got: {e}"
        );
        assert!(connect_v5(&other, &strict).await.is_err());
        // Only an explicit --insecure gets past the name check.
        connect_v4(&other, &publisher_tls(dir.path(), true))
            .await
            .unwrap_or_else(|e| panic!("--insecure: {e}\n{}", log()));
    });
}
