//! Runs every command of the README's real-board section, so
//! it cannot rot. The hardware is replaced, and only that:
//!
//! - `<!-- test: build VERSION PATH -->`: the ModusToolbox build: an "unsigned" Intel HEX linked
//!   where Infineon's PSoC 6 build links it (primary slot + 0x400), different per version;
//! - `<!-- test: background NAME -->`: the next `sh` block is a long-running process (mosquitto,
//!   `otactl publish`), started in the background and killed at the end (or at `stop NAME`);
//! - `<!-- test: device RUNNING gets NEW -->` / `<!-- test: device RUNNING reverts NEW -->`: the
//!   board: the protocol-spec test device of `tests/publish/device.rs` checks for an update while
//!   running RUNNING and must receive NEW; after "gets" it reports NEW on its next check, after
//!   "reverts" (MCUboot reverted the test swap) it asks again with RUNNING.
//!
//! Every other line of every `sh` block runs with `sh -c` in a temp project directory and must
//! exit 0. Test adaptations: `192.168.0.10` → `127.0.0.1`; the broker port 8884 → a free port
//! (in `certs/mosquitto.conf`, and through `OTACTL_BROKER` for otactl). The simulated device
//! connects like the real one: TLS with the CA and the device certificate the section made, and
//! the SerialNumber of the request templates in the header `otactl cert-to-c --header` wrote (the
//! example's `ABC213450001` if the section wrote none).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::publish::device::{self, DeviceConfig, Outcome};
use crate::util::{free_port, tool, wait_for_port};

use super::{project, text};

/// The section's heading in README.md.
const HEADING: &str = "## With a real board";

/// The real-board section of README.md.
fn section() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["README.md"] {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        if let Some(start) = text.find(HEADING) {
            let rest = &text[start + HEADING.len()..];
            let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
            return rest[..end].to_owned();
        }
    }
    panic!("README.md has no `{HEADING}` section");
}
const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Where Infineon's PSoC 6 2M build links the application (primary slot + header).
const LINK_ADDR: u64 = 0x1002_8400;

/// One thing the document asks for, in order.
#[derive(Debug, PartialEq)]
enum Step {
    Run(String),
    Background(String, String),
    Stop(String),
    Build(String, String),
    Device {
        running: String,
        new: String,
        reverts: bool,
    },
}

/// The steps of the document: `sh` blocks (with `\` continuations joined) and directives.
fn steps(doc: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut background: Option<String> = None;
    let mut in_sh = false;
    let mut cmd = String::new();
    for line in doc.lines() {
        let t = line.trim();
        if let Some(d) = t
            .strip_prefix("<!-- test:")
            .and_then(|d| d.strip_suffix("-->"))
        {
            let w: Vec<&str> = d.split_whitespace().collect();
            match w.as_slice() {
                ["start"] => {}
                ["background", name] => background = Some((*name).to_owned()),
                ["stop", name] => out.push(Step::Stop((*name).to_owned())),
                ["build", v, path] => out.push(Step::Build((*v).into(), (*path).into())),
                ["device", running, verb @ ("gets" | "reverts"), new] => out.push(Step::Device {
                    running: (*running).into(),
                    new: (*new).into(),
                    reverts: *verb == "reverts",
                }),
                other => panic!("unknown test directive {other:?}"),
            }
            continue;
        }
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh || t.is_empty() {
            continue;
        }
        cmd.push_str(t.trim_end_matches('\\').trim_end());
        if t.ends_with('\\') {
            cmd.push(' ');
            continue;
        }
        let c = std::mem::take(&mut cmd).replace("192.168.0.10", "127.0.0.1");
        out.push(match background.take() {
            Some(name) => Step::Background(name, c),
            None => Step::Run(c),
        });
    }
    out
}

/// An application HEX whose contents depend on `version` (so each build is a different image).
fn fake_build(dir: &Path, version: &str, path: &str) {
    let seed = version
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    let code: Vec<u8> = (0..20_000u32).map(|i| (i as u8) ^ seed).collect();
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, otactl::assemble::hex::write(&[(LINK_ADDR, &code)])).unwrap();
}

