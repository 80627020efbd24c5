//! Mutual TLS and the ACL against a real mosquitto running the generated mosquitto.conf.

use std::path::Path;
use std::time::Duration;

use otactl::mqtt::{self, BrokerUrl, TlsSettings};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::time::timeout;

use super::{gen, path, BOARD, PREFIX};
use crate::util::{free_port, Mosquitto};

const LIMIT: Duration = Duration::from_secs(10);

fn tls(dir: &Path, client: Option<&str>) -> TlsSettings {
    TlsSettings {
        ca: Some(path(dir, "ca.crt")),
        cert: client.map(|c| path(dir, &format!("{c}.crt"))),
        key: client.map(|c| path(dir, &format!("{c}.key"))),
        server_name: None,
        insecure: false,
    }
}

/// Connects (MQTT 3.1.1 over TLS, options from `otactl::mqtt`) and waits for the CONNACK.
async fn connect(
    url: &str,
    id: &str,
    tls: &TlsSettings,
) -> Result<(AsyncClient, EventLoop), String> {
    let url = BrokerUrl::parse(url).unwrap();
    let mut opts = mqtt::options_v4(&url, id, tls).map_err(|e| format!("{e:#}"))?;
    // Like the device: mosquitto refuses a CONNECT whose will the ACL does not allow.
    opts.set_last_will(rumqttc::LastWill::new(
        "cy_ota_device/will",
        "MQTT demo unexpectedly disconnected.",
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut events) = AsyncClient::new(opts, 16);
    loop {
        match timeout(LIMIT, events.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => {
                return if a.code == rumqttc::ConnectReturnCode::Success {
                    Ok((client, events))
                } else {
                    Err(format!("{:?}", a.code))
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// Polls until `want` matches an incoming packet; returns the PUBLISHes seen on the way.
async fn until(events: &mut EventLoop, want: impl Fn(&Packet) -> bool) -> Vec<rumqttc::Publish> {
    let mut seen = Vec::new();
    loop {
        let ev = timeout(LIMIT, events.poll())
            .await
            .expect("timed out")
            .expect("connection");
        if let Event::Incoming(p) = ev {
            if want(&p) {
                if let Packet::Publish(p) = p {
                    seen.push(p);
                }
                return seen;
            }
            if let Packet::Publish(p) = p {
                seen.push(p);
            }
        }
    }
}

async fn subscribe(c: &AsyncClient, events: &mut EventLoop, topic: &str) {
    c.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let acks = until(events, |p| matches!(p, Packet::SubAck(_))).await;
    assert!(acks.is_empty());
}

async fn publish(c: &AsyncClient, events: &mut EventLoop, topic: &str, payload: &str) {
    c.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .unwrap();
    until(events, |p| matches!(p, Packet::PubAck(_))).await;
}

/// Everything the "Done when" list asks of the broker, for one key type.
fn mutual_tls_and_acl(key_type: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    gen(dir.path(), port, key_type, &["dev-a", "dev-b"]);
    let other = tempfile::tempdir().unwrap();
    gen(other.path(), free_port(), key_type, &["dev-a"]);
    let Some(broker) = Mosquitto::start(&dir.path().join("mosquitto.conf"), port) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("mqtts://127.0.0.1:{port}");
    let log = || broker.log_text();
    rt.block_on(async {
        // Verified by the IP SAN 127.0.0.1, no insecure option anywhere.
        let (p, pe) = connect(&url, "pub", &tls(dir.path(), Some("publisher")))
            .await
            .unwrap_or_else(|e| panic!("publisher: {e}\n{}", log()));
        // ... and by the DNS SAN.
        let by_name = format!("mqtts://localhost:{port}");
        connect(&by_name, "byname", &tls(dir.path(), Some("publisher")))
            .await
            .unwrap_or_else(|e| panic!("by DNS name: {e}\n{}", log()));

        let e = connect(&url, "stranger", &tls(other.path(), Some("dev-a"))).await;
        assert!(
            e.is_err(),
            "a client certificate from another CA was accepted"
        );
        let mut foreign_ca = tls(dir.path(), Some("dev-a"));
        foreign_ca.ca = Some(path(other.path(), "ca.crt"));
        let e = connect(&url, "wrong-ca", &foreign_ca).await;
        assert!(
            e.is_err(),
            "a broker certificate from another CA was accepted"
        );
        let e = connect(&url, "nocert", &tls(dir.path(), None)).await;
        assert!(e.is_err(), "a client without a certificate was accepted");

        devices_stay_in_their_lane(&url, dir.path(), (p, pe), &log).await;
    });
}

/// A device may publish on its request topic; its publish on another device's reply topic is
/// not delivered (the publisher's is).
async fn devices_stay_in_their_lane(
    url: &str,
    dir: &Path,
    (p, mut pe): (AsyncClient, EventLoop),
    log: &dyn Fn() -> String,
) {
    let (a, mut ae) = connect(url, "CY_IOT_DEVICE1", &tls(dir, Some("dev-a")))
        .await
        .unwrap_or_else(|e| panic!("dev-a: {e}\n{}", log()));
    let (b, mut be) = connect(url, "CY_IOT_DEVICE2", &tls(dir, Some("dev-b")))
        .await
        .unwrap_or_else(|e| panic!("dev-b: {e}\n{}", log()));

    // A device publishes on its request topic; the publisher gets it.
    let request = format!("{PREFIX}/{BOARD}/publish_notify");
    subscribe(&p, &mut pe, &request).await;
    publish(&a, &mut ae, &request, "from dev-a").await;
    let got = until(&mut pe, |p| matches!(p, Packet::Publish(_))).await;
    assert_eq!(
        (got[0].topic.as_str(), &got[0].payload[..]),
        (request.as_str(), &b"from dev-a"[..])
    );

    // dev-a's publish on dev-b's reply topic is dropped; the publisher's reply arrives.
    let reply = format!("{PREFIX}/{BOARD}/OTAImage/4242");
    subscribe(&b, &mut be, &reply).await;
    publish(&a, &mut ae, &reply, "forged").await;
    publish(&p, &mut pe, &reply, "genuine").await;
    let got = until(&mut be, |p| matches!(p, Packet::Publish(_))).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        &got[0].payload[..],
        b"genuine",
        "a device's reply-topic publish was delivered"
    );
}

#[test]
fn ecdsa_material_works_with_mosquitto() {
    mutual_tls_and_acl("ecdsa-p256");
}

#[test]
fn rsa_material_works_with_mosquitto() {
    mutual_tls_and_acl("rsa2048");
}

#[test]
fn insecure_connects_without_a_ca_but_still_needs_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    gen(dir.path(), port, "ecdsa-p256", &[]);
    let Some(_broker) = Mosquitto::start(&dir.path().join("mosquitto.conf"), port) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut t = tls(dir.path(), Some("publisher"));
        t.ca = None;
        t.insecure = true;
        // No CA to verify against: only --insecure lets this through.
        let url = format!("mqtts://127.0.0.1:{port}");
        connect(&url, "insecure", &t).await.unwrap();
        t.cert = None;
        t.key = None;
        assert!(connect(&url, "insecure-nocert", &t).await.is_err());
        let mut strict = tls(dir.path(), Some("publisher"));
        strict.ca = Some(path(dir.path(), "publisher.crt"));
        assert!(connect(&url, "strict", &strict).await.is_err());
    });
}
