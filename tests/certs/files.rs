//! Files `otactl certs` writes (modes, --force, openssl's view) and `otactl cert-to-c`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{compile_and_run, gen, ok, path};
use crate::util::{otactl, run, tool};

#[test]
fn openssl_accepts_server_publisher_and_device_certificates() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    for key_type in ["ecdsa-p256", "rsa2048"] {
        let dir = tempfile::tempdir().unwrap();
        gen(dir.path(), 8884, key_type, &["board-0001"]);
        let ca = path(dir.path(), "ca.crt");
        for (cert, purpose) in [
            ("server.crt", "sslserver"),
            ("publisher.crt", "sslclient"),
            ("board-0001.crt", "sslclient"),
        ] {
            let out = run(Command::new(&openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(&ca)
                .args(["-purpose", purpose])
                .arg(path(dir.path(), cert)));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.trim_end().ends_with(": OK"),
                "{key_type} {cert}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The broker's address is an IP SAN, not a DNS name holding an IP.
        let out = run(Command::new(&openssl)
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(path(dir.path(), "server.crt")));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"),
            "{text}"
        );
        let out = run(Command::new(&openssl)
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(path(dir.path(), "board-0001.crt")));
        assert!(String::from_utf8_lossy(&out.stdout).contains("CN = board-0001"));
    }
}

#[test]
fn keys_are_private_and_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    gen(dir.path(), 8884, "ecdsa-p256", &["dev1"]);
    for f in ["ca.key", "server.key", "publisher.key", "dev1.key"] {
        let mode = std::fs::metadata(path(dir.path(), f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let d = dir.path().to_str().unwrap();
    let before = std::fs::read(path(dir.path(), "ca.key")).unwrap();
    for args in [
        vec!["certs", "gen", "--ip", "10.0.0.1", "--out", d],
        vec!["certs", "device", "dev1", "--out", d],
        vec!["certs", "device", "dev2", "dev1", "--out", d],
    ] {
        let out = run(otactl().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
    }
    assert!(
        !path(dir.path(), "dev2.key").exists(),
        "half-done device batch"
    );
    assert_eq!(std::fs::read(path(dir.path(), "ca.key")).unwrap(), before);
    // --force replaces the broker's and publisher's files, never the CA; --new-ca does.
    ok(&["certs", "gen", "--ip", "10.0.0.1", "--out", d, "--force"]);
    assert_eq!(std::fs::read(path(dir.path(), "ca.key")).unwrap(), before);
    ok(&[
        "certs", "gen", "--ip", "10.0.0.1", "--out", d, "--force", "--new-ca",
    ]);
    assert_ne!(std::fs::read(path(dir.path(), "ca.key")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let err = |args: &[&str]| {
        let out = run(otactl().args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(&["certs", "gen", "--out", d]).contains("--ip"));
    assert!(err(&["certs", "device", "x", "--out", d]).contains("ca.crt"));
    ok(&["certs", "gen", "--dns", "broker.local", "--out", d]);
    assert!(err(&["certs", "device", "a/b", "--out", d]).contains("\"a/b\""));
    assert!(err(&["certs", "gen", "--dns", "bad name", "--out", d, "--force"]).contains("--dns"));
}

/// Compiles the header with the system C compiler into a program that prints each macro, and
/// compares the output with the PEM files.
#[test]
fn cert_to_c_header_compiles_to_the_exact_pem_bytes() {
    let Some(cc) = tool("cc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    gen(dir.path(), 8884, "ecdsa-p256", &["dev1"]);
    let files = ["ca.crt", "dev1.crt", "dev1.key"].map(|f| path(dir.path(), f));
    let header = path(dir.path(), "tls_credentials.h");
    let mut c = otactl();
    c.arg("cert-to-c").arg("--header").arg(&header).args(&files);
    c.args(["--key-name", "MY_KEY"]);
    assert!(run(&mut c).status.success());
    assert_eq!(
        std::fs::metadata(&header).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stdout = compile_and_run(
        &cc,
        dir.path(),
        "print",
        "#include <stdio.h>\n#include \"tls_credentials.h\"\nint main(void) {\n\
         fputs(ROOT_CA_CERTIFICATE, stdout); fputs(\"@@\", stdout);\n\
         fputs(CLIENT_CERTIFICATE, stdout); fputs(\"@@\", stdout);\n\
         fputs(MY_KEY, stdout); return 0; }\n",
    );
    let want: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(stdout, want.join(&b"@@"[..]));

    // Printing form: one literal per file, every line but the last ending in a backslash.
    let text = ok(&["cert-to-c", files[0].to_str().unwrap()]);
    let lines: Vec<&str> = text.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("\"-----BEGIN CERTIFICATE-----\\n\" \\"));
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l.ends_with("\\n\" \\")));
    assert_eq!(*lines.last().unwrap(), "\"-----END CERTIFICATE-----\\n\"");
}

#[test]
fn cert_to_c_rejects_non_pem_without_waiting_for_input() {
    let dir = tempfile::tempdir().unwrap();
    let junk = path(dir.path(), "junk.der");
    std::fs::write(&junk, [0x30, 0x82, 0x01, 0x0a, 0x02]).unwrap();
    let mut child = otactl()
        .arg("cert-to-c")
        .arg(&junk)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin_left_open = child.stdin.take();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "cert-to-c waited for input");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("junk.der"), "{err}");
    // The wrong kind of PEM in a header slot names the file too.
    gen(dir.path(), 8884, "ecdsa-p256", &[]);
    let [ca, key] = ["ca.crt", "publisher.key"].map(|f| path(dir.path(), f));
    let out = run(otactl()
        .arg("cert-to-c")
        .arg("--header")
        .arg(path(dir.path(), "h.h"))
        .args([&ca, &key, &ca]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("publisher.key"),
        "{err}"
    );
    let _ = std::io::stdout().flush();
}
