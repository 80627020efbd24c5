//! Shared helpers for the integration tests.
#![allow(dead_code)]

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

/// `../shared` next to the repository (where CI puts it), or `OTACTL_SHARED`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("OTACTL_SHARED") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
}

/// The imgtool vectors folder.
pub fn vectors_dir() -> PathBuf {
    shared_dir().join("vectors")
}

/// Whether CI demands every external tool (a missing one is a failure, never a skip).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("OTA_REQUIRE_E2E").is_ok_and(|v| v == "1")
}

/// Finds `tool` on PATH (or in `$OTACTL_VENV/bin`); `None` means skip, unless [`required`], which panics.
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("OTACTL_VENV") {
        dirs.push(PathBuf::from(v).join("bin"));
    }
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".venv")
            .join("bin"),
    );
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
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
