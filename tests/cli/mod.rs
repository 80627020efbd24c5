//! The command line as a user meets it: `otactl init` driven through a pseudo-terminal and from
//! flags (`init.rs`), config precedence flag > `OTACTL_*` > `otactl.toml` for every subcommand
//! (`precedence.rs`), completions, `--version`, `-q`/`-v`, `NO_COLOR`, exit codes (here).
//!
//! Pseudo-terminal: the `rexpect` dev-dependency (a unix pty + fork; no external tool needed).

mod help;
mod init;
mod mistakes;
pub(crate) mod precedence;
mod real_board;
mod status;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{closed_pipe, flashmap_dir, otactl, vectors_dir};

pub use init::INIT_FLAGS;

/// Seconds any single expectation on the pty may take.
pub const PTY_TIMEOUT_MS: u64 = 30_000;

/// A temp project directory with the PSoC 6 and XMC7000 flash maps in `flashmap/`.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("flashmap");
    std::fs::create_dir(&maps).unwrap();
    for e in std::fs::read_dir(flashmap_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), maps.join(e.file_name())).unwrap();
    }
    dir
}

/// otactl in `dir` with no terminal on stdin (as under CI).
pub fn otactl_in(dir: &Path) -> Command {
    let mut c = otactl();
    c.current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTACTL_") {
            c.env_remove(k);
        }
    }
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn quiet_prints_nothing_and_verbose_shows_the_file() {
    let dir = project();
    let out = otactl_in(dir.path())
        .arg("-q")
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");

    let dir = project();
    let out = otactl_in(dir.path())
        .arg("-v")
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        text(&out.stderr).contains("[publish]"),
        "{}",
        text(&out.stderr)
    );

    let out = otactl_in(dir.path())
        .args(["-q", "-v", "completions", "bash"])
        .output()
        .unwrap();
    assert_code(&out, 2);
}

#[test]
fn version_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out = otactl_in(dir.path()).arg("--version").output().unwrap();
    assert_code(&out, 0);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("otactl {}", env!("CARGO_PKG_VERSION"))
    );
    for (shell, marker) in [
        ("bash", "_otactl()"),
        ("zsh", "#compdef otactl"),
        ("fish", "complete -c otactl"),
        ("elvish", "otactl"),
        ("powershell", "otactl"),
    ] {
        let out = otactl_in(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_code(&out, 0);
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}");
        // Every subcommand is completed.
        for sub in ["sign", "publish", "certs", "init", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = otactl_in(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_code(&out, 2);
}

#[test]
fn usage_and_config_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = otactl_in(dir.path())
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let out = otactl_in(dir.path())
        .args(["--config", "missing.toml", "completions", "bash"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("missing.toml"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(dir.path().join("otactl.toml"), "[sign\n").unwrap();
    let out = otactl_in(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("otactl.toml"),
        "{}",
        text(&out.stderr)
    );
    // init replaces a broken file (with --force) instead of failing on it.
    let out = otactl_in(dir.path())
        .args([
            "init",
            "--force",
            "--board",
            "B",
            "--broker-kind",
            "embedded",
        ])
        .args([
            "--flashmap",
            &flashmap().to_string_lossy(),
            "--generate-key",
            "no",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
}

#[test]
fn unknown_config_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("otactl.toml"),
        "[completions]\nshel = \"bash\"\n[defaults]\nbaord = \"x\"\n",
    )
    .unwrap();
    let out = otactl_in(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let err = text(&out.stderr);
    assert!(err.contains("[completions] shel"), "{err}");
    assert!(err.contains("[defaults] baord"), "{err}");
}

fn flashmap() -> PathBuf {
    flashmap_dir().join("psoc62_2m_ext_swap_single.json")
}

/// Runs otactl on a pseudo-terminal in `dir` and returns everything it printed.
fn on_pty(dir: &Path, args: &[&str], no_color: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otactl"));
    cmd.current_dir(dir)
        .args(args)
        .env("TERM", "xterm")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("OTACTL_CONFIG");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let mut s = rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).unwrap();
    s.exp_eof().unwrap()
}

#[test]
fn no_color_turns_off_colours_on_a_terminal() {
    let dir = project();
    let d = dir.path();
    let coloured = on_pty(d, &["--help"], false);
    assert!(coloured.contains("\x1b["), "expected colours on a terminal");
    let plain = on_pty(d, &["--help"], true);
    assert!(plain.contains("Usage"), "{plain}");
    assert!(
        !plain.contains("\x1b["),
        "NO_COLOR still coloured: {plain:?}"
    );
    // Status lines and log messages (init warns that the key does not exist yet).
    let init = [
        "init",
        "--non-interactive",
        "--force",
        "--board",
        "B",
        "--broker-kind",
        "embedded",
        "--flashmap",
        "flashmap/psoc62_2m_ext_swap_single.json",
        "--generate-key",
        "no",
    ];
    let coloured = on_pty(d, &init, false);
    assert!(coloured.contains("\x1b[32m"), "{coloured:?}");
    let plain = on_pty(d, &init, true);
    assert!(
        plain.contains("Created otactl.toml") && plain.contains("WARN"),
        "{plain:?}"
    );
    assert!(!plain.contains('\x1b'), "NO_COLOR still styled: {plain:?}");
}

#[test]
fn a_closed_stdout_ends_quietly() {
    // `otactl info x | head -1`: the reader has gone; no panic message, no error, exit 0. The
    // pipe's read end is closed before otactl starts, so every write fails.
    let dir = tempfile::tempdir().unwrap();
    precedence::signed_image(dir.path());
    let pem = vectors_dir().join("keys/cypress-test-ec-p256.pem");
    let pem = pem.to_str().unwrap();
    for args in [
        &["completions", "zsh"][..],
        &["info", "app.signed"],
        &["info", "--json", "app.signed"],
        &["verify", "-k", "k.pem", "app.signed"],
        &["getpub", "-k", "k.pem"],
        &["cert-to-c", pem],
    ] {
        let out = otactl_in(dir.path())
            .args(args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_code(&out, 0);
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}
