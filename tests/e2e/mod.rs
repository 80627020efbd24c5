//! End to end: a real mosquitto, `otactl publish` (the binary) and `otactl-simboard` running
//! the real device application, whose versions are read from the board's transcript; and
//! `otactl demo` itself ([`story`]).
//!
//! The three application versions are the `otactl-devapp` cargo built for these tests with a
//! build record appended (`ota_host::app::record`), as the demo makes them: nothing is built
//! while the tests run.

mod device;
mod kill;
mod story;
pub mod third_party;
mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use ota_core::flashmap::infineon;
use ota_core::protocol::AppVersion;
use ota_host::app::record::AppRecord;
use ota_host::board::{BoardProcess as Board, BoardSpec};

use crate::util::{self, Mosquitto};

pub const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Generous bound for one step of the story.
pub const STEP: Duration = Duration::from_secs(60);

/// The three application builds and the board executable.
pub struct Apps {
    pub simboard: PathBuf,
    pub v100: PathBuf,
    pub v110: PathBuf,
    pub v120_bad: PathBuf,
}

fn stamp_apps() -> Apps {
    let devapp = Path::new(env!("CARGO_BIN_EXE_otactl-devapp"));
    let dir = devapp.parent().unwrap().join("e2e-apps");
    std::fs::create_dir_all(&dir).unwrap();
    let app = std::fs::read(devapp).unwrap();
    let one = |(major, minor, patch), blinky_ms, test_revert| -> PathBuf {
        let record = AppRecord {
            version: AppVersion::new(major, minor, patch),
            blinky_ms,
            test_revert,
        };
        let path = dir.join(format!("devapp-{}", record.version));
        std::fs::write(&path, record.stamp(app.clone()).unwrap()).unwrap();
        path
    };
    Apps {
        simboard: PathBuf::from(env!("CARGO_BIN_EXE_otactl-simboard")),
        v100: one((1, 0, 0), 1000, false),
        v110: one((1, 1, 0), 250, false),
        v120_bad: one((1, 2, 0), 100, true),
    }
}

/// The builds, made on first use (in `e2e-apps/` beside the executables).
pub fn apps() -> &'static Apps {
    static APPS: OnceLock<Apps> = OnceLock::new();
    APPS.get_or_init(stamp_apps)
}

/// A host flash map of the board.
pub fn flashmap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("flashmap")
        .join(name)
}

/// One test's world: temp dir, broker, signing key.
pub struct World {
    pub dir: tempfile::TempDir,
    pub broker: Mosquitto,
    pub key: PathBuf,
    pub pubkey: PathBuf,
    pub flashmap: PathBuf,
}

impl World {
    /// `None` when mosquitto is missing and not required (the test is skipped).
    pub fn new(flashmap_name: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start_plain(dir.path())?;
        apps();
        let key = dir.path().join("signing.pem");
        let pubkey = dir.path().join("signing.pub.pem");
        let out = util::run(
            util::otactl()
                .args(["keygen", "--non-interactive", "-k"])
                .arg(&key),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = util::run(util::otactl().args(["getpub", "-e", "pem", "-k"]).arg(&key));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&pubkey, &out.stdout).unwrap();
        Some(Self {
            dir,
            broker,
            key,
            pubkey,
            flashmap: flashmap(flashmap_name),
        })
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.broker.port)
    }

    /// Signs `exe` as `version` with `otactl sign`, with the parameters the flash map implies.
    pub fn sign(&self, exe: &Path, version: &str) -> PathBuf {
        let map = infineon::load(&self.flashmap, None).unwrap();
        let p = map.sign_params();
        let out_path = self.dir.path().join(format!("app-{version}.bin"));
        let mut cmd = util::otactl();
        cmd.arg("sign")
            .arg("-k")
            .arg(&self.key)
            .args(["-v", version, "--pad-header", "-H", "0x400"])
            .args(["-S", &p.slot_size.to_string()])
            .args(["-M", &p.max_sectors.to_string()])
            .args(["--align", &p.align.to_string()])
            .args(["-R", if p.erased_val == 0 { "0" } else { "0xff" }]);
        if p.overwrite_only {
            cmd.arg("--overwrite-only");
        }
        let out = util::run(cmd.arg(exe).arg(&out_path));
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out_path
    }

    /// The good 1.0.0 and 1.1.0 builds, signed.
    pub fn v100_v110(&self) -> (PathBuf, PathBuf) {
        let a = apps();
        (self.sign(&a.v100, "1.0.0"), self.sign(&a.v110, "1.1.0"))
    }

    /// The board of this world (flash in `name/`).
    pub fn board(&self, name: &str) -> BoardSpec {
        let d = self.dir.path().join(name);
        BoardSpec {
            simboard: apps().simboard.clone(),
            flash: d.join("flash"),
            flashmap: self.flashmap.clone(),
            pubkey: self.pubkey.clone(),
            workdir: d.join("run"),
            broker: self.url(),
            tls: None,
            tls_server_name: None,
            check_secs: 1.0,
            watchdog_ms: 1500,
            boot_erase_delay_us: 0,
            serial: Some(format!("E2E-{name}")),
            flow: None,
        }
    }

    /// Starts `otactl publish` serving `image`, with the state file `state.json`.
    pub fn publish(&self, image: &Path) -> Publisher {
        self.publish_to(image, &self.url(), &[])
    }

    /// `otactl publish` serving `image` through the broker at `url`, with `extra` flags (TLS).
    pub fn publish_to(&self, image: &Path, url: &str, extra: &[&std::ffi::OsStr]) -> Publisher {
        let mut child = util::otactl()
            .arg("publish")
            .args(["--broker", url])
            // The boards here take a push far faster than the Wi-Fi MCU of the default pace.
            .args(["--device-rate", "8388608"])
            .args(extra)
            .arg("--image")
            .arg(format!("{BOARD}={}", image.display()))
            .arg("--key")
            .arg(&self.pubkey)
            .arg("--state")
            .arg(self.dir.path().join("state.json"))
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("otactl publish");
        let (tx, rx) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        let mut p = Publisher {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        p.wait_for(r#""event":"connected""#, STEP);
        p
    }
}

/// A running `otactl publish`, killed (by its own PID) on drop.
pub struct Publisher {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Publisher {
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "publisher never printed {needle:?} ({e:?}); it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `needle` in the board transcript or fails with the transcript.
pub fn expect(board: &mut Board, needle: &str) -> String {
    board
        .wait_for(needle, STEP)
        .unwrap_or_else(|e| panic!("waiting for the board to print {needle:?}: {e}"))
}

/// Echo the transcript into the test output (shown on failure or with --nocapture).
pub fn echo(board: &mut Board, name: &'static str) {
    board.echo(move |l| eprintln!("[{name}] {l}"));
}

/// Starts a board, echoing its transcript.
pub fn start(spec: &BoardSpec, provision: Option<&Path>, name: &'static str) -> Board {
    let mut b = Board::start(spec, provision).unwrap_or_else(|e| panic!("starting the board: {e}"));
    echo(&mut b, name);
    b
}
