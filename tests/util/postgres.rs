//! A private PostgreSQL server for a test: `initdb` into a temp dir, `postgres` on a free
//! loopback port, both children of the test, stopped by their PID on drop. Found in
//! `/usr/lib/postgresql/*/bin` (Debian's layout, newest first) or on PATH; a missing one skips
//! the test, unless CI requires every tool ([`super::required`]). PostgreSQL refuses to run as
//! root: then the server runs as the `postgres` system user (the package creates it).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server, its data folder and port.
pub struct Postgres {
    child: Option<Child>,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `(uid, gid)` it runs as, when the test runs as root.
    user: Option<(u32, u32)>,
    _dir: tempfile::TempDir,
}

/// The folder holding `initdb` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("postgres").is_file() && b.join("initdb").is_file())
        .collect();
    // Newest major version first (numeric: 9 < 15).
    found.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|d| d.join("postgres").is_file() && d.join("initdb").is_file())
    })
}

/// uid and gid of the `postgres` user (from /etc/passwd) when this process is root.
fn unprivileged() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let uid: u32 = uid_line.split_whitespace().nth(1)?.parse().ok()?;
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let mut f = line.split(':').skip(2);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

fn chown_all(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_all(&e.unwrap().path(), uid, gid);
        }
    }
}

impl Postgres {
    /// A fresh cluster, started and accepting connections. `None` (skip) when PostgreSQL is
    /// not installed and CI does not require it.
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                !super::required(),
                "PostgreSQL is required (CI=true) but no /usr/lib/postgresql/*/bin/postgres was found (apt-get install postgresql)"
            );
            eprintln!(
                "skipping: PostgreSQL not found (apt-get install postgresql, or run .ci/run)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let user = unprivileged();
        if let Some((uid, gid)) = user {
            chown_all(dir.path(), uid, gid);
        }
        let data = dir.path().join("data");
        let mut init = Command::new(bin.join("initdb"));
        init.args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = user {
            init.uid(uid).gid(gid);
        }
        let out = init.output().unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Self {
            child: None,
            log: dir.path().join("postgres.log"),
            bin,
            data,
            port: super::free_port(),
            user,
            _dir: dir,
        };
        pg.restart();
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts a session.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            // No socket file (its default folder may not exist); no fsync: a test cluster.
            .args(["-c", "unix_socket_directories=", "-c", "fsync=off"])
            .args(["-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        self.child = Some(cmd.spawn().unwrap());
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if postgres::Client::connect(&self.url(), postgres::NoTls).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("postgres exited ({st}): {}", self.log_text());
            }
            assert!(
                Instant::now() < end,
                "postgres not ready within 30 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: SIGINT to its PID, then SIGKILL if it lingers).
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if c.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// A session of the test's own.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
