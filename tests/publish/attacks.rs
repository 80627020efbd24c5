//! What a hostile or buggy device can make the publisher do, measured by a spy subscribed to `#`
//! on the broker: nothing on topics the protocol does not allow, no lost connection, bounded
//! work, no blocked fleet; and a real update completes right after each attack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ota_core::protocol::TEMPLATE_SERIAL;
use otactl::publish::{Event, PublishError, StateError};

use super::device::{self, DeviceConfig, Outcome};
use super::fixture::{signed_image, Attacker, Running, Spy, BOARD};
use super::World;
use super::{rt, updated};
use crate::util::otactl;

const OTHER: &str = "APP_KIT_XMC72_EVK";

/// A signed 100 kB image (small: these tests are about what the publisher does, not speed).
fn small() -> Vec<u8> {
    signed_image((1, 1, 0), 100_000, 5)
}

fn request(kind: &str, serial: &str, topic: &str) -> String {
    format!(
        r#"{{"Message":"{kind}", "Manufacturer": "Infineon", "SerialNumber": "{serial}", "Version": "1.0.0", "UniqueTopicName": "{topic}"}}"#
    )
}

/// A real device's update right after an attack takes normal time.
async fn real_update_still_works(port: u16, image: &[u8], tick: u16) {
    let d = DeviceConfig::new(port, BOARD, (1, 0, 0), tick);
    let t0 = Instant::now();
    let o = tokio::time::timeout(Duration::from_secs(20), device::session(&d))
        .await
        .expect("a real update right after the attack");
    updated(&o, image, "real device after the attack");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
}

/// Reply topics a device may name but the publisher must never publish to: another board's,
/// another prefix's, the broadcast topic, arbitrary topics, characters brokers reject (U+FFFF
/// makes mosquitto drop the publisher), non-decimal or out-of-range session numbers.
#[test]
fn forbidden_reply_topics_get_nothing_and_the_publisher_stays_connected() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(false)).await;
        let spy = Spy::start(port).await;
        let a = Attacker::start(port, "attacker-topics");
        let forbidden = [
            format!("MyUniqueTopic/{OTHER}/OTAImage/17"),
            format!("OtherCompany/{BOARD}/OTAImage/17"),
            format!("MyUniqueTopic/{BOARD}/OTAImage"),
            "victim/device/inbox".to_string(),
            format!("MyUniqueTopic/{BOARD}/OTAImage/17\u{ffff}"),
            format!("MyUniqueTopic/{BOARD}/OTAImage/17\u{fdd0}"),
            format!("MyUniqueTopic/{BOARD}/OTAImage/0017"),
            format!("MyUniqueTopic/{BOARD}/OTAImage/99999"),
        ];
        for t in &forbidden {
            for kind in [
                "Update Availability",
                "Request Update",
                "Request Data Chunk",
            ] {
                a.send(BOARD, request(kind, "SN-EVIL", t)).await;
            }
        }
        a.sync(&p, 1).await;
        let sentinel = format!("MyUniqueTopic/{BOARD}/OTAImage/60001");
        spy.wait_on(|t| t == sentinel, 1, Duration::from_secs(10))
            .await;
        real_update_still_works(port, &image, 500).await;
        let leaked = spy.on(|t| forbidden.iter().any(|f| f == t));
        assert_eq!(leaked, (0, 0), "published to a forbidden topic");
        assert_eq!(
            p.events.count(|e| matches!(e, Event::Disconnected { .. })),
            0,
            "the publisher lost its connection"
        );
        assert!(p.events.count(|e| matches!(e, Event::Warning { .. })) >= forbidden.len());
        p.stop().await;
    });
}

/// A 1 MiB request and a flood of junk: ignored by size, the connection stays up.
#[test]
fn oversized_requests_do_not_cost_the_connection() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(false)).await;
        let a = Attacker::start(port, "attacker-size");
        for _ in 0..3 {
            a.send(BOARD, vec![b'{'; 1 << 20]).await;
        }
        a.sync(&p, 2).await;
        assert!(
            p.events.count(|e| matches!(e, Event::Warning { message, .. } if message.contains("1048576-byte message ignored"))) == 3
        );
        real_update_still_works(port, &image, 600).await;
        assert_eq!(
            p.events.count(|e| matches!(e, Event::Disconnected { .. })),
            0
        );
        p.stop().await;
    });
}

/// 500 "Request Update"s for one topic cost one stream (before: one stream each, ≥ 70 MB a
/// minute); the transfer still completes for the device listening there.
#[test]
fn five_hundred_requests_cost_one_stream() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(false)).await;
        let spy = Spy::start(port).await;
        let a = Attacker::start(port, "attacker-flood");
        let target = format!("MyUniqueTopic/{BOARD}/OTAImage/4242");
        for _ in 0..500 {
            a.send(BOARD, request("Request Update", "SN-FLOOD", &target))
                .await;
        }
        a.sync(&p, 3).await;
        real_update_still_works(port, &image, 700).await;
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Sent { topic, .. } if *topic == target),
                    Duration::from_secs(20)
                )
                .await
        );
        let chunks = image.len().div_ceil(4096);
        let (n, bytes) = spy
            .wait_on(|t| t == target, chunks, Duration::from_secs(10))
            .await;
        assert_eq!(
            n, chunks,
            "one stream of {chunks} chunks, not one per request"
        );
        assert_eq!(bytes, image.len() + 32 * chunks);
        p.stop().await;
    });
}

