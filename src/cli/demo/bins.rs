//! Finding the board and the device application: `otactl-simboard` and `otactl-devapp` are
//! built and installed with `otactl` (`cargo install`, `cargo build`), so they sit in the
//! directory of the running `otactl`.
//!
//! `cargo run` builds only the executable it runs. When the two are missing and this `otactl`
//! was started by `cargo run` (cargo's `CARGO` and `CARGO_MANIFEST_DIR` are in the environment
//! and the executable sits in cargo's profile directory), they are built once with that cargo,
//! into the same directory; an installed `otactl` never needs cargo or a source tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The board executable.
pub const SIMBOARD: &str = "otactl-simboard";
/// The device application executable.
pub const DEVAPP: &str = "otactl-devapp";

/// Where the two executables are.
#[derive(Clone, Debug)]
pub struct Executables {
    /// `otactl-simboard`.
    pub simboard: PathBuf,
    /// `otactl-devapp`.
    pub devapp: PathBuf,
}

impl Executables {
    fn in_dir(dir: &Path) -> Self {
        Self {
            simboard: dir.join(SIMBOARD),
            devapp: dir.join(DEVAPP),
        }
    }

    fn missing(&self) -> Vec<&Path> {
        [&self.simboard, &self.devapp]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(PathBuf::as_path)
            .collect()
    }
}

/// The executables beside the running `otactl`; `note` is told when cargo builds them.
///
/// # Errors
/// They are missing (and cannot be built by the cargo that started us); the message says
/// which and how to get them.
pub fn locate(note: &dyn Fn(String)) -> Result<Executables> {
    let me = std::env::current_exe().context("locating the running otactl")?;
    let dir = me
        .parent()
        .with_context(|| format!("{} has no directory", me.display()))?;
    let exes = Executables::in_dir(dir);
    if exes.missing().is_empty() {
        return Ok(exes);
    }
    if let Some(build) = cargo_run_build(dir) {
        note(format!(
            "{SIMBOARD} and {DEVAPP} are not built yet (cargo run builds only otactl): building them"
        ));
        build.run()?;
    }
    let missing = exes.missing();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "the demo's board and device application are missing: {} (they are installed with \
             otactl by `cargo install --path .`, and built beside it by `cargo build`)",
            names.join(", ")
        );
    }
    Ok(exes)
}

/// A `cargo build` of the two executables into `dir`.
struct CargoBuild {
    cargo: PathBuf,
    manifest_dir: PathBuf,
    target_dir: PathBuf,
    profile: String,
}

/// When cargo started us from its profile directory `dir` (`<target>/release`, `<target>/debug`,
/// …): the build that puts the executables there.
fn cargo_run_build(dir: &Path) -> Option<CargoBuild> {
    let cargo = std::env::var_os("CARGO")?;
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    if !manifest_dir.join("Cargo.toml").is_file() {
        return None;
    }
    let profile = match dir.file_name()?.to_str()? {
        "debug" => "dev".to_string(),
        name => name.to_string(),
    };
    let target_dir = dir.parent()?;
    // Cargo's profile directories sit beside its `.rustc_info.json` or in a target directory
    // that holds a CACHEDIR.TAG; anything else is not a cargo build.
    if !target_dir.join("CACHEDIR.TAG").is_file() && !target_dir.join(".rustc_info.json").is_file()
    {
        return None;
    }
    Some(CargoBuild {
        cargo: cargo.into(),
        manifest_dir,
        target_dir: target_dir.to_path_buf(),
        profile,
    })
}

/// Whether `cargo run` set the variable `name` for the program it runs (about the package:
/// `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, …). Build scripts that watch such a variable
/// (`ring`'s do) would be rebuilt by a cargo that inherits them, and again by the next plain
/// cargo.
fn set_by_cargo_run(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || [
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ]
        .contains(&&*name)
}

impl CargoBuild {
    fn run(&self) -> Result<()> {
        let mut cmd = Command::new(&self.cargo);
        for (name, _) in std::env::vars_os() {
            if set_by_cargo_run(&name) {
                cmd.env_remove(name);
            }
        }
        let status = cmd
            .current_dir(&self.manifest_dir)
            .args([
                "build",
                "--profile",
                &self.profile,
                "--bin",
                SIMBOARD,
                "--bin",
                DEVAPP,
            ])
            .arg("--target-dir")
            .arg(&self.target_dir)
            .status()
            .with_context(|| format!("running {}", self.cargo.display()))?;
        if !status.success() {
            bail!(
                "building {SIMBOARD} and {DEVAPP} in {} failed ({status})",
                self.manifest_dir.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::set_by_cargo_run;

    #[test]
    fn only_the_variables_cargo_run_sets_about_the_package_are_dropped() {
        for v in ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR", "CARGO_BIN_NAME"] {
            assert!(set_by_cargo_run(v.as_ref()), "{v}");
        }
        for v in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO",
            "PATH",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_run(v.as_ref()), "{v}");
        }
    }
}
