//! The mistakes issue 13 lists, each made on purpose in the README's flows: every one ends with
//! the documented exit code and a message a person can act on (naming the flag, file, variable or
//! config key, and what to use instead), never Rust debug text (`Name(…)`, `CamelCase`). For a
//! running publisher: the warning line within a few seconds.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Output};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::precedence::signed_image;
use super::{otactl_in, project, text, INIT_FLAGS};
use crate::util::{wait_line, Mosquitto};

/// Words that look like identifiers but are names people use.
const ALLOWED: &[&str] = &["ModusToolbox", "MyUniqueTopic", "OTAImage", "PFX"];

/// Panics on Rust debug text in a message: `Name(`, or a CamelCase word (`UnknownCA`,
/// `BadMagic`) that is not a name people use.
#[track_caller]
fn assert_human(what: &str, msg: &str) {
    let mut word = String::new();
    for c in msg.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() {
            word.push(c);
            continue;
        }
        let b = word.as_bytes();
        let upper_first = b.first().is_some_and(u8::is_ascii_uppercase);
        let camel = upper_first
            && b.windows(2)
                .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase());
        let call = c == '(' && upper_first && b.iter().all(u8::is_ascii_alphabetic);
        assert!(
            !(camel || call) || ALLOWED.contains(&word.as_str()),
            "{what}: debug text {word:?} in:\n{msg}"
        );
        word.clear();
    }
}

/// `out` ended with `code`, its stderr has every one of `words` and reads as plain words.
#[track_caller]
fn fails(what: &str, out: &Output, code: i32, words: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout:\n{}\nstderr:\n{err}",
        text(&out.stdout)
    );
    for w in words {
        assert!(err.contains(w), "{what}: {w:?} missing from:\n{err}");
    }
    assert_human(what, &err);
}

