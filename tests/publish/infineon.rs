//! The certificates Infineon's `generate_ssl_cert.sh` makes, made here with openssl exactly as
//! the script does, served by a real mosquitto with the example's TLS listener
//! (`require_certificate true`, `cafile`/`certfile`/`keyfile`):
//!
//! - CA: `openssl genrsa 2048`, `openssl req -x509 -new … -subj /CN=myCA -days 3650`;
//! - broker: RSA-2048, signed with an extfile `subjectAltName=DNS:mosquitto_server,DNS:IP:…`
//!   (the second is a DNS entry reading "IP:127.0.0.1", not an IP address entry);
//! - client: RSA-2048, signed with `openssl x509 -req` and no extensions: X.509 version 1.
//!
//! `otactl publish` (the binary) connects with `--tls-server-name mosquitto_server` and serves
//! the spec test device, which connects through the same TLS listener with the same v1
//! certificate; without the flag the error names the certificate's names and the flag;
//! `--insecure` still connects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use otactl::mqtt::{self, TlsSettings};

use super::device::{self, DeviceConfig};
use super::fixture::{signed_image, write_key, BOARD};
use crate::util::{
    free_port, lines_of, otactl, output_within, tool, wait_for_port, wait_line, Mosquitto,
};

const LIMIT: Duration = Duration::from_secs(20);

/// The script's files in a temp dir (also `otactl certs check`'s and `certs gen --ca-cert`'s
/// material in tests/certs).
pub(crate) struct Infineon {
    dir: tempfile::TempDir,
}

impl Infineon {
    pub(crate) fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the script's openssl commands; `None` (skip) without openssl.
    pub(crate) fn make() -> Option<Self> {
        let openssl = tool("openssl")?;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let o = Command::new(&openssl)
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:mosquitto_server,DNS:IP:127.0.0.1\n",
        )
        .unwrap();
        run(&["genrsa", "-out", "mosquitto_ca.key", "2048"]);
        run(&[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-key",
            "mosquitto_ca.key",
            "-sha256",
            "-days",
            "3650",
            "-subj",
            "/CN=myCA",
            "-out",
            "mosquitto_ca.crt",
        ]);
        for (who, ext) in [("server", true), ("client", false)] {
            let (key, csr, crt) = (
                format!("mosquitto_{who}.key"),
                format!("mosquitto_{who}.csr"),
                format!("mosquitto_{who}.crt"),
            );
            run(&["genrsa", "-out", &key, "2048"]);
            let subj = format!("/CN=mosquitto_{who}");
            run(&["req", "-new", "-key", &key, "-out", &csr, "-subj", &subj]);
            let mut sign = vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "mosquitto_ca.crt",
                "-CAkey",
                "mosquitto_ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "3650",
                "-sha256",
            ];
            if ext {
                sign.extend(["-extfile", "server.ext"]);
            }
            run(&sign);
        }
        let client = run(&["x509", "-in", "mosquitto_client.crt", "-noout", "-text"]);
        assert!(client.contains("Version: 1 (0x0)"), "{client}");
        let server = run(&["x509", "-in", "mosquitto_server.crt", "-noout", "-text"]);
        assert!(
            server.contains("Version: 3 (0x2)")
                && server.contains("DNS:mosquitto_server, DNS:IP:127.0.0.1"),
            "{server}"
        );
        // The same key as PKCS#1 ("BEGIN RSA PRIVATE KEY"), as OpenSSL 1.1's genrsa wrote it.
        run(&[
            "rsa",
            "-in",
            "mosquitto_client.key",
            "-traditional",
            "-out",
            "client_pkcs1.key",
        ]);
        // Started as root, mosquitto reads its key as its own account (genrsa writes 0600).
        chmod_readable(&dir.path().join("mosquitto_server.key"));
        Some(Self { dir })
    }

    /// mosquitto with a plain listener (returned) and the example's TLS listener on `tls`.
    pub(crate) fn broker(&self, tls: u16) -> Option<Mosquitto> {
        let plain = free_port();
        let conf = self.p("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous true\nset_tcp_nodelay true\n\
                 listener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\ncafile {}\ncertfile {}\n\
                 keyfile {}\nrequire_certificate true\n",
                self.p("mosquitto_ca.crt").display(),
                self.p("mosquitto_server.crt").display(),
                self.p("mosquitto_server.key").display(),
            ),
        )
        .unwrap();
        let broker = Mosquitto::start(&conf, plain)?;
        assert!(wait_for_port(tls, LIMIT), "{}", broker.log_text());
        Some(broker)
    }

    /// `otactl publish` against the TLS listener with the script's CA and client pair, with
    /// `extra` options; `--json` lines on a channel.
    fn publish_command(&self, tls: u16, client_key: &str, extra: &[&str]) -> Command {
        let image = self.p("app.bin");
        std::fs::write(&image, signed_image((1, 1, 0), 60_000, 5)).unwrap();
        let mut c = otactl();
        c.args(["publish", "--broker", &format!("mqtts://127.0.0.1:{tls}")])
            .arg("--ca")
            .arg(self.p("mosquitto_ca.crt"))
            .arg("--cert")
            .arg(self.p("mosquitto_client.crt"))
            .arg("--client-key")
            .arg(self.p(client_key))
            .args(["--board", BOARD, "--image"])
            .arg(&image)
            .arg("--key")
            .arg(write_key(self.dir.path()))
            .arg("--state")
            .arg(self.p("state.json"))
            .args(extra)
            .arg("--json")
            .env_remove("OTACTL_TLS_SERVER_NAME");
        c
    }

    fn publish(&self, tls: u16, client_key: &str, extra: &[&str]) -> Publisher {
        let mut child = self
            .publish_command(tls, client_key, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut child);
        Publisher { child, lines }
    }
}

