//! Malformed input, broker restarts, blocklist persistence, share-group failover.

use std::time::Duration;

use otactl::publish::Event;
use rumqttc::{AsyncClient, MqttOptions, QoS};

use super::device::{self, DeviceConfig, Flow, Outcome};
use super::fixture::{config, served, write_image, write_key, Running, BOARD};
use super::{rt, updated};
use crate::util::{lines_of, otactl, wait_line, Mosquitto};

const REQ: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify";

/// Every input of issue item 8, each expecting one warning (substring).
fn malformed() -> Vec<(Vec<u8>, &'static str)> {
    let t = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/999";
    vec![
        (b"{\"Message\": \"Request Update\", ".to_vec(), "malformed JSON"),
        (b"".to_vec(), "malformed JSON"),
        (vec![0xff, 0xfe, b'{'], "malformed JSON"),
        (b"{\"Message\": \"Request Update\", \"Version\": \"1.0.0\"}".to_vec(), "UniqueTopicName"),
        (b"{\"Message\": \"Update Availability\", \"UniqueTopicName\": \"a/+/b\"}".to_vec(), "UniqueTopicName"),
        (b"{\"Message\": \"Request Update\", \"UniqueTopicName\": \"a/#\"}".to_vec(), "UniqueTopicName"),
        (format!("{{\"Message\": \"Request Data Chunk\", \"UniqueTopicName\": \"{t}\", \"Offset\": \"99999999\", \"Size\": \"4096\"}}").into_bytes(), "past the end"),
        (format!("{{\"Message\": \"Request Data Chunk\", \"UniqueTopicName\": \"{t}\", \"Offset\": \"0\", \"Size\": \"1000000000\"}}").into_bytes(), "too large"),
        (b"{\"Message\": \"Make Coffee\", \"UniqueTopicName\": \"x/y\"}".to_vec(), "unknown"),
        (vec![b' '; 20_000], "limit"),
    ]
}

/// Each malformed input arrives while another device downloads: one warning each, and the
/// download (and a later one) still completes.
#[test]
fn malformed_inputs_are_warned_about_while_a_device_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 300);
        d.flow = Flow::JobChunks;
        let dl = tokio::spawn(async move { device::session(&d).await });
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Started { .. }),
                    Duration::from_secs(10)
                )
                .await
        );
        let mut o = MqttOptions::new("attacker", "127.0.0.1", broker.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (c, mut el) = AsyncClient::new(o, 64);
        let pump = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("attacker: {e}");
                        break;
                    }
                }
            }
        });
        let inputs = malformed();
        for (payload, _) in &inputs {
            c.publish(REQ, QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
        let o = tokio::time::timeout(Duration::from_secs(60), dl)
            .await
            .expect("bounded")
            .unwrap();
        updated(&o, &image, "device downloading during the attack");
        for (payload, needle) in &inputs {
            let ok = p
                .events
                .wait_for(
                    |e| matches!(e, Event::Warning { message, .. } if message.contains(needle)),
                    Duration::from_secs(10),
                )
                .await;
            assert!(
                ok,
                "no warning containing {needle:?} for {:?}",
                String::from_utf8_lossy(&payload[..payload.len().min(60)])
            );
        }
        let warnings = p.events.count(|e| matches!(e, Event::Warning { .. }));
        assert!(
            warnings >= inputs.len(),
            "{warnings} warnings for {} inputs",
            inputs.len()
        );
        let after = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 310);
        updated(
            &device::session(&after).await,
            &image,
            "device after the attack",
        );
        pump.abort();
        p.stop().await;
    });
}

