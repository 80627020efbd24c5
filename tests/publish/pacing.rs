//! Broker limits: a push never floods a stock mosquitto's per-client queue.

use std::time::Duration;

use super::device::{self, DeviceConfig};
use super::fixture::{config, served, signed_image, Running, BOARD};
use super::{rt, updated};
use crate::util::Mosquitto;

/// A 6 MB image (1,466 chunks) pushed to a device that reads about 1 MB/s, through mosquitto
/// with Debian's defaults (at most 1000 messages queued per client): with default flags the
/// publisher sends half the queue at once and paces the rest, so nothing is dropped and the
/// device gets every byte (before: 4.2 of 6 MB, "Outgoing messages are being dropped").
#[test]
fn a_6_mb_image_reaches_a_slow_device_through_stock_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_stock(dir.path()) else {
        return;
    };
    let image = signed_image((1, 1, 0), 6_000_000, 61);
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &image).unwrap();
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 4321);
        d.read_rate = Some(1 << 20);
        d.data_timeout = Duration::from_secs(120);
        let o = tokio::time::timeout(Duration::from_secs(150), device::session(&d))
            .await
            .expect("bounded");
        updated(&o, &image, "slow device, 6 MB");
        p.stop().await;
    });
    let log = broker.log_text();
    assert!(
        !log.contains("dropped"),
        "mosquitto dropped messages:\n{log}"
    );
}
