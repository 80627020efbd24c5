//! Fleets (issue: a publisher that is safe for a fleet): devices that all send the example's
//! template SerialNumber update one after another and together; only an identified device that
//! reverts is blocked.

use std::sync::Arc;
use std::time::Duration;

use ota_core::protocol::TEMPLATE_SERIAL;
use otactl::publish::Event;

use super::device::{self, DeviceConfig, Flow, Outcome};
use super::fixture::{signed_image, Running, BOARD};
use super::World;
use super::{rt, updated};

/// An image big enough to take many chunks, small enough for fleets of sessions in a test.
fn fleet() -> Vec<u8> {
    signed_image((1, 1, 0), 300_000, 77)
}

fn device(port: u16, serial: &str, tick: u16, flow: Flow) -> DeviceConfig {
    let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), tick);
    d.serial = serial.into();
    d.flow = flow;
    d.data_timeout = Duration::from_secs(90);
    d
}

async fn together(cfgs: Vec<DeviceConfig>, image: &Arc<Vec<u8>>, what: &str) {
    let tasks: Vec<_> = cfgs
        .into_iter()
        .map(|d| tokio::spawn(async move { device::session(&d).await }))
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let o = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("bounded")
            .unwrap();
        updated(&o, image, &format!("{what}: device {i}"));
    }
}

/// 20 devices with the template serial in job mode and 10 in chunk mode, one after another and
/// then all at once, with default flags and a state file: every one updates (before, the first
/// update blocked the version for all the others).
#[test]
fn template_serial_devices_all_update_in_job_and_chunk_mode() {
    let Some(w) = World::new(fleet(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(true)).await;
        for i in 0..20u16 {
            let d = device(port, TEMPLATE_SERIAL, 1000 + i, Flow::Job);
            updated(
                &device::session(&d).await,
                &image,
                &format!("job, one after another: {i}"),
            );
        }
        for i in 0..10u16 {
            let d = device(port, TEMPLATE_SERIAL, 2000 + i, Flow::JobChunks);
            updated(
                &device::session(&d).await,
                &image,
                &format!("chunks, one after another: {i}"),
            );
        }
        let jobs = (0..20u16).map(|i| device(port, TEMPLATE_SERIAL, 3000 + i * 3, Flow::Job));
        together(jobs.collect(), &image, "job, together").await;
        let pulls =
            (0..10u16).map(|i| device(port, TEMPLATE_SERIAL, 4000 + i * 3, Flow::JobChunks));
        together(pulls.collect(), &image, "chunks, together").await;
        let notices = p.events.count(|e| matches!(e, Event::Notice { .. }));
        assert_eq!(
            notices, 1,
            "the publisher says once why revert protection is off"
        );
        p.stop().await;
    });
    let st = super::load_state(&w.state);
    let rec = &st.devices[&format!("{BOARD}/{TEMPLATE_SERIAL}")];
    assert!(rec.shared, "recorded as unidentified");
    assert!(rec.blocked.is_empty(), "never blocked: {:?}", rec.blocked);
}

/// 20 identified devices update together; one of them comes back on its old version (a
/// revert): only that one is blocked, the others and new devices are served normally.
#[test]
fn an_identified_device_that_reverts_is_the_only_one_blocked() {
    let Some(w) = World::new(fleet(), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    rt().block_on(async {
        let p = Running::start(w.config(true)).await;
        let fleet = (0..20u16).map(|i| device(port, &format!("SN-{i:04}"), 100 + i * 3, Flow::Job));
        together(fleet.collect(), &image, "identified fleet").await;
        // SN-0007's bootloader reverted 1.1.0: it asks again on 1.0.0.
        let back = device(port, "SN-0007", 900, Flow::Job);
        assert!(matches!(
            device::session(&back).await,
            Outcome::NoUpdate("invalid_version")
        ));
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Result { device, result, .. } if device.ends_with("/SN-0007") && result == "reverted"),
                    Duration::from_secs(10)
                )
                .await
        );
        // Another device that asks on 1.0.0 (never sent 1.1.0 before) is served.
        let fresh = device(port, "SN-0100", 910, Flow::Job);
        updated(&device::session(&fresh).await, &image, "a new device");
        p.stop().await;
    });
    let st = super::load_state(&w.state);
    let blocked: Vec<&String> = st
        .devices
        .iter()
        .filter(|(_, r)| !r.blocked.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(blocked, vec![&format!("{BOARD}/SN-0007")]);
}
