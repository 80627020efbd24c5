//! `otactl job`, `otactl publish` start-up checks and `--embedded-broker`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use otactl::publish::ServedImage;

use super::device::{self, DeviceConfig};
use super::fixture::{public_key, signed_image, write_image, write_key, BOARD};
use super::{rt, updated};
use crate::util::{closed_pipe, free_port, lines_of, otactl, wait_for_port, wait_line, Mosquitto};

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

/// Runs `otactl sign` on `input` with the PSoC 6 header options, slot 1 MiB at 0x18000000.
fn sign(dir: &Path, key: &Path, input: &Path, out: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(out);
    let o = otactl()
        .args([
            "sign",
            "-v",
            "1.1.0",
            "-H",
            "0x400",
            "--pad-header",
            "--align",
            "8",
        ])
        .args(["-S", "0x100000", "-x", "0x18000000", "-k"])
        .arg(key)
        .args(extra)
        .arg(input)
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

/// The signed `.hex` that `otactl sign` writes covers the image from its header at the slot
/// address (and, with --pad, the trailer records); `publish` and `job` take it and serve
/// exactly the signed image of the `.bin` sign writes for the same input (not the padding).
#[test]
fn publish_and_job_accept_the_signed_hex_that_sign_writes() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path());
    let program = dir.path().join("app.unsigned.bin");
    std::fs::write(&program, &signed_image((0, 0, 0), 30_000, 9)[0x400..]).unwrap();
    for extra in [&[][..], &["--pad"][..]] {
        let hex = sign(dir.path(), &key, &program, "app.hex", extra);
        let bin = std::fs::read(sign(dir.path(), &key, &program, "app.bin", extra)).unwrap();
        let (base, data) = otactl::assemble::hex::parse(&std::fs::read(&hex).unwrap()).unwrap();
        assert_eq!(
            base, 0x1800_0000,
            "{extra:?}: the HEX starts at the image header"
        );
        assert!(data == bin, "{extra:?}: HEX bytes differ from the .bin");
        let served = ServedImage::load(BOARD, &hex, &[public_key()]).unwrap();
        // Exactly the signed image is served: with --pad, the trailer after the TLVs is not.
        let end = served.bytes.len();
        assert!(
            served.bytes[..] == bin[..end],
            "{extra:?}: served bytes differ"
        );
        assert_eq!(served.trailing, bin.len() - end, "{extra:?}");
        assert_eq!(extra.is_empty(), served.trailing == 0, "{extra:?}");
        assert_eq!(served.version.to_string(), "1.1.0");
    }
    let hex = sign(dir.path(), &key, &program, "app.hex", &[]);
    let bin = std::fs::read(sign(dir.path(), &key, &program, "app.bin", &[])).unwrap();
    let out = otactl()
        .args(["job", "--board", BOARD, "--image"])
        .arg(&hex)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    let doc = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(doc.contains(r#""Version": "1.1.0""#), "{doc}");

    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let mut child = otactl()
        .args([
            "publish",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", broker.port),
        ])
        .args(["--board", BOARD, "--json", "--image"])
        .arg(&hex)
        .arg("--key")
        .arg(&key)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let connected = wait_line(&lines, "\"connected\"", Duration::from_secs(15)).is_some();
    let o = connected.then(|| {
        rt().block_on(device::until_updated(
            DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 730),
            Duration::from_secs(60),
        ))
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected, "publisher did not connect");
    updated(&o.unwrap(), &bin, "device served the signed .hex");
}

/// A file that is not an image gets plain words from `publish`, `job`, `verify` and `info`:
/// what it is instead and what to do; no magic numbers, no Rust names.
#[test]
fn a_file_that_is_not_an_image_gets_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path());
    let junk = dir.path().join("app.bin");
    std::fs::write(
        &junk,
        b"\x7fELF\x01\x01\x01 not really an image, but not an image either",
    )
    .unwrap();
    let unsigned = dir.path().join("app.unsigned.bin");
    std::fs::write(&unsigned, vec![0x5a; 5000]).unwrap();
    for (file, words) in [
        (&junk, "ELF file"),
        (&unsigned, "image header"),
        (&key, "PEM file"),
    ] {
        let runs: [Vec<&OsStr>; 4] = [
            vec![
                "publish".as_ref(),
                "--broker".as_ref(),
                "mqtt://127.0.0.1:1".as_ref(),
                "--board".as_ref(),
                BOARD.as_ref(),
                "--key".as_ref(),
                key.as_os_str(),
                "--image".as_ref(),
                file.as_os_str(),
            ],
            vec![
                "job".as_ref(),
                "--board".as_ref(),
                BOARD.as_ref(),
                "--image".as_ref(),
                file.as_os_str(),
            ],
            vec!["verify".as_ref(), file.as_os_str()],
            vec!["info".as_ref(), file.as_os_str()],
        ];
        for args in runs {
            let out = otactl().args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?}");
            assert!(
                err.contains("not a signed MCUboot image") && err.contains(words),
                "{args:?}: {err}"
            );
            for bad in ["0x", "Magic", "Format(", "Error"] {
                assert!(!err.contains(bad), "{args:?}: {bad:?} in {err}");
            }
        }
    }
}

/// A broker that is not running is retried with a plain "cannot connect … is the broker
/// running?"; a host name that does not resolve can never work: exit 2 at once, naming --broker.
#[test]
fn an_unreachable_broker_is_retried_and_an_unknown_host_ends_the_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path());
    let (image, _) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let publish = |broker: &str| {
        let mut c = otactl();
        c.args(["publish", "--broker", broker, "--board", BOARD, "--image"])
            .arg(&image)
            .arg("--key")
            .arg(&key)
            .arg("--state")
            .arg(dir.path().join("state.json"));
        c
    };
    let out = crate::util::output_within(
        &mut publish("mqtt://no-such-broker.invalid:1883"),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no-such-broker.invalid:1883") && err.contains("--broker"),
        "{err}"
    );
    let port = free_port();
    let mut child = publish(&format!("mqtt://127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let line = wait_line(&lines, "cannot connect", Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a plain retry line");
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && line.contains("is the broker running?"),
        "{line}"
    );
}

/// A broker whose ACL lets the publisher read only its board's request topic: mosquitto grants
/// the wide `PFX/+/publish_notify` subscription and filters what it delivers by the ACL, so the
/// publisher serves its board's devices as before. (Brokers that refuse the wide filter at
/// SUBSCRIBE, such as AWS IoT Core with a per-board policy, make the publisher fall back to its
/// boards' own topics; no broker here refuses it.)
#[test]
fn a_narrow_acl_still_serves_the_boards_devices() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        format!(
            "topic readwrite MyUniqueTopic/{BOARD}/#\ntopic write MyUniqueTopic/{BOARD}/publish_notify\ntopic write cy_ota_device/will\n"
        ),
    )
    .unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl.display()
        ),
    )
    .unwrap();
    let Some(broker) = Mosquitto::start(&conf, port) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = super::fixture::Running::start(super::fixture::config(
            broker.port,
            vec![super::fixture::served(BOARD, &path)],
        ))
        .await;
        let d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 7000);
        updated(
            &device::session(&d).await,
            &image,
            "device behind a narrow ACL",
        );
        p.stop().await;
    });
}
