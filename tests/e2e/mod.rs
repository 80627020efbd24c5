//! End to end: a real mosquitto, `otactl publish` (the binary) and `simboard` running the real
//! device application, whose versions are read from the board's transcript.
//!
//! The device application is built once per test run (three versions, like the demo) into
//! `target/e2e/`, a target directory of its own so the nested cargo never waits for the lock
//! of the cargo running these tests.

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

use firmware::flashmap::infineon;
use otactl::demo::board::{Board, BoardSpec};
use otactl::demo::build::{AppSpec, Builder};

use crate::util::{self, Mosquitto};

pub const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Generous bound for one step of the story (builds are done before any timer starts).
pub const STEP: Duration = Duration::from_secs(60);

/// The three application builds and the board executable.
pub struct Apps {
    pub simboard: PathBuf,
    pub v100: PathBuf,
    pub v110: PathBuf,
    pub v120_bad: PathBuf,
}

fn build_apps() -> Apps {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let out = target.join("e2e").join("apps");
    std::fs::create_dir_all(&out).unwrap();
    let b = Builder {
        source_dir: root.clone(),
        target_dir: Some(target.join("e2e")),
        verbose: true,
    };
    let one = |spec: AppSpec, name: &str, with_board: bool| -> PathBuf {
        let bins: &[&str] = if with_board {
            &["devapp", "simboard"]
        } else {
            &["devapp"]
        };
        let exes = b.build(&spec, bins).unwrap_or_else(|e| panic!("{e:#}"));
        let dest = out.join(name);
        std::fs::copy(&exes[0], &dest).unwrap();
        if with_board {
            std::fs::copy(&exes[1], out.join("simboard")).unwrap();
        }
        dest
    };
    let v100 = one(AppSpec::good("1.0.0", 1000), "devapp-1.0.0", true);
    let v110 = one(AppSpec::good("1.1.0", 250), "devapp-1.1.0", false);
    let v120_bad = one(AppSpec::bad("1.2.0", 100), "devapp-1.2.0", false);
    Apps {
        simboard: out.join("simboard"),
        v100,
        v110,
        v120_bad,
    }
}

/// The builds, made on first use.
pub fn apps() -> &'static Apps {
    static APPS: OnceLock<Apps> = OnceLock::new();
    APPS.get_or_init(build_apps)
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
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Echo the transcript into the test output (shown on failure or with --nocapture).
pub fn echo(board: &mut Board, name: &'static str) {
    board.echo(move |l| eprintln!("[{name}] {l}"));
}

/// Starts a board, echoing its transcript.
pub fn start(spec: &BoardSpec, provision: Option<&Path>, name: &'static str) -> Board {
    let mut b = spec.start(provision).unwrap_or_else(|e| panic!("{e:#}"));
    echo(&mut b, name);
    b
}
