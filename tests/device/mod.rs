//! `otactl device` (the binary): stand-in boards running the firmware crate's OTA task against
//! a real mosquitto, served by `otactl publish` through the TLS broker `otactl certs gen` made,
//! and by the spec's publisher (`tests/e2e/third_party.rs`, not otactl).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::certs::{gen, ok, signed_image, BOARD};
use crate::e2e::third_party::SpecPublisher;
use crate::util::{free_port, lines_of, otactl, output_within, wait_line, Killed, Mosquitto};

/// Longest a device run may take in these tests (the command's own --timeout is shorter).
const LIMIT: Duration = Duration::from_secs(90);

/// The TLS world of `certs gen`: mosquitto with its config, a signed 1.1.0 and `otactl publish`
/// serving it with the publisher's certificate.
struct TlsWorld {
    dir: tempfile::TempDir,
    port: u16,
    key: PathBuf,
    _broker: Mosquitto,
    _publisher: Killed,
    /// The publisher's stdout, drained by a thread while the world lives.
    _lines: std::sync::mpsc::Receiver<String>,
}

impl TlsWorld {
    fn new() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        gen(dir.path(), port, "ecdsa-p256", &["DEVICE-0001"]);
        let broker = Mosquitto::start(&dir.path().join("mosquitto.conf"), port)?;
        let (key, image) = signed_image(dir.path(), "signing.pem", "1.1.0");
        let p = |n: &str| dir.path().join(n);
        let mut publisher = otactl()
            .arg("publish")
            .args([
                "--broker",
                &format!("mqtts://127.0.0.1:{port}"),
                "--board",
                BOARD,
            ])
            .arg("--image")
            .arg(&image)
            .arg("--key")
            .arg(&key)
            .arg("--ca")
            .arg(p("ca.crt"))
            .arg("--cert")
            .arg(p("publisher.crt"))
            .arg("--client-key")
            .arg(p("publisher.key"))
            .arg("--state")
            .arg(p("state.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut publisher);
        let publisher = Killed(publisher);
        wait_line(&lines, "listening", Duration::from_secs(30))
            .expect("the publisher subscribed within 30 s");
        Some(Self {
            dir,
            port,
            key,
            _broker: broker,
            _publisher: publisher,
            _lines: lines,
        })
    }

    /// `otactl device` with the device's certificate and `extra` flags.
    fn device(&self, key: &Path, extra: &[&str]) -> Output {
        let p = |n: &str| self.dir.path().join(n).to_str().unwrap().to_owned();
        let (cert, client_key) = (p("DEVICE-0001.crt"), p("DEVICE-0001.key"));
        let mut args = vec!["--cert", &cert, "--client-key", &client_key];
        args.extend(extra);
        self.device_without_certificate(key, &args)
    }

    /// `otactl device` with the CA, the key and `extra` flags only.
    fn device_without_certificate(&self, key: &Path, extra: &[&str]) -> Output {
        let mut cmd = otactl();
        cmd.current_dir(self.dir.path())
            .arg("device")
            .args(["--broker", &format!("mqtts://127.0.0.1:{}", self.port)])
            .args(["--board", BOARD, "--timeout", "60"])
            .arg("--ca")
            .arg(self.dir.path().join("ca.crt"))
            .arg("--key")
            .arg(key)
            .args(extra)
            .stdin(Stdio::null());
        output_within(&mut cmd, LIMIT)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_updated(o: &Output, n: usize) {
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(&format!("{n} of {n} updated")),
        "stdout:\n{out}\nstderr:\n{err}"
    );
}

#[test]
fn device_updates_through_otactl_publish_over_the_generated_tls_broker() {
    let Some(w) = TlsWorld::new() else { return };
    let o = w.device(&w.key, &[]);
    assert_updated(&o, 1);
    let out = text(&o.stdout);
    for step in [
        "running 1.0.0 on board APP_CY8CPROTO_062S2_43439",
        "connected to 127.0.0.1",
        "asking the publisher for an update",
        "update accepted",
        "download 100%",
        "image verified",
        "updated: image 1.1.0",
    ] {
        assert!(out.contains(step), "no {step:?} in:\n{out}");
    }
}

#[test]
fn five_devices_update_at_once_with_distinct_serials() {
    let Some(w) = TlsWorld::new() else { return };
    let o = w.device(&w.key, &["--count", "5", "--json"]);
    assert_updated_json(&o, 5);
}

/// `--json`: five result objects with distinct serials, all updated, and the summary.
fn assert_updated_json(o: &Output, n: usize) {
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let objects: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let results: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|v| v.get("result").is_some())
        .collect();
    assert_eq!(results.len(), n, "{out}");
    let mut serials: Vec<&str> = results
        .iter()
        .map(|v| {
            assert_eq!(v["result"], "updated", "{v}");
            assert_eq!(v["version"], "1.1.0", "{v}");
            v["serial"].as_str().unwrap()
        })
        .collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), n, "serials not distinct: {serials:?}");
    let summary = objects.last().unwrap();
    assert_eq!(summary["updated"], n, "{summary}");
    assert_eq!(summary["devices"], n, "{summary}");
}