/// The broker is killed and restarted mid-transfer: the publisher reconnects by itself and the
/// device's next session completes.
#[test]
fn broker_restart_mid_transfer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 400);
        d.flow = Flow::JobChunks;
        d.data_timeout = Duration::from_secs(3);
        let dl = tokio::spawn(device::until_updated(d, Duration::from_secs(90)));
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Progress { bytes, .. } if *bytes > 100_000),
                    Duration::from_secs(20)
                )
                .await
        );
        tokio::task::block_in_place(|| broker.restart());
        let o = tokio::time::timeout(Duration::from_secs(100), dl)
            .await
            .expect("bounded")
            .unwrap();
        updated(&o, &image, "device after broker restart");
        assert!(p.events.count(|e| matches!(e, Event::Disconnected { .. })) >= 1);
        assert!(p.events.count(|e| matches!(e, Event::Connected { .. })) >= 2);
        p.stop().await;
    });
}

/// `block_after = 2`: the first report on the old version after a full send is `not_installed`
/// and the version is offered again; the second blocks it.
#[test]
fn block_after_two_offers_a_version_again_after_one_report_on_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let mut cfg = config(broker.port, vec![served(BOARD, &path)]);
    cfg.block_after = 2;
    let d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 500);
    rt().block_on(async {
        let p = Running::start(cfg).await;
        updated(&device::session(&d).await, &image, "first download");
        // Back on 1.0.0 (a lost download or a revert): offered and sent again, not blocked.
        updated(&device::session(&d).await, &image, "offered again");
        // Back on 1.0.0 a second time: now it counts as a revert.
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate("invalid_version")
        ));
        let results = p
            .events
            .wait_count(
                |e| matches!(e, Event::Result { result, .. } if result == "reverted"),
                1,
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(results, 1);
        assert_eq!(
            p.events
                .count(|e| matches!(e, Event::Result { result, .. } if result == "not_installed")),
            1
        );
        p.stop().await;
    });
}

