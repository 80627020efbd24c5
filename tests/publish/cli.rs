//! `otactl job`, `otactl publish` start-up checks and `--embedded-broker`.

use std::time::Duration;

use super::device::{self, DeviceConfig};
use super::fixture::{signed_image, write_image, write_key, BOARD};
use super::{rt, updated};
use crate::util::{closed_pipe, free_port, otactl, wait_for_port};

/// `otactl job` prints the example's fields with the image header's version.
#[test]
fn job_prints_the_document_for_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("app.bin");
    std::fs::write(&img, signed_image((2, 3, 4), 5000, 1)).unwrap();
    let key = write_key(dir.path());
    let out = otactl()
        .args(["job", "--board", BOARD, "--image"])
        .arg(&img)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        r#"{"Message": "Update Available", "Manufacturer": "Infineon", "ManufacturerId": "ABCD123", "Product": "EFGH456", "SerialNumber": "ABC213450001", "Board": "APP_CY8CPROTO_062S2_43439", "Version": "2.3.4", "Connection": "MQTT", "Broker": "", "Port": "", "UniqueTopicName": "replace"}"#
    );
}

/// An image that does not verify with `--key` stops publish before it connects.
#[test]
fn publish_refuses_an_image_that_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = signed_image((1, 1, 0), 5000, 2);
    img[0x500] ^= 1;
    let path = dir.path().join("bad.bin");
    std::fs::write(&path, img).unwrap();
    let key = write_key(dir.path());
    let out = otactl()
        .args([
            "publish",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--board",
            BOARD,
            "--image",
        ])
        .arg(&path)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.bin") && err.contains("does not verify"),
        "{err}"
    );
    let out = otactl()
        .args([
            "publish",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--board",
            BOARD,
            "--image",
            "x.bin",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--key"),
        "missing --key must be named"
    );
}

/// `--embedded-broker`: no mosquitto needed; a device updates through the in-process broker.
#[test]
fn embedded_broker_serves_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let key = write_key(dir.path());
    let port = free_port();
    let mut child = otactl()
        .args([
            "publish",
            "--embedded-broker",
            &format!("127.0.0.1:{port}"),
            "--board",
            BOARD,
            "--image",
        ])
        .arg(&path)
        .arg("--key")
        .arg(&key)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        // Nobody reads its output (`otactl publish | tee log` and tee died): it keeps serving.
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    assert!(
        wait_for_port(port, Duration::from_secs(15)),
        "embedded broker did not listen"
    );
    let o = rt().block_on(async {
        let d = DeviceConfig::new(port, BOARD, (1, 0, 0), 700);
        device::until_updated(d, Duration::from_secs(60)).await
    });
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    updated(&o, &image, "device on the embedded broker");
    assert!(
        still_running,
        "the publisher exited when its output was not read"
    );
}