#[cfg(unix)]
fn chmod_readable(p: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[cfg(not(unix))]
fn chmod_readable(_: &Path) {}

/// A running `otactl publish`, killed (by its own PID) on drop.
struct Publisher {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Publisher {
    fn line(&self, needle: &str) -> Option<String> {
        wait_line(&self.lines, needle, LIMIT)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The script's CA, v1 client pair and `--tls-server-name mosquitto_server`: the publisher
/// connects (PKCS#8 and PKCS#1 key) and the spec test device, connected through the same TLS
/// listener with the same files, gets the update bit-exact.
#[test]
fn publish_with_infineon_certificates_and_tls_server_name_serves_a_device() {
    let Some(pki) = Infineon::make() else { return };
    let tls = free_port();
    let Some(broker) = pki.broker(tls) else {
        return;
    };
    let p = pki.publish(
        tls,
        "mosquitto_client.key",
        &["--tls-server-name", "mosquitto_server"],
    );
    assert!(
        p.line("\"connected\"").is_some(),
        "publisher did not connect; broker log:\n{}",
        broker.log_text()
    );
    let device_tls = mqtt::client_config(&TlsSettings {
        ca: Some(pki.p("mosquitto_ca.crt")),
        cert: Some(pki.p("mosquitto_client.crt")),
        key: Some(pki.p("client_pkcs1.key")),
        server_name: Some("mosquitto_server".into()),
        insecure: false,
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let mut d = DeviceConfig::new(tls, BOARD, (1, 0, 0), 4100);
    d.tls = Some(Arc::new(device_tls));
    let o = super::rt().block_on(device::until_updated(d, Duration::from_secs(60)));
    let want = std::fs::read(pki.p("app.bin")).unwrap();
    super::updated(&o, &want, "device over the Infineon TLS listener");
    drop(p);
    let p = pki.publish(
        tls,
        "client_pkcs1.key",
        &["--tls-server-name", "mosquitto_server"],
    );
    assert!(
        p.line("\"connected\"").is_some(),
        "PKCS#1 client key: publisher did not connect"
    );
}

/// Without `--tls-server-name` the broker (reached as 127.0.0.1) is refused: the publisher
/// stops at once (exit 2; retrying cannot help) with an error that names the certificate's
/// names and the flag; `--insecure` still connects.
#[test]
fn infineon_broker_by_address_names_the_certificate_names_and_the_flag() {
    let Some(pki) = Infineon::make() else { return };
    let tls = free_port();
    let Some(broker) = pki.broker(tls) else {
        return;
    };
    let out = output_within(
        &mut pki.publish_command(tls, "mosquitto_client.key", &[]),
        LIMIT,
    );
    let line = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{line}");
    for want in [
        "127.0.0.1",
        "DNS:mosquitto_server",
        "DNS:IP:127.0.0.1",
        "--tls-server-name mosquitto_server",
    ] {
        assert!(line.contains(want), "{want:?} missing from {line}");
    }
    let out = output_within(
        &mut pki.publish_command(
            tls,
            "mosquitto_client.key",
            &["--tls-server-name", "broker.example"],
        ),
        LIMIT,
    );
    let line = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(
        line.contains("broker.example") && line.contains("DNS:mosquitto_server"),
        "{line}"
    );
    let p = pki.publish(tls, "mosquitto_client.key", &["--insecure"]);
    assert!(
        p.line("\"connected\"").is_some(),
        "--insecure did not connect; broker log:\n{}",
        broker.log_text()
    );
}
