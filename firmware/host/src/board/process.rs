//! A board as a child process: start `otactl-simboard` from a [`BoardSpec`], follow its
//! transcript line by line, wait (bounded) for the line a step expects, and pull the plug.
//!
//! Killing the process is a power cut (see the module docs of [`super`]): the next start with
//! the same flash directory resumes whatever was in progress.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cli::BoardSpec;

/// Called with every transcript line as it is read.
pub type Echo = Box<dyn FnMut(&str) + Send>;

/// The line a wait expected did not come.
#[derive(Debug)]
#[non_exhaustive]
pub enum WaitError {
    /// The time ran out first.
    Timeout {
        /// How long the wait was.
        after: Duration,
        /// The board's last transcript lines.
        tail: String,
    },
    /// The board process ended first.
    Exited {
        /// The board's last transcript lines.
        tail: String,
    },
}

impl core::fmt::Display for WaitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Timeout { after, tail } => {
                write!(f, "timed out after {after:?}; last lines:\n{tail}")
            }
            Self::Exited { tail } => write!(f, "the board exited; last lines:\n{tail}"),
        }
    }
}

impl std::error::Error for WaitError {}

/// A running board: its process and its transcript so far. Dropping it kills the board.
pub struct BoardProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every transcript line read so far.
    pub transcript: Vec<String>,
    echo: Option<Echo>,
}

impl BoardProcess {
    /// Starts the board `spec` describes; with `provision`, it first writes that signed image
    /// into the primary slot (like a programmer would).
    ///
    /// # Errors
    /// The executable could not be started.
    pub fn start(spec: &BoardSpec, provision: Option<&Path>) -> std::io::Result<Self> {
        let mut child = Command::new(&spec.simboard)
            .args(spec.args(provision))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            lines: rx,
            transcript: Vec::new(),
            echo: None,
        })
    }

    /// Calls `f` with every transcript line as it is read.
    pub fn echo(&mut self, f: impl FnMut(&str) + Send + 'static) {
        self.echo = Some(Box::new(f));
    }

    /// Reads transcript lines until one contains `needle`; returns it.
    ///
    /// # Errors
    /// `timeout` passed, or the board exited, first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, WaitError> {
        self.wait_until(|l| l.contains(needle), timeout)
    }

    /// Reads transcript lines until `pred` holds for one; returns it.
    ///
    /// # Errors
    /// `timeout` passed, or the board exited, first.
    pub fn wait_until(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, WaitError> {
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
                    return Err(WaitError::Timeout {
                        after: timeout,
                        tail: self.tail(15),
                    })
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(WaitError::Exited {
                        tail: self.tail(15),
                    })
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

    /// Pulls the plug: kills the board process (its application follows: it reads EOF on the
    /// board's "power" pipe, see [`super::launch`]).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep what it printed before it died.
        while let Ok(line) = self.lines.try_recv() {
            self.transcript.push(line);
        }
    }
}

impl Drop for BoardProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
