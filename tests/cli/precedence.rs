//! Precedence flag > `OTACTL_<OPTION>` > `otactl.toml`, one option of each subcommand, observed
//! through what the command does (the file it writes, its output, the error naming a path).
//!
//! Each case runs three times in the same directory: the value only in the file, then also in
//! the environment, then also as a flag; each run must show the newer level's value.
//! `completions` has no long option (only the SHELL argument); `init` takes
//! nothing from the file (it writes it), so only flag > env is checked there.

use std::path::Path;
use std::process::Output;

use super::{assert_code, otactl_in, project, text, INIT_FLAGS};

/// Runs `args` with the config `toml`: file only, + `env`, + `flag`.
fn three_levels(
    dir: &Path,
    toml: &str,
    args: &[&str],
    env: (&str, &str),
    flag: &[&str],
) -> [Output; 3] {
    std::fs::write(dir.join("otactl.toml"), toml).unwrap();
    let run = |with_env: bool, with_flag: bool| {
        let mut c = otactl_in(dir);
        c.args(args);
        if with_env {
            c.env(env.0, env.1);
        }
        if with_flag {
            c.args(flag);
        }
        c.output().unwrap()
    };
    [run(false, false), run(true, false), run(true, true)]
}

/// A signing key at `dir/name` (made by `otactl keygen`).
fn keygen(dir: &Path, name: &str) {
    let o = otactl_in(dir)
        .args(["keygen", "--key", name])
        .output()
        .unwrap();
    assert_code(&o, 0);
}

pub(crate) fn signed_image(dir: &Path) {
    keygen(dir, "k.pem");
    std::fs::write(dir.join("app.bin"), vec![1u8; 3000]).unwrap();
    let o = otactl_in(dir)
        .args([
            "sign",
            "--key",
            "k.pem",
            "-H",
            "0x400",
            "--pad-header",
            "-v",
            "1.2.3",
            "-S",
            "0x10000",
        ])
        .args(["app.bin", "app.signed"])
        .output()
        .unwrap();
    assert_code(&o, 0);
}

#[test]
fn keygen_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let outs = three_levels(
        d,
        "[keygen]\nkey = \"file.pem\"\n",
        &["keygen"],
        ("OTACTL_KEY", "env.pem"),
        &["--key", "flag.pem"],
    );
    for o in &outs {
        assert_code(o, 0);
    }
    for f in ["file.pem", "env.pem", "flag.pem"] {
        assert!(d.join(f).is_file(), "{f} not written");
    }
}

#[test]
fn getpub_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k.pem");
    let [file, env, flag] = three_levels(
        d,
        "[defaults]\nkey = \"k.pem\"\n[getpub]\nencoding = \"pem\"\n",
        &["getpub"],
        ("OTACTL_ENCODING", "lang-rust"),
        &["-e", "lang-c"],
    );
    assert!(
        text(&file.stdout).starts_with("-----BEGIN PUBLIC KEY"),
        "{file:?}"
    );
    assert!(
        text(&env.stdout).contains("static ECDSA_PUB_KEY") || text(&env.stdout).contains("&[u8]"),
        "{env:?}"
    );
    assert!(text(&flag.stdout).contains("unsigned char"), "{flag:?}");
}

#[test]
fn getpubhash_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k.pem");
    let [file, env, flag] = three_levels(
        d,
        "[defaults]\nkey = \"k.pem\"\n[getpubhash]\nencoding = \"raw\"\n",
        &["getpubhash"],
        ("OTACTL_ENCODING", "lang-c"),
        &["-e", "raw"],
    );
    assert_eq!(file.stdout.len(), 32, "{file:?}");
    assert!(text(&env.stdout).contains("unsigned char"), "{env:?}");
    assert_eq!(flag.stdout.len(), 32, "{flag:?}");
}

/// The version `otactl verify` reports for `image`.
fn image_version(dir: &Path, image: &str) -> String {
    let o = otactl_in(dir)
        .args(["verify", "--key", "k.pem", image])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let all = text(&o.stdout) + &text(&o.stderr);
    all.lines()
        .find_map(|l| l.strip_prefix("Image version: "))
        .unwrap_or_else(|| panic!("no version in {all}"))
        .to_owned()
}

