//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod awsfront;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The otactl binary cargo built for these tests.
pub fn otactl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_otactl"));
    c.env_remove("OTACTL_CONFIG");
    c
}

/// Runs a command and returns its output, printing stderr on failure for diagnosis.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

/// `tests/data`: everything the tests read that is not code (made by `scripts/make-test-data.sh`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The imgtool 2.5.0 vectors, their inputs and the test key (`tests/data/vectors`).
pub fn vectors_dir() -> PathBuf {
    data_dir().join("vectors")
}

/// Flash maps in Infineon's schemas with Infineon's values (`tests/data/flashmap`).
pub fn flashmap_dir() -> PathBuf {
    data_dir().join("flashmap")
}

/// Whether CI demands every external tool (a missing one is a failure, never a skip).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("OTA_REQUIRE_E2E").is_ok_and(|v| v == "1")
}

/// Finds `tool` on PATH, or in the Python venvs: `$OTACTL_VENV/bin` and `.venv/bin` (imgtool),
/// `$OTACTL_CST_VENV/bin` and `.venv-cst/bin` (cysecuretools, which pins other versions of
/// imgtool's dependencies); `None` means skip, unless [`required`], which panics.
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for var in ["OTACTL_VENV", "OTACTL_CST_VENV"] {
        if let Some(v) = std::env::var_os(var) {
            dirs.push(PathBuf::from(v).join("bin"));
        }
    }
    for venv in [".venv", ".venv-cst"] {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(venv).join("bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.push(PathBuf::from("/usr/sbin"));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    if required() {
        panic!("{name} is required (CI=true) but was not found on PATH or in .venv/bin");
    }
    eprintln!("skipping: {name} not found (install it, or run .ci/run)");
    None
}

/// The write end of a pipe whose read end is already closed: a child given it as stdout finds
/// its reader gone at its first write (`otactl … | head` after head exited).
pub fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Runs `cmd` to its end, at most `limit` (then it is killed and the test fails).
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

/// The lines a child writes to its (piped) stdout, read by a thread of their own.
pub fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line from [`lines_of`] containing `needle`; `None` when `limit` passes
/// or the child closed its stdout first.
pub fn wait_line(
    lines: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    limit: std::time::Duration,
) -> Option<String> {
    let end = std::time::Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// A child process of ours (`otactl publish`, …), killed by its PID and reaped on drop.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bind to :0, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until a TCP connect to `127.0.0.1:port` succeeds or `timeout` passes.
pub fn wait_for_port(port: u16, timeout: std::time::Duration) -> bool {
    wait_for_addr(std::net::SocketAddr::from(([127, 0, 0, 1], port)), timeout)
}

/// Polls until a TCP connect to `addr` succeeds or `timeout` passes (a broker's second and
/// later listeners open after the first one).
pub fn wait_for_addr(addr: std::net::SocketAddr, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
            .is_ok()
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// A real mosquitto broker, our own child process, killed (by its PID only) on drop.
pub struct Mosquitto {
    child: Option<std::process::Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    conf: PathBuf,
    log: PathBuf,
    bin: PathBuf,
}

impl Mosquitto {
    /// Starts mosquitto with the config file `conf`, which must listen on `port`.
    /// `None` (skip) when mosquitto is not installed and CI does not require it.
    pub fn start(conf: &Path, port: u16) -> Option<Self> {
        let bin = tool("mosquitto").or_else(|| {
            let p = PathBuf::from("/usr/sbin/mosquitto");
            p.is_file().then_some(p)
        })?;
        let log = conf.with_extension("log");
        let mut m = Self {
            child: None,
            port,
            conf: conf.to_path_buf(),
            log,
            bin,
        };
        m.restart();
        Some(m)
    }

    /// A plain (no TLS) anonymous broker on a free loopback port, config in `dir`.
    pub fn start_plain(dir: &Path) -> Option<Self> {
        let port = free_port();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_inflight_messages 0\nmax_queued_messages 10000\n"),
        )
        .unwrap();
        Self::start(&conf, port)
    }

    /// A broker with Debian's default limits (`max_queued_messages 1000`, `max_inflight_messages
    /// 20`): what a publisher meets on a stock mosquitto.
    pub fn start_stock(dir: &Path) -> Option<Self> {
        let port = free_port();
        let conf = dir.join(format!("mosquitto-stock-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        Self::start(&conf, port)
    }

    /// Stops the broker (kill + wait); `restart` brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the broker and waits until it accepts connections (10 s timeout).
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        // Generous: on a loaded 2-core machine (CI beside other builds) mosquitto once took
        // more than 10 s to start; the wait ends as soon as it listens, or when it exits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let listening = loop {
            if wait_for_port(self.port, std::time::Duration::from_millis(500)) {
                break true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || std::time::Instant::now() >= deadline {
                break false;
            }
        };
        assert!(
            listening,
            "mosquitto did not listen on {} within 30 s (exit status: {:?}); log:\n{}",
            self.port,
            self.child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten()),
            self.log_text()
        );
    }

    /// What mosquitto logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
