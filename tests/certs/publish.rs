//! `otactl publish --broker mqtts://…` through the generated broker config: the publisher
//! verifies the broker, authenticates with its certificate, and the ACL lets it answer a device.

use std::process::Stdio;
use std::time::Duration;

use otactl::mqtt::{self, BrokerUrl, TlsSettings};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::time::{timeout_at, Instant};

use super::{gen, path, signed_image, BOARD, PREFIX};
use crate::util::{free_port, otactl, Killed, Mosquitto};

/// The device `dev-a` asks for an update until the publisher answers on its unique topic.
async fn ask_until_answered(dir: &std::path::Path, port: u16) -> String {
    let url = BrokerUrl::parse(&format!("mqtts://127.0.0.1:{port}")).unwrap();
    let tls = TlsSettings {
        ca: Some(path(dir, "ca.crt")),
        cert: Some(path(dir, "dev-a.crt")),
        key: Some(path(dir, "dev-a.key")),
        server_name: None,
        insecure: false,
    };
    let (c, mut events) = AsyncClient::new(
        mqtt::options_v4(&url, "CY_IOT_DEVICE777", &tls).unwrap(),
        16,
    );
    let unique = format!("{PREFIX}/{BOARD}/OTAImage/777");
    c.subscribe(&unique, QoS::AtLeastOnce).await.unwrap();
    let request = format!(
        "{{\"Message\":\"Update Availability\", \"Manufacturer\": \"Infineon\", \"ManufacturerID\": \"ABCD123\", \"ProductID\": \"EFGH456\", \"SerialNumber\": \"dev-a\", \"BoardName\": \"CY8CPROTO_062_4343W\", \"Version\": \"1.0.0\", \"UniqueTopicName\": \"{unique}\"}}"
    );
    let topic = format!("{PREFIX}/{BOARD}/publish_notify");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next_ask = Instant::now();
    loop {
        if Instant::now() >= next_ask {
            // The publisher may not have subscribed yet: ask again every second (bounded).
            c.publish(&topic, QoS::AtLeastOnce, false, request.clone())
                .await
                .unwrap();
            next_ask = Instant::now() + Duration::from_secs(1);
        }
        let ev = timeout_at(next_ask.min(deadline), events.poll()).await;
        assert!(
            Instant::now() < deadline,
            "no answer from the publisher within 30 s"
        );
        if let Ok(ev) = ev {
            if let Event::Incoming(Packet::Publish(p)) = ev.expect("device connection") {
                assert_eq!(p.topic, unique);
                return String::from_utf8_lossy(&p.payload).into_owned();
            }
        }
    }
}

fn serve(share_group: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    gen(dir.path(), port, "ecdsa-p256", &["dev-a"]);
    let Some(_broker) = Mosquitto::start(&dir.path().join("mosquitto.conf"), port) else {
        return;
    };
    let (key, signed) = signed_image(dir.path(), "signing.pem", "1.1.0");
    let (k, s) = (key.to_str().unwrap(), signed.to_str().unwrap());
    let mut cmd = otactl();
    cmd.arg("publish")
        .args([
            "--broker",
            &format!("mqtts://127.0.0.1:{port}"),
            "--board",
            BOARD,
        ])
        .args(["--image", s, "--key", k])
        .arg("--ca")
        .arg(path(dir.path(), "ca.crt"))
        .arg("--cert")
        .arg(path(dir.path(), "publisher.crt"))
        .arg("--client-key")
        .arg(path(dir.path(), "publisher.key"))
        .arg("--state")
        .arg(path(dir.path(), "state.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    if let Some(g) = share_group {
        cmd.args(["--share-group", g]);
    }
    let _publisher = Killed(cmd.spawn().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(ask_until_answered(dir.path(), port));
    assert!(answer.contains("\"Update Available\""), "{answer}");
}

#[test]
fn publish_serves_over_mutual_tls_with_the_generated_acl() {
    serve(None);
}

#[test]
fn publish_share_group_mqtt5_works_with_the_generated_acl() {
    serve(Some("otactl"));
}