/// otactl in `dir` with stdout and stderr merged into one stream of lines.
fn spawn_merged(dir: &Path, args: &[&str]) -> (Child, Receiver<String>) {
    let (reader, writer) = std::io::pipe().unwrap();
    let child = otactl_in(dir)
        .args(args)
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// `INIT_FLAGS` with `flag`'s value replaced.
fn init_with(flag: &str, value: &str) -> Vec<String> {
    let mut args: Vec<String> = INIT_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    let i = args.iter().position(|a| a == flag).unwrap();
    args[i + 1] = value.to_owned();
    args
}

/// The board string in the build's TARGET form (or lower case) can never match a device:
/// `publish`, `job` and `init` refuse it at start and name the APP_ form to use.
#[test]
fn a_target_form_board_string_is_refused_with_the_app_form() {
    let dir = project();
    let d = dir.path();
    signed_image(d);
    let publish = [
        "publish",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--key",
        "k.pem",
    ];
    let runs: [(&str, Vec<&str>); 4] = [
        (
            "publish --board",
            vec!["--board", "CY8CPROTO-062S2-43439", "--image", "app.signed"],
        ),
        (
            "publish --image B=F",
            vec!["--image", "CY8CPROTO-062S2-43439=app.signed"],
        ),
        (
            "publish lower case",
            vec![
                "--board",
                "app_cy8cproto_062s2_43439",
                "--image",
                "app.signed",
            ],
        ),
        ("job --board", vec![]),
    ];
    for (what, extra) in runs {
        let mut c = otactl_in(d);
        if extra.is_empty() {
            c.args([
                "job",
                "--image",
                "app.signed",
                "--board",
                "CY8CPROTO-062S2-43439",
            ]);
        } else {
            c.args(publish).args(extra);
        }
        let out = c.output().unwrap();
        fails(what, &out, 2, &["APP_CY8CPROTO_062S2_43439", "TARGET"]);
    }
    let out = otactl_in(d)
        .args(init_with("--board", "CY8CPROTO-062S2-43439"))
        .output()
        .unwrap();
    fails(
        "init --board",
        &out,
        2,
        &["--board", "use APP_CY8CPROTO_062S2_43439"],
    );
    assert!(!d.join("otactl.toml").exists());
}

/// `init` refuses an address that is neither an IP address nor a host name.
#[test]
fn init_refuses_an_address_that_is_no_address() {
    let dir = project();
    let d = dir.path();
    for (what, args) in [
        ("mosquitto", init_with("--broker-address", "192.168.0.300")),
        ("url", {
            let mut a = init_with("--broker-address", "mqtts://192.168.0.300:8884");
            let i = a.iter().position(|x| x == "mosquitto").unwrap();
            a[i] = "url".into();
            a
        }),
        ("aws", {
            let mut a = init_with("--broker-address", "xxxx-ats.iot..amazonaws.com");
            let i = a.iter().position(|x| x == "mosquitto").unwrap();
            a[i] = "aws".into();
            a
        }),
    ] {
        let out = otactl_in(d).args(&args).output().unwrap();
        fails(what, &out, 2, &["--broker-address"]);
        assert!(!d.join("otactl.toml").exists(), "{what}");
    }
    let out = otactl_in(d)
        .args(init_with("--broker-address", "192.168.0.300"))
        .output()
        .unwrap();
    fails("0-255", &out, 2, &["192.168.0.300", "0-255"]);
}

/// A board string without APP_ is served with a warning at start; when no device asks within
/// --quiet-time, the publisher says what to check.
#[test]
fn a_publisher_nobody_talks_to_says_what_to_check() {
    let dir = project();
    let d = dir.path();
    signed_image(d);
    let Some(broker) = Mosquitto::start_plain(d) else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let (mut child, lines) = spawn_merged(
        d,
        &[
            "publish",
            "--broker",
            &url,
            "--key",
            "k.pem",
            "--state",
            "s.json",
            "--board",
            "CY8CPROTO_062S2_43439",
            "--image",
            "app.signed",
            "--quiet-time",
            "1",
        ],
    );
    let limit = Duration::from_secs(20);
    let warning = wait_line(&lines, "no APP_ prefix", limit);
    let note = wait_line(&lines, "no device has asked", limit);
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("a warning about the missing APP_ prefix");
    assert!(warning.contains("APP_CY8CPROTO_062S2_43439"), "{warning}");
    let note = note.expect("a note after the quiet time");
    for w in [
        "CY8CPROTO_062S2_43439",
        "MyUniqueTopic",
        &url,
        "publish_notify",
    ] {
        assert!(note.contains(w), "{w} missing: {note}");
    }
    assert_human("quiet note", &note);
}

#[test]
fn debug_text_is_recognised() {
    for bad in ["UnknownCA", "Format(BadMagic(808595514))", "Name(x)"] {
        let r = std::panic::catch_unwind(|| assert_human("t", bad));
        assert!(r.is_err(), "{bad}");
    }
    assert_human(
        "t",
        "--board CY8CPROTO-062S2-43439: use APP_CY8CPROTO_062S2_43439 (MyUniqueTopic)",
    );
}

/// A bad value in otactl.toml or an `OTACTL_*` variable is reported as coming from there (not
/// as a flag nobody typed), and a flag still overrides it.
#[test]
fn a_value_nobody_typed_is_named_by_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let sign = [
        "sign",
        "-k",
        "k.pem",
        "-H",
        "0x400",
        "--pad-header",
        "-v",
        "1.0.0",
    ];
    let sign = |c: &mut std::process::Command| {
        c.args(sign).args(["-S", "0x10000", "app.bin", "out.bin"]);
    };
    std::fs::write(d.join("otactl.toml"), "[sign]\nalign = 3\n").unwrap();
    let mut c = otactl_in(d);
    sign(&mut c);
    let out = c.output().unwrap();
    fails(
        "file align",
        &out,
        2,
        &["otactl.toml", "[sign] align = 3", "--align", "1, 2, 4"],
    );
    assert!(
        !text(&out.stderr).contains("for '--align"),
        "{}",
        text(&out.stderr)
    );
    let mut c = otactl_in(d);
    sign(&mut c);
    assert_eq!(
        c.arg("--align").arg("8").output().unwrap().status.code(),
        Some(0)
    );
    std::fs::remove_file(d.join("otactl.toml")).unwrap();

    let out = otactl_in(d)
        .args([
            "publish",
            "--board",
            "APP_X",
            "--image",
            "app.signed",
            "--key",
            "k.pem",
        ])
        .env("OTACTL_BLOCK_AFTER", "0")
        .output()
        .unwrap();
    fails(
        "env block-after",
        &out,
        2,
        &["OTACTL_BLOCK_AFTER=0", "--block-after"],
    );

    // TLS files in the file, a plain broker: the error names the file's key, not only "--ca".
    std::fs::write(
        d.join("otactl.toml"),
        "[publish]\nbroker = \"mqtt://127.0.0.1:1883\"\nca = \"ca.crt\"\n",
    )
    .unwrap();
    let out = otactl_in(d)
        .args([
            "publish",
            "--board",
            "APP_X",
            "--image",
            "app.signed",
            "--key",
            "k.pem",
        ])
        .output()
        .unwrap();
    fails(
        "file ca",
        &out,
        2,
        &["--ca was not given", "otactl.toml ([publish] ca = ca.crt)"],
    );
    std::fs::remove_file(d.join("otactl.toml")).unwrap();

    // A leftover OTACTL_VERSION is not what an image is signed with.
    let mut c = otactl_in(d);
    sign(&mut c);
    let out = c
        .env("OTACTL_VERSION", "9.9.9")
        .env("OTACTL_PAD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("OTACTL_VERSION is ignored"), "{err}");
    assert!(err.contains("OTACTL_PAD is ignored"), "{err}");
    assert!(err.contains("version 1.0.0"), "{err}");
}

/// A key file that does not exist is named once, with the OS's reason once.
#[test]
fn a_missing_key_file_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    for args in [
        &["verify", "-k", "nope.pem", "app.signed"][..],
        &[
            "sign",
            "-k",
            "nope.pem",
            "-H",
            "0x400",
            "--pad-header",
            "-S",
            "0x10000",
            "-v",
            "1.0.0",
            "app.bin",
            "o.bin",
        ],
        &[
            "job",
            "--board",
            "APP_X",
            "--image",
            "app.signed",
            "--key",
            "nope.pem",
        ],
    ] {
        let out = otactl_in(d).args(args).output().unwrap();
        fails(args[0], &out, 2, &["nope.pem", "No such file"]);
        let err = text(&out.stderr);
        assert_eq!(err.matches("No such file").count(), 1, "{err}");
    }
}

/// `-q`, `-v` and `--config` work after the subcommand as well as before it.
#[test]
fn global_flags_work_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let sign = [
        "sign",
        "-k",
        "k.pem",
        "-H",
        "0x400",
        "--pad-header",
        "-S",
        "0x10000",
        "-v",
        "1.0.0",
        "app.bin",
    ];
    let out = otactl_in(d)
        .args(sign)
        .args(["o1.bin", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "-q after sign: {}",
        text(&out.stderr)
    );
    let out = otactl_in(d).args(sign).args(["o2.bin"]).output().unwrap();
    assert!(
        text(&out.stderr).contains("signed"),
        "{}",
        text(&out.stderr)
    );
    let out = otactl_in(d)
        .args(["keygen", "-k", "x.pem", "--verbose"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for args in [
        &["completions", "bash", "-q", "-v"][..],
        &["-q", "completions", "bash", "-v"],
    ] {
        let out = otactl_in(d).args(args).output().unwrap();
        fails("-q with -v", &out, 2, &["--quiet", "--verbose"]);
    }
    let out = otactl_in(d)
        .args(["completions", "bash", "--config", "missing.toml"])
        .output()
        .unwrap();
    fails("--config after", &out, 2, &["missing.toml"]);
}
