//! Building the device application the way the example's Makefile does: one `cargo build` per
//! version, with `APP_VERSION` and `BLINKY_DELAY_MS` in the environment and the `test-revert`
//! feature for the bad image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One build of the device application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// `APP_VERSION`, `major.minor.build`.
    pub version: String,
    /// `BLINKY_DELAY_MS`.
    pub blinky_ms: u64,
    /// Build the `TEST_REVERT` image (hangs, never feeds the watchdog).
    pub test_revert: bool,
}

impl AppSpec {
    /// A good image.
    #[must_use]
    pub fn good(version: &str, blinky_ms: u64) -> Self {
        Self {
            version: version.into(),
            blinky_ms,
            test_revert: false,
        }
    }

    /// A `TEST_REVERT` image.
    #[must_use]
    pub fn bad(version: &str, blinky_ms: u64) -> Self {
        Self {
            version: version.into(),
            blinky_ms,
            test_revert: true,
        }
    }
}

/// Where the workspace is and how cargo should build.
#[derive(Clone, Debug)]
pub struct Builder {
    /// The otactl workspace (holds `firmware/`).
    pub source_dir: PathBuf,
    /// `CARGO_TARGET_DIR` for the builds; `None` uses the workspace's default.
    pub target_dir: Option<PathBuf>,
    /// Show cargo's own output (else it is captured and shown only on failure).
    pub verbose: bool,
}

impl Builder {
    /// Builds otactl's own workspace (the source tree this otactl was built from).
    #[must_use]
    pub fn this_workspace() -> Self {
        Self {
            source_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            target_dir: None,
            verbose: false,
        }
    }

    fn cargo(&self) -> Command {
        // Under `cargo run`/`cargo test`, CARGO names the cargo that is running us.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.current_dir(&self.source_dir);
        if let Some(t) = &self.target_dir {
            c.env("CARGO_TARGET_DIR", t);
        }
        c
    }

    /// Builds `bins` of the firmware crate (release profile) for `spec` and returns the paths
    /// of the executables cargo produced, in the order of `bins`.
    ///
    /// # Errors
    /// cargo failed (its output is in the error) or did not report an executable.
    pub fn build(&self, spec: &AppSpec, bins: &[&str]) -> Result<Vec<PathBuf>> {
        let features = if spec.test_revert {
            "host,test-revert"
        } else {
            "host"
        };
        let mut cmd = self.cargo();
        cmd.args([
            "build",
            "--release",
            "--locked",
            "-p",
            "firmware",
            "--features",
        ])
        .arg(features)
        .arg("--message-format=json-render-diagnostics")
        .env("APP_VERSION", &spec.version)
        .env("BLINKY_DELAY_MS", spec.blinky_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(if self.verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
        for b in bins {
            cmd.args(["--bin", b]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running cargo in {}", self.source_dir.display()))?;
        if !out.status.success() {
            bail!(
                "building the device application {} failed:\n{}",
                spec.version,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let exes = executables(&String::from_utf8_lossy(&out.stdout));
        bins.iter()
            .map(|b| {
                exes.iter()
                    .find(|p| p.file_name().is_some_and(|n| n == *b))
                    .cloned()
                    .with_context(|| format!("cargo did not report the executable `{b}`"))
            })
            .collect()
    }

    /// Builds `spec`'s `devapp` and copies it to `dest`.
    ///
    /// # Errors
    /// The build or the copy failed.
    pub fn build_app(&self, spec: &AppSpec, dest: &Path) -> Result<()> {
        let exe = self.build(spec, &["devapp"])?.remove(0);
        std::fs::copy(&exe, dest)
            .with_context(|| format!("copying {} to {}", exe.display(), dest.display()))?;
        Ok(())
    }
}

/// The `executable` paths of cargo's `compiler-artifact` JSON messages.
fn executables(json_lines: &str) -> Vec<PathBuf> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_read_from_cargo_messages() {
        let lines = r#"{"reason":"compiler-artifact","executable":null}
{"reason":"compiler-artifact","executable":"/t/release/devapp"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executables(lines), vec![PathBuf::from("/t/release/devapp")]);
    }
}
