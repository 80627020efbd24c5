//! `otactl status --watch`: a read-only view that follows a running publisher's state file.

use std::process::Stdio;
use std::time::Duration;

use super::otactl_in;
use super::precedence::signed_image;
use crate::publish::device::{self, DeviceConfig, Outcome};
use crate::util::{lines_of, wait_line, Mosquitto};

const BOARD: &str = "APP_CY8CPROTO_062S2_43439";

/// Started before the publisher, the watch waits for the state file, then shows the device that
/// asked (with "last seen") and the publisher that holds the file; it never takes the lock.
#[test]
fn watch_follows_a_running_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let Some(broker) = Mosquitto::start_plain(d) else {
        return;
    };
    let mut watch = otactl_in(d)
        .args(["status", "--watch", "1", "--state", "s.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut watch);
    let limit = Duration::from_secs(20);
    let waiting = wait_line(&lines, "waiting for s.db", limit);
    let mut publisher = otactl_in(d)
        .args([
            "publish",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", broker.port),
        ])
        .args(["--board", BOARD, "--image", "app.signed", "--key", "k.pem"])
        .args(["--state", "s.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 4242);
    let outcome = rt.block_on(device::until_updated(cfg, Duration::from_secs(60)));
    let in_use = wait_line(&lines, "in use by otactl publish", limit);
    let row = wait_line(&lines, &format!("{BOARD}/SN04242"), limit);
    let _ = publisher.kill();
    let _ = publisher.wait();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(waiting.is_some(), "no 'waiting for' frame");
    assert!(
        matches!(outcome, Outcome::Updated { .. }),
        "device not updated"
    );
    assert!(
        in_use.is_some(),
        "the publisher holding the file is not shown"
    );
    let row = row.expect("the device's row");
    assert!(row.contains(" s ago") && row.contains("1.0.0"), "{row}");
}
