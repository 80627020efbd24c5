//! `otactl init`: the wizard on a pseudo-terminal, the same answers as flags, missing answers
//! without a terminal, and the written config driving `sign` and `publish` with no options
//! repeated.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{assert_code, otactl_in, project, text, PTY_TIMEOUT_MS};
use crate::publish::device::{self, DeviceConfig, Outcome};
use crate::util::{tool, Mosquitto};

/// Flags answering every question (a local mosquitto with TLS, existing key).
pub const INIT_FLAGS: &[&str] = &[
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
];

/// Types `k` (written through at once: rexpect buffers `send`).
fn key(s: &mut rexpect::session::PtySession, k: &str) {
    s.send(k).unwrap();
    s.flush().unwrap();
}

const ENTER: &str = "\r";
const DOWN: &str = "\x1b[B";
const UP: &str = "\x1b[A";

/// Runs `otactl init` on a pseudo-terminal in `dir`, answering with the keyboard: first kit, its
/// usual flash map, "another broker" with `url`, default key path and prefix, generate the key.
fn run_wizard(dir: &Path, url: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otactl"));
    cmd.current_dir(dir)
        .arg("init")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("OTACTL_CONFIG");
    let mut s = rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).expect("spawn on a pty");
    s.exp_string("Board").unwrap();
    key(&mut s, ENTER);
    // The cursor starts on the kit's usual flash map.
    s.exp_string("Flash map").unwrap();
    key(&mut s, ENTER);
    // Broker: the cursor starts on "Local mosquitto"; down to AWS, down to URL, up, down.
    s.exp_string("Broker").unwrap();
    for k in [DOWN, DOWN, UP, DOWN, ENTER] {
        key(&mut s, k);
    }
    s.exp_string("Broker URL").unwrap();
    s.send_line(url).unwrap();
    s.exp_string("Signing key file").unwrap();
    key(&mut s, ENTER);
    s.exp_string("Company topic prefix").unwrap();
    key(&mut s, ENTER);
    // "Generate a new signing key" is first.
    s.exp_string("Signing key").unwrap();
    key(&mut s, ENTER);
    let rest = s.exp_eof().unwrap();
    let status = s.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}\n{rest}"
    );
    rest
}