/// Forged "Failure" results with the template serial: for a topic nobody is served on they
/// are ignored, for a real session they are recorded; neither blocks the board's devices.
#[test]
fn forged_failures_do_not_block_a_board() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(true)).await;
        let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), 800);
        d.serial = TEMPLATE_SERIAL.into();
        updated(&device::session(&d).await, &image, "first template device");
        let a = Attacker::start(port, "attacker-forge");
        for t in [
            format!("MyUniqueTopic/{BOARD}/OTAImage/800"),
            format!("MyUniqueTopic/{BOARD}/OTAImage/12345"),
        ] {
            let doc = format!(
                r#"{{"Message":"Failure", "SerialNumber": "{TEMPLATE_SERIAL}", "UniqueTopicName": "{t}"}}"#
            );
            a.send(BOARD, doc).await;
        }
        a.sync(&p, 4).await;
        assert_eq!(
            p.events.count(|e| matches!(e, Event::Warning { message, .. } if message.contains("not serving"))),
            1,
            "the result for a topic without a session is ignored"
        );
        assert!(
            p.events.count(|e| matches!(e, Event::Result { result, .. } if result == "failure")) == 1,
            "the result on a real session is recorded"
        );
        for i in 0..3u16 {
            let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), 810 + i);
            d.serial = TEMPLATE_SERIAL.into();
            updated(&device::session(&d).await, &image, "template device after the forgery");
        }
        p.stop().await;
    });
    let st = super::load_state(&w.state);
    assert!(st.devices.values().all(|r| r.blocked.is_empty()));
}

/// Made-up serials beyond the record cap evict unidentified and unblocked records first: an
/// identified device's blocked version survives.
#[test]
fn made_up_serials_do_not_evict_a_blocked_device() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let mut cfg = w.config(true);
        cfg.max_devices = 200;
        let p = Running::start(cfg).await;
        let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), 900);
        d.serial = "SN-REVERTS".into();
        updated(
            &device::session(&d).await,
            &image,
            "device before its revert",
        );
        d.tick = 901;
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate("invalid_version")
        ));
        let a = Attacker::start(port, "attacker-serials");
        for i in 0..1000u32 {
            let t = format!("MyUniqueTopic/{BOARD}/OTAImage/{}", 10_000 + i);
            a.send(
                BOARD,
                request("Update Availability", &format!("FAKE-{i}"), &t),
            )
            .await;
        }
        assert!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::Offered { device, .. } if device.contains("FAKE-")),
                    1000,
                    Duration::from_secs(30)
                )
                .await
                >= 1000
        );
        d.tick = 902;
        assert!(
            matches!(
                device::session(&d).await,
                Outcome::NoUpdate("invalid_version")
            ),
            "still blocked"
        );
        real_update_still_works(port, &image, 903).await;
        p.stop().await;
    });
    let st = super::load_state(&w.state);
    assert!(st.devices.len() <= 200, "{} records", st.devices.len());
    assert!(!st.devices[&format!("{BOARD}/SN-REVERTS")]
        .blocked
        .is_empty());
}

/// One publisher per state database: a second one is refused with the holder named (reading
/// works meanwhile; unblocking too, see tests/publish/store.rs); the running publisher keeps
/// serving.
#[test]
fn a_second_owner_of_the_state_file_is_refused() {
    let Some(w) = World::new(small(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(true)).await;
        let second = w.config(true);
        let r = otactl::publish::run(second, async {}, Arc::new(|_| {})).await;
        match r {
            Err(PublishError::State(StateError::Locked { holder, .. })) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("expected a lock error, got {other:?}"),
        }
        let out = otactl()
            .args(["status", "--state"])
            .arg(&w.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reading the state works while a publisher runs"
        );
        real_update_still_works(port, &image, 950).await;
        p.stop().await;
    });
}

/// Bytes after the signed image (padding, a trailer, appended data) are not served.
#[test]
fn bytes_after_the_signed_image_are_not_served() {
    let Some(w) = World::new(small(), &[0xA5; 10_000]) else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(false)).await;
        let spy = Spy::start(port).await;
        real_update_still_works(port, &image, 990).await;
        let t = format!("MyUniqueTopic/{BOARD}/OTAImage/990");
        let chunks = image.len().div_ceil(4096);
        let seen = spy
            .wait_on(|x| x == t, chunks + 1, Duration::from_secs(10))
            .await;
        assert_eq!(seen, (chunks + 1, image.len() + 32 * chunks + job_len()));
        p.stop().await;
    });
}

/// The size of the job document the publisher sent (from its template, for the spy's sum).
fn job_len() -> usize {
    otactl::publish::JobTemplate::default()
        .render(
            BOARD,
            ota_core::protocol::AppVersion::new(1, 1, 0),
            &format!("MyUniqueTopic/{BOARD}/OTAImage/990"),
        )
        .unwrap()
        .len()
}