/// A device that comes back on its old version after being sent X is not offered X again,
/// also after a publisher restart, until the operator unblocks it.
#[test]
fn blocklist_survives_a_publisher_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let state = dir.path().join("state.json");
    let cfg = || {
        let mut c = config(broker.port, vec![served(BOARD, &path)]);
        c.state_file = Some(state.clone());
        c
    };
    let d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 500);
    let device_key = format!("{BOARD}/{}", d.serial);
    rt().block_on(async {
        let p = Running::start(cfg()).await;
        updated(&device::session(&d).await, &image, "first download");
        // MCUboot reverted the test swap: the device asks again, still on 1.0.0.
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate("invalid_version")
        ));
        // The device heard back only once the state database held the revert.
        let saved = super::load_state(&state);
        let last = saved.devices[&device_key].last_result.as_ref().unwrap();
        assert_eq!(last.result, "reverted", "{saved:?}");
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::Result { result, .. } if result == "reverted"),
                    1,
                    Duration::from_secs(10)
                )
                .await,
            1
        );
        p.stop().await;

        let p = Running::start(cfg()).await;
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate("invalid_version")
        ));
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::NoUpdate { reason, .. } if reason == "blocked"),
                    1,
                    Duration::from_secs(10)
                )
                .await,
            1
        );
        p.stop().await;
    });
    let out = otactl()
        .args(["status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&device_key) && text.contains("reverted 1.1.0"),
        "{text}"
    );
    let out = otactl()
        .args(["status", "--state"])
        .arg(&state)
        .args(["--unblock", &device_key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt().block_on(async {
        let p = Running::start(cfg()).await;
        updated(&device::session(&d).await, &image, "after unblock");
        p.stop().await;
    });
}

/// Starts `otactl publish` in a share group; returns the child.
fn spawn_publisher(
    dir: &std::path::Path,
    port: u16,
    n: u32,
    image: &std::path::Path,
    key: &std::path::Path,
) -> std::process::Child {
    otactl()
        .args([
            "publish",
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--board",
            BOARD,
            "--image",
        ])
        .arg(image)
        .arg("--key")
        .arg(key)
        .arg("--state")
        .arg(dir.join(format!("state-{n}.json")))
        .args([
            "--share-group",
            "otactl",
            "--json",
            "--client-id",
            &format!("pub-{n}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Two publishers in one MQTT 5 share group; one is killed mid-update; the update completes.
#[test]
fn share_group_survives_losing_a_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let key = write_key(dir.path());
    let mut a = spawn_publisher(dir.path(), broker.port, 1, &path, &key);
    let mut b = spawn_publisher(dir.path(), broker.port, 2, &path, &key);
    let (la, lb) = (lines_of(&mut a), lines_of(&mut b));
    assert!(
        wait_line(&la, "\"connected\"", Duration::from_secs(15)).is_some(),
        "publisher 1 did not subscribe"
    );
    assert!(
        wait_line(&lb, "\"connected\"", Duration::from_secs(15)).is_some(),
        "publisher 2 did not subscribe"
    );
    rt().block_on(async {
        let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 600);
        d.flow = Flow::JobChunks;
        d.data_timeout = Duration::from_secs(3);
        let dl = tokio::spawn(device::until_updated(d, Duration::from_secs(60)));
        let la_started = tokio::task::block_in_place(|| {
            wait_line(&la, "\"progress\"", Duration::from_secs(20)).is_some()
        });
        assert!(la_started, "publisher 1 served nothing");
        a.kill().unwrap();
        a.wait().unwrap();
        let o = tokio::time::timeout(Duration::from_secs(70), dl)
            .await
            .expect("bounded")
            .unwrap();
        updated(&o, &image, "device after losing a publisher");
    });
    let _ = b.kill();
    let _ = b.wait();
}

/// A device that stops reading and one that vanishes mid-request do not stall another device.
#[test]
fn slow_and_vanished_devices_do_not_stall_others() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let req = |t: &str| {
            format!("{{\"Message\":\"Request Update\", \"SerialNumber\": \"{t}\", \"Version\": \"1.0.0\", \"UniqueTopicName\": \"MyUniqueTopic/{BOARD}/OTAImage/{t}\"}}")
        };
        // Slow: subscribes, asks, then never reads again (its socket fills up).
        let (slow, mut sel) = AsyncClient::new(MqttOptions::new("slow-device", "127.0.0.1", broker.port), 64);
        slow.subscribe(format!("MyUniqueTopic/{BOARD}/OTAImage/801"), QoS::AtLeastOnce).await.unwrap();
        slow.publish(REQ, QoS::AtLeastOnce, false, req("801")).await.unwrap();
        for _ in 0..6 {
            let _ = tokio::time::timeout(Duration::from_secs(2), sel.poll()).await;
        }
        // Vanished: asks and disconnects at once.
        let (gone, mut gel) = AsyncClient::new(MqttOptions::new("gone-device", "127.0.0.1", broker.port), 64);
        gone.publish(REQ, QoS::AtLeastOnce, false, req("802")).await.unwrap();
        gone.disconnect().await.unwrap();
        while gel.poll().await.is_ok() {}
        let d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 803);
        let o = tokio::time::timeout(Duration::from_secs(60), device::session(&d)).await.expect("bounded");
        updated(&o, &image, "device next to a slow and a vanished one");
        drop(sel);
        p.stop().await;
    });
}

/// Push mode: the broker restarts while several whole-image pushes are in flight; every device
/// still completes (no false "reverted" for a push cut by the restart).
#[test]
fn broker_restart_during_pushes_does_not_block_devices() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let image = std::sync::Arc::new(image);
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let mut tasks = Vec::new();
        for i in 0..8u16 {
            let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 1500 + i * 10);
            d.data_timeout = Duration::from_secs(3);
            tasks.push(tokio::spawn(device::until_updated(
                d,
                Duration::from_secs(90),
            )));
        }
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Progress { .. }),
                    Duration::from_secs(20)
                )
                .await
        );
        tokio::task::block_in_place(|| broker.restart());
        for (i, t) in tasks.into_iter().enumerate() {
            let o = tokio::time::timeout(Duration::from_secs(100), t)
                .await
                .expect("bounded")
                .unwrap();
            updated(&o, &image, &format!("push device {i} after broker restart"));
        }
        assert_eq!(
            p.events
                .count(|e| matches!(e, Event::Result { result, .. } if result == "reverted")),
            0
        );
        p.stop().await;
    });
}
