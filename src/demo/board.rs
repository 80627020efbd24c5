//! Running `simboard` as a child process and following its transcript.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How to start a board.
#[derive(Clone, Debug)]
pub struct BoardSpec {
    /// The `simboard` executable.
    pub simboard: PathBuf,
    /// Its flash file (created on first use).
    pub flash: PathBuf,
    /// Its flash map.
    pub flashmap: PathBuf,
    /// The bootloader's public key (PEM).
    pub pubkey: PathBuf,
    /// Where it extracts the executables it boots.
    pub workdir: PathBuf,
    /// Broker URL for the application (`mqtt://…` or `mqtts://…`).
    pub broker: String,
    /// CA, client certificate and key for `mqtts://`.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// The name the broker's certificate is verified under, when it does not name the address
    /// (`mosquitto_server` for Infineon's generate_ssl_cert.sh broker).
    pub tls_server_name: Option<String>,
    /// Seconds between the application's update checks.
    pub check_secs: f64,
    /// Watchdog timeout in milliseconds.
    pub watchdog_ms: u64,
    /// Delay per flash erase while the bootloader runs (makes swaps long enough to watch or
    /// interrupt), in microseconds.
    pub boot_erase_delay_us: u64,
    /// The `SerialNumber` its requests carry (`None`: the example's template serial, which
    /// the publisher cannot tell apart from other boards').
    pub serial: Option<String>,
    /// The application's download flow (`push` or `chunks`; `None`: the app's default, push).
    pub flow: Option<String>,
}

/// Called with every transcript line as it is read.
pub type Echo = Box<dyn FnMut(&str) + Send>;

/// A running board: its process and its transcript so far.
pub struct Board {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every transcript line read so far.
    pub transcript: Vec<String>,
    echo: Option<Echo>,
}

impl BoardSpec {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.simboard);
        c.arg("--flash")
            .arg(&self.flash)
            .arg("--flashmap")
            .arg(&self.flashmap)
            .arg("--pubkey")
            .arg(&self.pubkey)
            .arg("--workdir")
            .arg(&self.workdir)
            .arg("--broker")
            .arg(&self.broker)
            .arg("--check-secs")
            .arg(self.check_secs.to_string())
            .arg("--watchdog-ms")
            .arg(self.watchdog_ms.to_string())
            .arg("--boot-erase-delay-us")
            .arg(self.boot_erase_delay_us.to_string());
        if let Some(serial) = &self.serial {
            c.arg("--serial").arg(serial);
        }
        if let Some(flow) = &self.flow {
            c.arg("--flow").arg(flow);
        }
        if let Some(name) = &self.tls_server_name {
            c.arg("--tls-server-name").arg(name);
        }
        if let Some((ca, cert, key)) = &self.tls {
            c.arg("--ca")
                .arg(ca)
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
        }
        c
    }

    /// Starts the board; with `provision`, first writes that signed image into the primary slot
    /// (like a programmer would).
    ///
    /// # Errors
    /// The board could not be started.
    pub fn start(&self, provision: Option<&Path>) -> Result<Board> {
        let mut cmd = self.command();
        if let Some(p) = provision {
            cmd.arg("--provision").arg(p);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.simboard.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Board {
            child,
            lines: rx,
            transcript: Vec::new(),
            echo: None,
        })
    }
}

impl Board {
    /// Calls `f` with every transcript line as it is read.
    pub fn echo(&mut self, f: impl FnMut(&str) + Send + 'static) {
        self.echo = Some(Box::new(f));
    }

    /// Reads transcript lines until one contains `needle`; returns it.
    ///
    /// # Errors
    /// `timeout` passed, or the board exited, first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.wait_until(|l| l.contains(needle), timeout)
            .with_context(|| format!("waiting for the board to print {needle:?}"))
    }

    /// Reads transcript lines until `pred` holds for one; returns it.
    ///
    /// # Errors
    /// `timeout` passed, or the board exited, first.
    pub fn wait_until(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(f) = self.echo.as_mut() {
                        f(&line);
                    }
                    self.transcript.push(line.clone());
                    if pred(&line) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "timed out after {timeout:?}; last lines:\n{}",
                        self.tail(15)
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the board exited; last lines:\n{}", self.tail(15))
                }
            }
        }
    }

    /// The last `n` transcript lines, one per line.
    #[must_use]
    pub fn tail(&self, n: usize) -> String {
        let from = self.transcript.len().saturating_sub(n);
        self.transcript[from..].join("\n")
    }

    /// Pulls the plug: kills the board process (its application follows, see `firmware::board`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep what it printed before it died.
        while let Ok(line) = self.lines.try_recv() {
            self.transcript.push(line);
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.kill();
    }
}