/// The environment of the session: the test otactl and mosquitto first on PATH.
struct Session {
    dir: tempfile::TempDir,
    path: std::ffi::OsString,
    tls_port: u16,
    /// The board's SerialNumber: from the header `cert-to-c --header FILE` wrote.
    serial: String,
    children: Vec<(String, Child)>,
    rt: tokio::runtime::Runtime,
}

impl Session {
    fn new(mosquitto: &Path) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_otactl")).parent().unwrap();
        let mut dirs = vec![bin.to_path_buf(), mosquitto.parent().unwrap().to_path_buf()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        Self {
            dir: project(),
            path: std::env::join_paths(dirs).unwrap(),
            tls_port: free_port(),
            serial: "ABC213450001".into(),
            children: Vec::new(),
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env(
                "OTACTL_BROKER",
                format!("mqtts://127.0.0.1:{}", self.tls_port),
            )
            .env_remove("OTACTL_CONFIG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        c
    }

    fn run(&mut self, cmd: &str) {
        let out = self.command(cmd).output().unwrap();
        assert!(
            out.status.success(),
            "`{cmd}` failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        if let Some(header) = cert_to_c_header(cmd) {
            let h = std::fs::read_to_string(self.dir.path().join(header)).unwrap();
            self.serial = serial_in_header(&h)
                .unwrap_or_else(|| panic!("{header} has no SerialNumber:\n{h}"))
                .to_owned();
        }
    }

    /// Moves the generated broker config to the test's ports (see the module docs).
    fn adapt_mosquitto_conf(&self) {
        let conf = self.dir.path().join("certs/mosquitto.conf");
        let text = std::fs::read_to_string(&conf).expect("certs gen wrote certs/mosquitto.conf");
        assert!(
            text.contains("8884"),
            "mosquitto.conf does not listen on 8884:\n{text}"
        );
        let text = text.replace("8884", &self.tls_port.to_string());
        std::fs::write(&conf, text).unwrap();
    }

    fn background(&mut self, name: &str, cmd: &str) {
        if name == "mosquitto" {
            self.adapt_mosquitto_conf();
        }
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        // `exec`: the PID we kill at `stop` is the process itself, not a shell around it.
        let child = self
            .command(&format!("exec {cmd}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name.to_owned(), child));
        if name == "mosquitto" {
            assert!(
                wait_for_port(self.tls_port, Duration::from_secs(10)),
                "mosquitto did not start: {}",
                self.log(name)
            );
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn stop(&mut self, name: &str) {
        let i = self.children.iter().position(|(n, _)| n == name);
        let (_, mut child) = self
            .children
            .remove(i.expect("stop of a process never started"));
        let _ = child.kill();
        let _ = child.wait();
    }

    fn device(&self, running: &str, new: &str, reverts: bool) {
        let v = |s: &str| {
            let p: Vec<u16> = s.split('.').map(|n| n.parse().unwrap()).collect();
            (p[0], p[1], p[2])
        };
        // The device connects like the real one: TLS on the broker's port, with the CA and the
        // device certificate the section made.
        let mut cfg = DeviceConfig::new(self.tls_port, BOARD, v(running), 1000);
        cfg.serial.clone_from(&self.serial);
        let certs = self.dir.path().join("certs");
        let tls = otactl::mqtt::TlsSettings {
            ca: Some(certs.join("ca.crt")),
            cert: Some(certs.join("DEVICE-0001.crt")),
            key: Some(certs.join("DEVICE-0001.key")),
            server_name: None,
            insecure: false,
        };
        cfg.tls = Some(std::sync::Arc::new(
            otactl::mqtt::client_config(&tls).unwrap(),
        ));
        let got = self
            .rt
            .block_on(device::until_updated(cfg.clone(), Duration::from_secs(60)));
        match got {
            Outcome::Updated { version, .. } => assert_eq!(version, v(new)),
            Outcome::NoUpdate(why) => panic!(
                "device on {running} got no update ({why}); publish log:\n{}",
                self.log("publish")
            ),
        }
        // The next check: on NEW after a good update, still on RUNNING after a revert.
        cfg.running = if reverts { v(running) } else { v(new) };
        cfg.tick = 2000;
        let next = self.rt.block_on(device::session(&cfg));
        assert!(
            matches!(next, Outcome::NoUpdate(_)),
            "offered again: {next:?}"
        );
    }
}

/// The header file of an `otactl cert-to-c --header FILE …` command line.
fn cert_to_c_header(cmd: &str) -> Option<&str> {
    let mut words = cmd.split_whitespace();
    if !(words.next()? == "otactl" && words.next()? == "cert-to-c") {
        return None;
    }
    words.skip_while(|w| *w != "--header").nth(1)
}

/// The SerialNumber literal of the request templates in a header from `cert-to-c`.
fn serial_in_header(header: &str) -> Option<&str> {
    let key = r#"\"SerialNumber\": \""#;
    let rest = &header[header.find(key)? + key.len()..];
    Some(&rest[..rest.find('\\')?])
}

impl Drop for Session {
    fn drop(&mut self) {
        for (_, mut c) in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn directives_and_continuations_are_parsed() {
    let doc = "<!-- test: background mosquitto -->\n```sh\nmosquitto -c x \\\n  -v\n```\n```text\nmake\n```\n<!-- test: device 1.0.0 reverts 1.1.0 -->\n```sh\notactl status # see\n```\n";
    assert_eq!(
        steps(doc),
        [
            Step::Background("mosquitto".into(), "mosquitto -c x -v".into()),
            Step::Device {
                running: "1.0.0".into(),
                new: "1.1.0".into(),
                reverts: true
            },
            Step::Run("otactl status # see".into()),
        ]
    );
}

#[test]
fn the_serial_comes_from_the_header_cert_to_c_writes() {
    assert_eq!(
        cert_to_c_header("otactl cert-to-c --header ota_device.h certs/ca.crt"),
        Some("ota_device.h")
    );
    assert_eq!(cert_to_c_header("otactl cert-to-c certs/ca.crt"), None);
    assert_eq!(cert_to_c_header("otactl sign --header x"), None);
    let h = "#define X \\\n    \"\\\"SerialNumber\\\": \\\"DEVICE-0001\\\", \" \\\n";
    assert_eq!(serial_in_header(h), Some("DEVICE-0001"));
}

#[test]
fn section_has_every_step_of_the_session() {
    let all = steps(&section());
    let runs = all.iter().filter(|s| matches!(s, Step::Run(_))).count();
    assert!(runs >= 10, "{all:?}");
    for needed in [
        "otactl init",
        "otactl certs gen",
        "otactl cert-to-c",
        "otactl sign",
        "otactl status",
    ] {
        assert!(
            all.iter()
                .any(|s| matches!(s, Step::Run(c) if c.starts_with(needed))),
            "no `{needed}` in the section"
        );
    }
    assert_eq!(
        all.iter()
            .filter(|s| matches!(s, Step::Device { .. }))
            .count(),
        2
    );
}

#[test]
fn real_board_section_runs_as_written() {
    let Some(mosquitto) = tool("mosquitto") else {
        return;
    };
    let mut s = Session::new(&mosquitto);
    let all = steps(&section());
    assert!(all.len() > 10, "the document lost its commands: {all:?}");
    for step in all {
        match step {
            Step::Run(c) => s.run(&c),
            Step::Background(name, c) => s.background(&name, &c),
            Step::Stop(name) => s.stop(&name),
            Step::Build(v, path) => fake_build(s.dir.path(), &v, &path),
            Step::Device {
                running,
                new,
                reverts,
            } => s.device(&running, &new, reverts),
        }
    }
    assert_eq!(
        s.serial, "DEVICE-0001",
        "the section gives the board its serial"
    );
    let status = s.command("otactl status").output().unwrap();
    let out = text(&status.stdout);
    assert!(
        out.contains("reverted 1.2.0") && out.contains("DEVICE-0001"),
        "{out}\npublish log:\n{}",
        s.log("publish")
    );
    let _: PathBuf = s.dir.path().join("otactl.toml");
}
