//! The command line as a user meets it: `otactl init` driven through a pseudo-terminal and from
//! flags, config precedence (flag > `OTACTL_*` > `otactl.toml`), completions, `--version`,
//! `-q`/`-v`, `NO_COLOR`, exit codes.
//!
//! Pseudo-terminal: the `rexpect` dev-dependency (a unix pty + fork; no external tool needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{otactl, shared_dir};

/// Seconds any single expectation on the pty may take.
const PTY_TIMEOUT_MS: u64 = 30_000;

/// A temp project directory with Infineon's flash maps in `flashmap/`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("flashmap");
    std::fs::create_dir(&maps).unwrap();
    for e in std::fs::read_dir(shared_dir().join("flashmap-infineon")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), maps.join(e.file_name())).unwrap();
    }
    dir
}

/// otactl in `dir` with no terminal on stdin (as under CI).
fn otactl_in(dir: &Path) -> Command {
    let mut c = otactl();
    c.current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTACTL_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The flags that answer every wizard question the way the pty test answers them.
const INIT_FLAGS: &[&str] = &[
    "init",
    "--board",
    "APP_CY8CPROTO_062S2_43439",
    "--flashmap",
    "flashmap/psoc62_2m_ext_swap_single.json",
    "--broker-kind",
    "mosquitto",
    "--broker-address",
    "127.0.0.1",
    "--tls",
    "on",
    "--key",
    "keys/signing.pem",
    "--generate-key",
    "no",
    "--topic-prefix",
    "MyUniqueTopic",
    "--gen-certs",
    "no",
];

/// Runs `otactl init` on a pseudo-terminal in `dir`, answering like a user with the keyboard.
fn run_wizard(dir: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otactl"));
    cmd.current_dir(dir)
        .arg("init")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("OTACTL_CONFIG");
    let mut s = rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).expect("spawn on a pty");
    let enter = "\r";
    let down = "\x1b[B";
    // Board: the first kit in the list.
    s.exp_string("Board").unwrap();
    key(&mut s, enter);
    // Flash map: the cursor starts on the kit's usual map.
    s.exp_string("Flash map").unwrap();
    key(&mut s, enter);
    // Broker: the cursor starts on "Local mosquitto"; go down to AWS and back up.
    s.exp_string("Broker").unwrap();
    key(&mut s, down);
    key(&mut s, "\x1b[A");
    key(&mut s, enter);
    s.exp_string("Address devices use").unwrap();
    s.send_line("127.0.0.1").unwrap();
    s.exp_string("Use TLS").unwrap();
    key(&mut s, "y");
    s.exp_string("Signing key file").unwrap();
    key(&mut s, enter);
    s.exp_string("Company topic prefix").unwrap();
    key(&mut s, enter);
    // Key: "use the existing key" (second item): nothing is generated.
    s.exp_string("Signing key").unwrap();
    key(&mut s, down);
    key(&mut s, enter);
    s.exp_string("Generate the CA").unwrap();
    key(&mut s, "n");
    let rest = s.exp_eof().unwrap();
    let status = s.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}\n{rest}"
    );
    rest
}

/// Types `k` (written through at once: rexpect buffers `send`).
fn key(s: &mut rexpect::session::PtySession, k: &str) {
    s.send(k).unwrap();
    s.flush().unwrap();
}

#[test]
fn init_wizard_on_a_terminal_matches_the_non_interactive_flags() {
    let wizard = project();
    let rest = run_wizard(wizard.path());
    assert!(rest.contains("Next steps"), "{rest}");
    assert!(rest.contains("otactl keygen"), "{rest}");
    assert!(rest.contains("otactl certs gen"), "{rest}");
    let from_wizard = std::fs::read_to_string(wizard.path().join("otactl.toml")).unwrap();

    let flags = project();
    let out = otactl_in(flags.path())
        .arg("--non-interactive")
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let from_flags = std::fs::read_to_string(flags.path().join("otactl.toml")).unwrap();
    assert_eq!(from_wizard, from_flags);
    assert!(from_flags.contains("board = \"APP_CY8CPROTO_062S2_43439\""));
    assert!(from_flags.contains("broker = \"mqtts://127.0.0.1:8884\""));
}

#[test]
fn init_without_a_terminal_names_the_missing_flag() {
    let dir = project();
    let out = otactl_in(dir.path()).arg("init").output().unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("--board"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("otactl.toml").exists());

    // Each required answer in turn.
    let mut args: Vec<&str> = INIT_FLAGS.to_vec();
    for flag in ["--flashmap", "--broker-kind", "--broker-address"] {
        let i = args.iter().position(|a| *a == flag).unwrap();
        let mut without = args.clone();
        without.drain(i..i + 2);
        let out = otactl_in(dir.path()).args(&without).output().unwrap();
        assert_code(&out, 2);
        assert!(
            text(&out.stderr).contains(flag),
            "{flag}: {}",
            text(&out.stderr)
        );
    }
    // A key that does not exist needs --generate-key.
    let i = args.iter().position(|a| *a == "--generate-key").unwrap();
    args.drain(i..i + 2);
    let out = otactl_in(dir.path()).args(&args).output().unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("--generate-key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn init_refuses_to_replace_a_config_without_force() {
    let dir = project();
    std::fs::write(dir.path().join("otactl.toml"), "# mine\n").unwrap();
    let out = otactl_in(dir.path()).args(INIT_FLAGS).output().unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap(),
        "# mine\n"
    );
    let out = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .arg("--force")
        .output()
        .unwrap();
    assert_code(&out, 0);
    // --force is never taken from the environment.
    let out = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .env("OTACTL_FORCE", "1")
        .output()
        .unwrap();
    assert_code(&out, 2);
}

#[test]
fn init_writes_where_config_points_with_paths_relative_to_it() {
    let dir = project();
    let out = otactl_in(dir.path())
        .args(["--config", "sub/otactl.toml"])
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let written = std::fs::read_to_string(dir.path().join("sub/otactl.toml")).unwrap();
    let abs = dir.path().canonicalize().unwrap();
    let map = abs.join("flashmap/psoc62_2m_ext_swap_single.json");
    assert!(
        written.contains(&format!("flashmap = \"{}\"", map.display())),
        "{written}"
    );
    assert!(text(&out.stdout).contains("otactl --config sub/otactl.toml keygen"));
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
    shared_dir().join("flashmap-infineon/psoc62_2m_ext_swap_single.json")
}

/// Runs otactl on a pseudo-terminal and returns everything it printed.
fn on_pty(args: &[&str], no_color: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otactl"));
    cmd.args(args)
        .env("TERM", "xterm")
        .env_remove("CLICOLOR_FORCE");
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
    let coloured = on_pty(&["--help"], false);
    assert!(coloured.contains("\x1b["), "expected colours on a terminal");
    let plain = on_pty(&["--help"], true);
    assert!(plain.contains("Usage"), "{plain}");
    assert!(
        !plain.contains("\x1b["),
        "NO_COLOR still coloured: {plain:?}"
    );
}