#[test]
fn a_wrong_key_fails_naming_the_key_file() {
    let Some(w) = TlsWorld::new() else { return };
    let other = w.dir.path().join("other.pem");
    ok(&["keygen", "-k", other.to_str().unwrap()]);
    let o = w.device(&other, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(other.to_str().unwrap()) && err.contains("signature does not verify"),
        "stderr:\n{err}"
    );
    assert!(out.contains("0 of 1 updated"), "stdout:\n{out}");
}

#[test]
fn a_broker_that_refuses_the_device_is_a_setup_error_at_once() {
    let Some(w) = TlsWorld::new() else { return };
    let o = w.device_without_certificate(&w.key, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        err.contains("the broker refused the device's client certificate")
            && err.contains("check --cert and --client-key"),
        "stderr:\n{err}"
    );
}

/// A plain mosquitto and the spec's publisher serving a signed 1.1.0 (key in the result).
struct PlainWorld {
    dir: tempfile::TempDir,
    key: PathBuf,
    broker: Mosquitto,
    _publisher: SpecPublisher,
}

impl PlainWorld {
    fn new() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start_plain(dir.path())?;
        let (key, image) = signed_image(dir.path(), "signing.pem", "1.1.0");
        let publisher = SpecPublisher::start(
            broker.port,
            std::fs::read(&image).unwrap(),
            "1.1.0",
            Duration::ZERO,
        );
        Some(Self {
            dir,
            key,
            broker,
            _publisher: publisher,
        })
    }
}

/// `otactl device` on `mqtt://127.0.0.1:PORT` with the key and `extra` flags, in `dir`.
fn plain_device(dir: &Path, port: u16, key: &Path, extra: &[&str]) -> Output {
    let mut cmd = otactl();
    cmd.current_dir(dir)
        .arg("device")
        .args(["--broker", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--board", BOARD])
        .arg("--key")
        .arg(key)
        .args(extra)
        .stdin(Stdio::null());
    output_within(&mut cmd, LIMIT)
}

#[test]
fn device_updates_from_the_spec_publisher() {
    let Some(w) = PlainWorld::new() else { return };
    for flow in ["push", "chunks"] {
        let o = plain_device(w.dir.path(), w.broker.port, &w.key, &["--flow", flow]);
        assert_updated(&o, 1);
    }
}

#[test]
fn no_update_is_a_no_with_the_reason() {
    let Some(w) = PlainWorld::new() else { return };
    let o = plain_device(w.dir.path(), w.broker.port, &w.key, &["--version", "1.1.0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains("no update available") && err.contains("nothing newer than 1.1.0"),
        "stderr:\n{err}"
    );
}

#[test]
fn a_stopped_broker_is_retried_then_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = signed_image(dir.path(), "signing.pem", "1.1.0");
    let port = free_port();
    let o = plain_device(dir.path(), port, &key, &["--timeout", "3"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        out.contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && out.contains("is the broker running?"),
        "stdout:\n{out}"
    );
    assert!(
        err.contains("no verified image within 3 s"),
        "stderr:\n{err}"
    );
}
