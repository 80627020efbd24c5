//! `otactl status`: what a publisher's state database says about devices, and their history.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use std::time::Duration;

use otactl::publish::state::now;
use otactl::publish::store::{self, HistoryEvent, Store};
use otactl::publish::State;

use super::Ctx;

/// Show devices, versions, last seen, last results and blocked versions from a publisher's state
/// database, or one device's history.
///
/// Reading works at any time, also while a publisher runs on the database; `--watch` redraws
/// every few seconds. `--unblock` lets a blocked version be offered again; a running publisher
/// honours it at once (within a fraction of a second) and never writes the block back. Devices
/// marked "unidentified" share the example's template serial (or a serial seen from two devices
/// at once): they are never blocked automatically. A JSON state file of an older otactl is
/// imported once (see `otactl publish --help`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  otactl status --state otactl-state.db
  otactl status --watch
  otactl status --history APP_CY8CPROTO_062S2_43439/SN-0042
  otactl status --unblock APP_CY8CPROTO_062S2_43439/SN-0042")]
pub struct Cmd {
    /// The publisher's state database: a SQLite FILE (a FILE.json means FILE.db, importing the
    /// JSON once) or postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, value_name = "FILE|URL", default_value = "otactl-state.db")]
    state: PathBuf,
    /// Clear blocked versions of DEVICE ("all" for every device).
    #[arg(long, value_name = "DEVICE", conflicts_with = "history")]
    unblock: Option<String>,
    /// With --unblock: only this version (e.g. 1.2.0).
    #[arg(long = "only-version", value_name = "VERSION", requires = "unblock")]
    only_version: Option<String>,
    /// Show DEVICE's history: every offer, transfer, result, revert, block and unblock, with
    /// the time and the publisher that recorded it.
    #[arg(long, value_name = "DEVICE")]
    history: Option<String>,
    /// Print the state (or the history) as JSON.
    #[arg(long)]
    json: bool,
    /// Redraw every SECS seconds (default 2) until Ctrl-C; waits for a state database that does
    /// not exist yet. Reads only.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2",
          value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with_all = ["unblock", "json", "history"])]
    watch: Option<u64>,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        if let Some(secs) = self.watch {
            return self.watch(Duration::from_secs(secs));
        }
        if !store::exists(&self.state) {
            anyhow::bail!(
                "{}: no such state database, and no {} to import (pass --state)",
                store::database_path(&self.state).display(),
                store::legacy_path(&self.state).display()
            );
        }
        let who = store::command_id(if self.unblock.is_some() {
            "otactl status --unblock"
        } else {
            "otactl status"
        });
        let mut db = self.open(&who)?;
        if let Some(d) = &self.unblock {
            let key = (d != "all").then_some(d.as_str());
            let n = db.unblock(key, self.only_version.as_deref())?;
            outln!("unblocked {n} version(s)");
            return Ok(());
        }
        if let Some(d) = &self.history {
            let h = db.history(d)?;
            if self.json {
                outln!("{}", serde_json::to_string_pretty(&h)?);
            } else if h.is_empty() {
                anyhow::bail!("{}: no history for {d:?}", db.describe());
            } else {
                outln!("{}", history_table(&h));
            }
            return Ok(());
        }
        let st = db.load()?;
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&st)?);
            return Ok(());
        }
        outln!("{}", table(&st, now()));
        Ok(())
    }

    /// Opens the database (importing a JSON state file once, which is said).
    fn open(&self, who: &str) -> Result<Box<dyn Store>> {
        let (db, imported) = store::open(&self.state, who)?;
        if let Some(i) = imported {
            eprintln!("note: {i}");
        }
        Ok(db)
    }

    /// Redraws the table every `every` (on a terminal in place, otherwise one frame after the
    /// other, separated by a blank line) until the process is interrupted.
    fn watch(&self, every: Duration) -> Result<()> {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let path = store::database_path(&self.state);
        let shown = store::describe(&self.state);
        let who = store::command_id("otactl status --watch");
        loop {
            let body = if store::exists(&self.state) {
                self.open(&who)
                    .and_then(|mut db| Ok(db.load()?))
                    .map_or_else(
                        |e| format!("error: {}", super::error_text(&e)),
                        |st| table(&st, now()),
                    )
            } else {
                format!("waiting for {shown} (no publisher has written it yet)")
            };
            let head = format!(
                "{} at {}, every {} s (Ctrl-C to stop){}",
                shown,
                clock(now()),
                every.as_secs(),
                holder(&path).map_or_else(String::new, |h| format!("; in use by {h}"))
            );
            let clear = if tty { "\x1b[H\x1b[2J" } else { "" };
            outln!("{clear}{head}\n\n{body}\n");
            std::thread::sleep(every);
        }
    }
}

/// One line per event, oldest first.
fn history_table(h: &[HistoryEvent]) -> String {
    let mut out = format!(
        "{:<20} {:<9} {:<9} {:<22} PUBLISHER",
        "TIME (UTC)", "EVENT", "VERSION", "DETAIL"
    );
    for e in h {
        out.push_str(&format!(
            "\n{:<20} {:<9} {:<9} {:<22} {}",
            date_time(e.at),
            e.kind.as_str(),
            e.version,
            if e.detail.is_empty() { "-" } else { &e.detail },
            e.publisher
        ));
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time.
fn date_time(t: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64).map_or_else(
        |_| t.to_string(),
        |d| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        },
    )
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
        assert_eq!(date_time(86_400 + 61), "1970-01-02 00:01:01");
    }
}