/// `sign -v`: flag > otactl.toml; `OTACTL_VERSION` is ignored with a warning (a leftover
/// variable must not set the version an image is signed with).
#[test]
fn sign_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k.pem");
    std::fs::write(d.join("app.bin"), vec![1u8; 3000]).unwrap();
    let toml = "[defaults]\nkey = \"k.pem\"\n[sign]\nversion = \"1.0.0\"\nheader-size = \"0x400\"\nslot-size = \"0x10000\"\npad-header = true\n";
    let mut seen = Vec::new();
    for (i, (env, flag)) in [(false, false), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        std::fs::write(d.join("otactl.toml"), toml).unwrap();
        let out = format!("app{i}.signed");
        let mut c = otactl_in(d);
        c.args(["sign", "app.bin", &out]);
        if env {
            c.env("OTACTL_VERSION", "2.0.0");
        }
        if flag {
            c.args(["-v", "3.0.0"]);
        }
        let o = c.output().unwrap();
        assert_code(&o, 0);
        // The file's value is stated; a variable is never used for what goes into an image.
        let err = text(&o.stderr);
        assert!(err.contains("--version from") != flag, "{err}");
        assert_eq!(err.contains("OTACTL_VERSION is ignored"), env, "{err}");
        seen.push(image_version(d, &out));
    }
    assert_eq!(seen, ["1.0.0+0", "1.0.0+0", "3.0.0+0"]);
}

#[test]
fn verify_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    keygen(d, "other.pem");
    let [file, env, flag] = three_levels(
        d,
        "[verify]\nkey = \"k.pem\"\n",
        &["verify", "app.signed"],
        ("OTACTL_KEY", "other.pem"),
        &["--key", "k.pem"],
    );
    assert_code(&file, 0);
    assert_code(&env, 1);
    assert_code(&flag, 0);
}

#[test]
fn info_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let [file, env, flag] = three_levels(
        d,
        "[info]\njson = true\n",
        &["info", "app.signed"],
        ("OTACTL_JSON", "0"),
        &["--json"],
    );
    let is_json = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok();
    assert!(is_json(&file), "{file:?}");
    assert!(!is_json(&env) && !env.stdout.is_empty(), "{env:?}");
    assert!(is_json(&flag), "{flag:?}");
}