#[test]
fn wizard_config_drives_sign_and_publish_and_equals_the_flags() {
    let Some(imgtool) = tool("imgtool") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(scratch.path()) else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = project();
    let out = run_wizard(dir.path(), &url);
    assert!(out.contains("Next steps"), "{out}");
    assert!(out.contains("otactl publish --image app.hex"), "{out}");
    let written = std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap();
    assert!(
        written.contains(&format!("broker = \"{url}\"")),
        "{written}"
    );
    assert!(dir.path().join("keys/signing.pem").is_file());

    // The same answers as flags give the same file.
    let flags = project();
    let o = otactl_in(flags.path())
        .args(["init", "--board", "APP_CY8CPROTO_062S2_43439"])
        .args(["--flashmap", "flashmap/psoc62_2m_ext_swap_single.json"])
        .args(["--broker-kind", "url", "--broker-address", &url])
        .args(["--generate-key", "yes"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let from_flags = std::fs::read_to_string(flags.path().join("otactl.toml")).unwrap();
    assert_eq!(written, from_flags);

    // sign: key and flash map (slot size, header size) from the config.
    let d = dir.path();
    std::fs::write(d.join("app.bin"), vec![0x5a; 5000]).unwrap();
    let o = otactl_in(d)
        .args(["sign", "-v", "1.1.0", "app.bin", "app.hex.bin"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let o = Command::new(&imgtool)
        .current_dir(d)
        .args(["verify", "-k", "keys/signing.pem", "app.hex.bin"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let image = std::fs::read(d.join("app.hex.bin")).unwrap();
    assert_eq!(
        u16::from_le_bytes([image[8], image[9]]),
        0x400,
        "-H from the flash map"
    );

    // publish: broker, board, topic prefix and key from the config; a device gets the image.
    let mut publisher = otactl_in(d)
        .args(["publish", "--image", "app.hex.bin", "--state", "state.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = DeviceConfig::new(broker.port, "APP_CY8CPROTO_062S2_43439", (1, 0, 0), 4242);
    let outcome = rt.block_on(device::until_updated(cfg, Duration::from_secs(60)));
    let _ = publisher.kill();
    let _ = publisher.wait();
    match outcome {
        Outcome::Updated {
            image: got,
            version,
        } => {
            assert_eq!(version, (1, 1, 0));
            assert_eq!(got, image);
        }
        Outcome::NoUpdate(why) => panic!("device got no update: {why}"),
    }
}

#[test]
fn non_interactive_writes_the_documented_config() {
    let dir = project();
    let o = otactl_in(dir.path())
        .arg("--non-interactive")
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let w = std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap();
    for line in [
        "board = \"APP_CY8CPROTO_062S2_43439\"",
        "topic-prefix = \"MyUniqueTopic\"",
        "key = \"keys/signing.pem\"",
        "flashmap = \"flashmap/psoc62_2m_ext_swap_single.json\"",
        "broker = \"mqtts://127.0.0.1:8884\"",
        "ca = \"certs/ca.crt\"",
        "client-key = \"certs/publisher.key\"",
    ] {
        assert!(w.contains(&format!("\n{line}\n")), "{line} missing:\n{w}");
    }
    // Every key in it is an option of its table: no "matches no option" warning.
    let o = otactl_in(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(
        !text(&o.stderr).contains("matches no option"),
        "{}",
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    assert!(!out.is_empty());
    let steps = text(
        &otactl_in(dir.path())
            .args(INIT_FLAGS)
            .arg("--force")
            .output()
            .unwrap()
            .stdout,
    );
    assert!(steps.contains("otactl keygen\n"), "{steps}");
    assert!(
        steps.contains("otactl certs gen --ip 127.0.0.1 --out certs\n"),
        "{steps}"
    );
}

#[test]
fn without_a_terminal_a_missing_answer_names_its_flag() {
    let dir = project();
    let o = otactl_in(dir.path()).arg("init").output().unwrap();
    assert_code(&o, 2);
    assert!(text(&o.stderr).contains("--board"), "{}", text(&o.stderr));
    assert!(!dir.path().join("otactl.toml").exists());
    let mut args: Vec<&str> = INIT_FLAGS.to_vec();
    for flag in ["--flashmap", "--broker-kind", "--broker-address"] {
        let i = args.iter().position(|a| *a == flag).unwrap();
        let mut without = args.clone();
        without.drain(i..i + 2);
        let o = otactl_in(dir.path()).args(&without).output().unwrap();
        assert_code(&o, 2);
        assert!(
            text(&o.stderr).contains(flag),
            "{flag}: {}",
            text(&o.stderr)
        );
    }
    // A key that does not exist needs --generate-key.
    let i = args.iter().position(|a| *a == "--generate-key").unwrap();
    args.drain(i..i + 2);
    let o = otactl_in(dir.path()).args(&args).output().unwrap();
    assert_code(&o, 2);
    assert!(
        text(&o.stderr).contains("--generate-key"),
        "{}",
        text(&o.stderr)
    );
    // A bad answer names the flag too.
    let o = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .args(["--topic-prefix", "a/b"])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        text(&o.stderr).contains("--topic-prefix"),
        "{}",
        text(&o.stderr)
    );
    let o = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .args(["--flashmap", "Cargo.toml"])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        text(&o.stderr).contains("--flashmap"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn generated_key_is_private_and_never_overwritten() {
    let dir = project();
    let mut args: Vec<&str> = INIT_FLAGS.to_vec();
    let i = args.iter().position(|a| *a == "no").unwrap();
    args[i] = "yes";
    let o = otactl_in(dir.path()).args(&args).output().unwrap();
    assert_code(&o, 0);
    let key = dir.path().join("keys/signing.pem");
    let pem = std::fs::read(&key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !text(&o.stdout).contains("otactl keygen"),
        "{}",
        text(&o.stdout)
    );
    // Again, with --force for the config: the key stays, and asking to generate it fails.
    let o = otactl_in(dir.path())
        .args(&args)
        .arg("--force")
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        text(&o.stderr).contains("already exists"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(&key).unwrap(), pem);
}

#[test]
fn refuses_to_replace_a_config_without_force() {
    let dir = project();
    std::fs::write(dir.path().join("otactl.toml"), "# mine\n").unwrap();
    let o = otactl_in(dir.path()).args(INIT_FLAGS).output().unwrap();
    assert_code(&o, 2);
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap(),
        "# mine\n"
    );
    // --force is never taken from the environment or the file.
    let o = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .env("OTACTL_FORCE", "1")
        .output()
        .unwrap();
    assert_code(&o, 2);
    let o = otactl_in(dir.path())
        .args(INIT_FLAGS)
        .arg("--force")
        .output()
        .unwrap();
    assert_code(&o, 0);
}

#[test]
fn writes_where_config_points_with_paths_that_still_resolve() {
    let dir = project();
    let o = otactl_in(dir.path())
        .args(["--config", "sub/otactl.toml"])
        .args(INIT_FLAGS)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let written = std::fs::read_to_string(dir.path().join("sub/otactl.toml")).unwrap();
    let abs = dir.path().canonicalize().unwrap();
    let map = abs.join("flashmap/psoc62_2m_ext_swap_single.json");
    assert!(
        written.contains(&format!("flashmap = \"{}\"", map.display())),
        "{written}"
    );
    assert!(text(&o.stdout).contains("otactl --config sub/otactl.toml keygen"));
}

#[test]
fn embedded_broker_is_plain_and_listens_where_asked() {
    let dir = project();
    let o = otactl_in(dir.path())
        .args(["init", "--board", "B", "--broker-kind", "embedded"])
        .args(["--flashmap", "flashmap/xmc7200_int_swap_single.json"])
        .args(["--generate-key", "no", "--broker-address", "0.0.0.0:1883"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let w = std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap();
    assert!(w.contains("\nembedded-broker = \"0.0.0.0:1883\"\n"), "{w}");
    assert!(w.contains("\n# ca = "), "TLS lines commented out:\n{w}");
    let o = otactl_in(dir.path())
        .args([
            "init",
            "--force",
            "--board",
            "B",
            "--broker-kind",
            "embedded",
        ])
        .args(["--flashmap", "flashmap/xmc7200_int_swap_single.json"])
        .args(["--generate-key", "no", "--tls", "on"])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(text(&o.stderr).contains("--tls"), "{}", text(&o.stderr));
}

/// otactl init on a pseudo-terminal in `dir`.
fn wizard(dir: &Path) -> rexpect::session::PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otactl"));
    cmd.current_dir(dir)
        .arg("init")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("OTACTL_CONFIG");
    rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).expect("spawn on a pty")
}

/// A yes/no question answers on Enter: `yes⏎` is one answer, and the next question (here the
/// key file, whose default is taken with Enter) does not receive `es`.
#[test]
fn yes_and_enter_is_one_answer() {
    let dir = project();
    std::fs::write(dir.path().join("otactl.toml"), "# mine\n").unwrap();
    let mut s = wizard(dir.path());
    s.exp_string("Replace it?").unwrap();
    key(&mut s, "yes");
    key(&mut s, ENTER);
    s.exp_string("Board").unwrap();
    key(&mut s, ENTER);
    s.exp_string("Flash map").unwrap();
    key(&mut s, ENTER);
    // The cursor starts on "Local mosquitto".
    s.exp_string("Broker").unwrap();
    key(&mut s, ENTER);
    s.exp_string("Address devices use").unwrap();
    s.send_line("127.0.0.1").unwrap();
    s.exp_string("Use TLS").unwrap();
    key(&mut s, "yes");
    key(&mut s, ENTER);
    s.exp_string("Signing key file").unwrap();
    key(&mut s, ENTER);
    s.exp_string("Company topic prefix").unwrap();
    key(&mut s, ENTER);
    s.exp_string("Signing key").unwrap();
    key(&mut s, ENTER);
    let rest = s.exp_eof().unwrap();
    let status = s.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}\n{rest}"
    );
    let w = std::fs::read_to_string(dir.path().join("otactl.toml")).unwrap();
    assert!(w.contains("\nkey = \"keys/signing.pem\"\n"), "{w}");
    assert!(w.contains("\nca = \"certs/ca.crt\"\n"), "TLS on:\n{w}");
    assert!(w.contains("broker = \"mqtts://127.0.0.1:8884\""), "{w}");
    assert!(!dir.path().join("es").exists());
}

/// Ctrl-C in a menu (the cursor is hidden while it is shown) ends init with exit 130, the
/// cursor shown again and nothing written.
#[test]
fn ctrl_c_in_a_menu_restores_the_cursor() {
    const HIDE: &str = "\x1b[?25l";
    const SHOW: &str = "\x1b[?25h";
    let dir = project();
    let mut s = wizard(dir.path());
    s.exp_string("Board").unwrap();
    s.send_control('c').unwrap();
    let rest = s.exp_eof().unwrap();
    let status = s.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 130)),
        "{status:?}\n{rest:?}"
    );
    let shown_after_hide = match (rest.rfind(HIDE), rest.rfind(SHOW)) {
        (Some(h), Some(v)) => v > h,
        (None, _) => true,
        (Some(_), None) => false,
    };
    assert!(shown_after_hide, "cursor left hidden: {rest:?}");
    assert!(!dir.path().join("otactl.toml").exists());
}
