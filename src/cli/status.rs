//! `otactl status`: what a publisher's state file says about devices.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use std::time::Duration;

use otactl::publish::state::now;
use otactl::publish::{State, StateLock};

use super::Ctx;

/// Show devices, versions, last seen, last results and blocked versions from a publisher's state
/// file.
///
/// The state file is only read (a publisher replaces it atomically, so it can be read at any
/// time); `--watch` redraws it every few seconds while a publisher runs. `--unblock` lets a
/// blocked version be offered again. It needs the state file to itself: while a publisher runs
/// on it, stop the publisher first (or restart it with `--unblock`). Devices marked
/// "unidentified" share the example's template serial (or a serial seen from two devices at
/// once): they are never blocked automatically.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  otactl status --state otactl-state.json
  otactl status --watch
  otactl status --unblock APP_CY8CPROTO_062S2_43439/ABC213450001")]
pub struct Cmd {
    /// The publisher's state file.
    #[arg(long, value_name = "FILE", default_value = "otactl-state.json")]
    state: PathBuf,
    /// Clear blocked versions of DEVICE ("all" for every device).
    #[arg(long, value_name = "DEVICE")]
    unblock: Option<String>,
    /// With --unblock: only this version (e.g. 1.2.0).
    #[arg(long = "only-version", value_name = "VERSION", requires = "unblock")]
    only_version: Option<String>,
    /// Print the state as JSON.
    #[arg(long)]
    json: bool,
    /// Redraw every SECS seconds (default 2) until Ctrl-C; waits for a state file that does not
    /// exist yet. Reads only.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2",
          value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with_all = ["unblock", "json"])]
    watch: Option<u64>,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        if let Some(secs) = self.watch {
            return self.watch(Duration::from_secs(secs));
        }
        if !self.state.exists() {
            anyhow::bail!(
                "{}: no such state file (pass --state)",
                self.state.display()
            );
        }
        if let Some(d) = &self.unblock {
            let _lock = StateLock::acquire(&self.state, "otactl status --unblock")?;
            let mut st = State::load(&self.state)?;
            let key = (d != "all").then_some(d.as_str());
            if key.is_some_and(|k| !st.devices.contains_key(k)) {
                anyhow::bail!("{}: no device {d:?}", self.state.display());
            }
            let n = st.unblock(key, self.only_version.as_deref());
            st.save(&self.state)?;
            outln!("unblocked {n} version(s)");
            return Ok(());
        }
        let st = State::load(&self.state)?;
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&st)?);
            return Ok(());
        }
        outln!("{}", table(&st, now()));
        Ok(())
    }

    /// Redraws the table every `every` (on a terminal in place, otherwise one frame after the
    /// other, separated by a blank line) until the process is interrupted.
    fn watch(&self, every: Duration) -> Result<()> {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        loop {
            let body = if self.state.exists() {
                State::load(&self.state).map_or_else(
                    |e| format!("error: {}", super::error_text(&e.into())),
                    |st| table(&st, now()),
                )
            } else {
                format!(
                    "waiting for {} (no publisher has written it yet)",
                    self.state.display()
                )
            };
            let head = format!(
                "{} at {}, every {} s (Ctrl-C to stop){}",
                self.state.display(),
                clock(now()),
                every.as_secs(),
                holder(&self.state).map_or_else(String::new, |h| format!("; in use by {h}"))
            );
            let clear = if tty { "\x1b[H\x1b[2J" } else { "" };
            outln!("{clear}{head}\n\n{body}\n");
            std::thread::sleep(every);
        }
    }
}

/// The device table.
fn table(st: &State, now: u64) -> String {
    let mut out = format!(
        "{:<44} {:<9} {:<13} {:<22} BLOCKED",
        "DEVICE", "VERSION", "LAST SEEN", "LAST RESULT"
    );
    for (k, r) in &st.devices {
        let last = r.last_result.as_ref().map_or_else(
            || "-".to_string(),
            |l| format!("{} {}", l.result, l.version),
        );
        let blocked: Vec<&str> = r.blocked.iter().map(String::as_str).collect();
        let shared = if r.shared { " (unidentified)" } else { "" };
        out.push_str(&format!(
            "\n{:<44} {:<9} {:<13} {:<22} {}{shared}",
            k,
            r.version.as_deref().unwrap_or("-"),
            ago(now, r.last_seen),
            last,
            if blocked.is_empty() {
                "-".to_string()
            } else {
                blocked.join(",")
            }
        ));
    }
    out
}

/// `12 s ago`, `3 min ago`, `5 h ago`, `2 d ago`; `-` for never.
fn ago(now: u64, then: u64) -> String {
    if then == 0 {
        return "-".into();
    }
    let s = now.saturating_sub(then);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock(t: u64) -> String {
    format!("{:02}:{:02}:{:02} UTC", t / 3600 % 24, t / 60 % 60, t % 60)
}

/// Who the lock file next to the state names (a running publisher writes itself there and
/// empties it when it stops); read only, never locked.
fn holder(state: &std::path::Path) -> Option<String> {
    let mut name = state.file_name()?.to_os_string();
    name.push(".lock");
    let text = std::fs::read_to_string(state.with_file_name(name)).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_seen_reads_as_a_duration() {
        assert_eq!(ago(1000, 0), "-");
        assert_eq!(ago(1000, 988), "12 s ago");
        assert_eq!(ago(1000, 1005), "0 s ago");
        assert_eq!(ago(10_000, 9_000), "16 min ago");
        assert_eq!(ago(100_000, 80_000), "5 h ago");
        assert_eq!(ago(1_000_000, 800_000), "2 d ago");
        assert_eq!(clock(3600 * 25 + 61), "01:01:01 UTC");
    }
}
