//! Running the booted application as a child process, with the board's watchdog.
//!
//! The link between board and application is three pipes:
//!
//! | pipe | direction | meaning |
//! | --- | --- | --- |
//! | stdin | board → app | "power": the board never writes; when the board dies the app reads EOF and stops |
//! | stdout | app → board | transcript lines (`tag: message`), and [`FEED`] lines that kick the watchdog |
//! | exit code | app → board | [`RESET_EXIT_CODE`] = `NVIC_SystemReset()`; anything else is a crash |
//!
//! The watchdog runs from the moment the app starts (MCUboot starts the WDT before it jumps to the
//! application); the app must print [`FEED`] at least once per timeout or it is killed and the
//! board resets.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::transcript;

/// The stdout line that feeds the watchdog.
pub const FEED: &str = "@wdt";
/// The exit code with which the application requests a system reset.
pub const RESET_EXIT_CODE: i32 = 75;

/// How an application run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEnd {
    /// The application asked for a reset (after an update, for instance).
    ResetRequested,
    /// The watchdog was not fed in time; the board killed the application.
    WatchdogTimeout,
    /// The application ended on its own without asking for a reset (a crash, on a real MCU a
    /// HardFault followed by a reset).
    Crashed(String),
}

enum Event {
    Feed,
    Line(String),
    Eof,
}

/// Runs `exe` with `env` until it requests a reset, crashes or starves the `watchdog`.
///
/// # Errors
/// The executable could not be started.
pub fn run_app(
    exe: &Path,
    env: &[(String, String)],
    watchdog: Duration,
) -> std::io::Result<AppEnd> {
    let mut child = Command::new(exe)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let ev = if line == FEED {
                Event::Feed
            } else {
                Event::Line(line)
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::Eof);
    });
    let end = supervise(&mut child, &rx, watchdog);
    // The stdin pipe (the app's "power") closes when `child` drops.
    Ok(end)
}

fn supervise(child: &mut Child, rx: &mpsc::Receiver<Event>, watchdog: Duration) -> AppEnd {
    let mut deadline = Instant::now() + watchdog;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Feed) => deadline = Instant::now() + watchdog,
            Ok(Event::Line(l)) => transcript::relay(&l),
            Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return exit_reason(child.wait());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                // Lines already printed before the hang still belong in the transcript.
                while let Ok(Event::Line(l)) = rx.try_recv() {
                    transcript::relay(&l);
                }
                return AppEnd::WatchdogTimeout;
            }
        }
    }
}

fn exit_reason(status: std::io::Result<ExitStatus>) -> AppEnd {
    match status {
        Ok(s) if s.code() == Some(RESET_EXIT_CODE) => AppEnd::ResetRequested,
        Ok(s) => AppEnd::Crashed(s.to_string()),
        Err(e) => AppEnd::Crashed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, watchdog_ms: u64) -> AppEnd {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("app.sh");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        run_app(&exe, &[], Duration::from_millis(watchdog_ms)).unwrap()
    }

    #[test]
    fn reset_exit_code_is_a_reset_request() {
        assert_eq!(sh("echo app: hi; exit 75", 5000), AppEnd::ResetRequested);
    }

    #[test]
    fn other_exit_is_a_crash() {
        assert!(matches!(sh("exit 3", 5000), AppEnd::Crashed(_)));
    }

    #[test]
    fn app_that_never_feeds_is_killed_by_the_watchdog() {
        // `read` blocks on the stdin pipe the board never writes: a hang.
        assert_eq!(sh("read x", 200), AppEnd::WatchdogTimeout);
    }

    #[test]
    fn feeding_keeps_the_app_alive_past_the_timeout() {
        let script = "for i in 1 2 3 4 5 6; do echo @wdt; sleep 0.1; done; exit 75";
        assert_eq!(sh(script, 400), AppEnd::ResetRequested);
    }
}
