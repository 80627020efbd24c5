//! `otactl certs` + `otactl::mqtt` against a real mosquitto with the generated config, openssl
//! as an independent verifier, and `otactl cert-to-c` through the system C compiler.

mod addresses;
mod broker;
mod check;
mod files;
mod identity;
mod keep_ca;
mod publish;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{otactl, run};

pub const PREFIX: &str = "MyUniqueTopic";
pub const BOARD: &str = "APP_CY8CPROTO_062S2_43439";

/// Runs otactl and panics with its stderr on failure.
pub fn ok(args: &[&str]) -> String {
    let out = run(otactl().args(args));
    assert!(
        out.status.success(),
        "otactl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `certs gen` for 127.0.0.1 + localhost on `port` (listening on loopback only), then device
/// certificates for `devices`, into `dir`.
pub fn gen(dir: &Path, port: u16, key_type: &str, devices: &[&str]) {
    let d = dir.to_str().unwrap();
    let port = port.to_string();
    ok(&[
        "certs",
        "gen",
        "--ip",
        "127.0.0.1",
        "--dns",
        "localhost",
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--key-type",
        key_type,
        "--out",
        d,
    ]);
    if !devices.is_empty() {
        let mut args = vec!["certs", "device", "--key-type", key_type, "--out", d];
        args.extend(devices);
        ok(&args);
    }
}

/// A signing key `key_name` (made if missing) and a 20 000-byte image signed with it as
/// `version` (`app-VERSION.bin`), in `dir`.
pub fn signed_image(dir: &Path, key_name: &str, version: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(key_name);
    if !key.exists() {
        ok(&["keygen", "-k", key.to_str().unwrap()]);
    }
    let app = dir.join("app.bin");
    std::fs::write(
        &app,
        (0..20_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let image = dir.join(format!("app-{version}.bin"));
    ok(&[
        "sign",
        "-k",
        key.to_str().unwrap(),
        "-H",
        "0x400",
        "--pad-header",
        "-S",
        "0x20000",
        "-v",
        version,
        app.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    (key, image)
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Compiles `source` (a C file in `dir` that may include headers there) with `cc` as strict C99
/// with every warning an error, runs it and returns its stdout.
pub fn compile_and_run(cc: &Path, dir: &Path, name: &str, source: &str) -> Vec<u8> {
    let main = dir.join(format!("{name}.c"));
    std::fs::write(&main, source).unwrap();
    let exe = dir.join(name);
    let out = run(Command::new(cc)
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Wformat=2",
            "-Werror",
            "-o",
        ])
        .arg(&exe)
        .arg(&main));
    assert!(
        out.status.success(),
        "{name}.c does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&mut Command::new(&exe));
    assert!(out.status.success(), "{name} failed");
    out.stdout
}