#[test]
fn job_board() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let outs = three_levels(
        d,
        "[job]\nimage = \"app.signed\"\nboard = \"FILE_BOARD\"\n",
        &["job"],
        ("OTACTL_BOARD", "ENV_BOARD"),
        &["--board", "FLAG_BOARD"],
    );
    let boards: Vec<String> = outs
        .iter()
        .map(|o| {
            assert_code(o, 0);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["Board"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(boards, ["FILE_BOARD", "ENV_BOARD", "FLAG_BOARD"]);
}

#[test]
fn publish_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k.pem");
    // No such images: the error names the one that was chosen (before any broker is needed).
    let outs = three_levels(
        d,
        "[publish]\nkey = \"k.pem\"\nboard = \"B\"\nimage = \"file.bin\"\nbroker = \"mqtt://127.0.0.1:1\"\n",
        &["publish"],
        ("OTACTL_IMAGE", "env.bin"),
        &["--image", "flag.bin"],
    );
    for (o, name) in outs.iter().zip(["file.bin", "env.bin", "flag.bin"]) {
        assert_code(o, 2);
        let err = text(&o.stderr);
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn status_state() {
    let dir = tempfile::tempdir().unwrap();
    let outs = three_levels(
        dir.path(),
        "[status]\nstate = \"file-state.json\"\n",
        &["status"],
        ("OTACTL_STATE", "env-state.json"),
        &["--state", "flag-state.json"],
    );
    for (o, name) in outs.iter().zip(["file-state", "env-state", "flag-state"]) {
        assert_code(o, 2);
        assert!(
            text(&o.stderr).contains(name),
            "{name}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn init_topic_prefix_flag_over_env_and_never_from_the_file() {
    let dir = project();
    let d = dir.path();
    let without: Vec<&str> = INIT_FLAGS
        .iter()
        .copied()
        .take_while(|a| *a != "--topic-prefix")
        .collect();
    std::fs::write(
        d.join("otactl.toml"),
        "[init]\ntopic-prefix = \"FilePfx\"\n",
    )
    .unwrap();
    let written = |env: bool, flag: bool| {
        let mut c = otactl_in(d);
        c.args(&without).arg("--force");
        if env {
            c.env("OTACTL_TOPIC_PREFIX", "EnvPfx");
        }
        if flag {
            c.args(["--topic-prefix", "FlagPfx"]);
        }
        let o = c.output().unwrap();
        assert_code(&o, 0);
        let w = std::fs::read_to_string(d.join("otactl.toml")).unwrap();
        w.lines()
            .find_map(|l| l.strip_prefix("topic-prefix = "))
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(written(false, false), "MyUniqueTopic");
    std::fs::write(
        d.join("otactl.toml"),
        "[init]\ntopic-prefix = \"FilePfx\"\n",
    )
    .unwrap();
    assert_eq!(written(true, false), "EnvPfx");
    assert_eq!(written(true, true), "FlagPfx");
}

#[test]
fn relative_paths_in_a_config_elsewhere_resolve_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("proj")).unwrap();
    std::fs::write(
        d.join("proj/otactl.toml"),
        "[status]\nstate = \"st.json\"\n",
    )
    .unwrap();
    let o = otactl_in(d)
        .args(["--config", "proj/otactl.toml", "status"])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        text(&o.stderr).contains("proj/st.json"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn boolean_options_take_yes_no_words_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    for (v, json) in [("1", true), ("yes", true), ("off", false), ("false", false)] {
        let o = otactl_in(d)
            .args(["info", "app.signed"])
            .env("OTACTL_JSON", v)
            .output()
            .unwrap();
        assert_code(&o, 0);
        let is_json = serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok();
        assert_eq!(is_json, json, "OTACTL_JSON={v}");
    }
}

#[test]
fn an_exported_variable_never_collides_with_a_conflicting_flag() {
    // `sign --fix-sig` conflicts with `--key`; an OTACTL_KEY in the environment must simply lose.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed_image(d);
    let sign = |extra: &[&str], out: &str| {
        let mut c = otactl_in(d);
        c.args([
            "sign",
            "-H",
            "0x400",
            "--pad-header",
            "-v",
            "1.2.3",
            "-S",
            "0x10000",
        ]);
        c.args(extra).args(["app.bin", out]);
        c
    };
    let o = sign(&["--key", "k.pem", "--sig-out", "sig.b64"], "a.signed")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let o = otactl_in(d)
        .args(["getpub", "--key", "k.pem", "-e", "pem", "-o", "pub.pem"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let o = sign(
        &["--fix-sig", "sig.b64", "--fix-sig-pubkey", "pub.pem"],
        "b.signed",
    )
    .env("OTACTL_KEY", "k.pem")
    .output()
    .unwrap();
    assert_code(&o, 0);
    assert_eq!(
        std::fs::read(d.join("a.signed")).unwrap(),
        std::fs::read(d.join("b.signed")).unwrap()
    );
}

#[test]
fn certs_gen_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let outs = three_levels(
        d,
        "[certs.gen]\nip = \"127.0.0.1\"\nout = \"from-file\"\n",
        &["certs", "gen"],
        ("OTACTL_OUT", "from-env"),
        &["--out", "from-flag"],
    );
    for (o, sub) in outs.iter().zip(["from-file", "from-env", "from-flag"]) {
        assert_code(o, 0);
        assert!(d.join(sub).join("ca.crt").is_file(), "{sub}: {o:?}");
    }
}

#[test]
fn certs_device_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["from-file", "from-env", "from-flag"] {
        let o = otactl_in(d)
            .args(["certs", "gen", "--ip", "127.0.0.1", "--out", sub])
            .output()
            .unwrap();
        assert_code(&o, 0);
    }
    let outs = three_levels(
        d,
        "[certs.device]\nout = \"from-file\"\n",
        &["certs", "device", "DEV-1"],
        ("OTACTL_OUT", "from-env"),
        &["--out", "from-flag"],
    );
    for (o, sub) in outs.iter().zip(["from-file", "from-env", "from-flag"]) {
        assert_code(o, 0);
        assert!(d.join(sub).join("DEV-1.crt").is_file(), "{sub}: {o:?}");
    }
}

#[test]
fn cert_to_c_ca_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = otactl_in(d)
        .args(["certs", "gen", "--ip", "127.0.0.1", "--out", "c"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let args = [
        "cert-to-c",
        "--force",
        "--header",
        "h.h",
        "c/ca.crt",
        "c/publisher.crt",
        "c/publisher.key",
    ];
    std::fs::write(
        d.join("otactl.toml"),
        "[cert-to-c]\nca-name = \"FILE_CA\"\n",
    )
    .unwrap();
    let mut names = Vec::new();
    for (env, flag) in [(false, false), (true, false), (true, true)] {
        let mut c = otactl_in(d);
        c.args(args);
        if env {
            c.env("OTACTL_CA_NAME", "ENV_CA");
        }
        if flag {
            c.args(["--ca-name", "FLAG_CA"]);
        }
        let o = c.output().unwrap();
        assert_code(&o, 0);
        let h = std::fs::read_to_string(d.join("h.h")).unwrap();
        names.push(
            ["FILE_CA", "ENV_CA", "FLAG_CA"]
                .into_iter()
                .find(|n| h.contains(&format!("#define {n}")))
                .unwrap_or("none"),
        );
    }
    assert_eq!(names, ["FILE_CA", "ENV_CA", "FLAG_CA"]);
}

#[test]
fn demo_flashmap() {
    // The demo reads its flash map before building anything, so a missing one names the path
    // that won, and nothing is built.
    let dir = tempfile::tempdir().unwrap();
    let outs = three_levels(
        dir.path(),
        "[demo]\nflashmap = \"file-map.json\"\n",
        &["demo"],
        ("OTACTL_FLASHMAP", "env-map.json"),
        &["--flashmap", "flag-map.json"],
    );
    for (o, name) in outs
        .iter()
        .zip(["file-map.json", "env-map.json", "flag-map.json"])
    {
        assert_code(o, 2);
        assert!(text(&o.stderr).contains(name), "{name}: {o:?}");
    }
}
