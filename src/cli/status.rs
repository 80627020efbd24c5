//! `otactl status`: what a publisher's state file says about devices.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use otactl::publish::{State, StateLock};

use super::Ctx;

/// Show devices, versions, last results and blocked versions from a publisher's state file.
///
/// `--unblock` lets a blocked version be offered again. It needs the state file to itself: while
/// a publisher runs on it, stop the publisher first (or restart it with `--unblock`). Devices
/// marked "unidentified" share the example's template serial (or a serial seen from two devices
/// at once): they are never blocked automatically.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  otactl status --state otactl-state.json\n  otactl status --unblock APP_CY8CPROTO_062S2_43439/ABC213450001"
)]
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
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
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
        outln!(
            "{:<44} {:<9} {:<22} BLOCKED",
            "DEVICE",
            "VERSION",
            "LAST RESULT"
        );
        for (k, r) in &st.devices {
            let last = r.last_result.as_ref().map_or_else(
                || "-".to_string(),
                |l| format!("{} {}", l.result, l.version),
            );
            let blocked: Vec<&str> = r.blocked.iter().map(String::as_str).collect();
            let shared = if r.shared { " (unidentified)" } else { "" };
            outln!(
                "{:<44} {:<9} {:<22} {}{shared}",
                k,
                r.version.as_deref().unwrap_or("-"),
                last,
                if blocked.is_empty() {
                    "-".to_string()
                } else {
                    blocked.join(",")
                }
            );
        }
        Ok(())
    }
}
