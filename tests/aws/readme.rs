//! The README's "AWS IoT Core" section, run with openssl standing in for AWS: every otactl
//! command of it except `publish` (which needs AWS's endpoint) runs as written.

use super::openssl;
use crate::util::{otactl, run, tool};
use std::path::Path;

const HEADING: &str = "## AWS IoT Core";

/// The otactl commands of the section's shell block, continuation lines joined, comments cut.
fn commands() -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = text
        .find(HEADING)
        .expect("README.md has an AWS IoT Core section");
    let rest = &text[start..];
    let block = rest
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut out = Vec::new();
    let mut line = String::new();
    for l in block.lines() {
        let l = l.split(" #").next().unwrap().trim_end();
        if l.trim_start().starts_with('#') {
            continue;
        }
        line.push_str(l.trim_end_matches('\\'));
        line.push(' ');
        if !l.ends_with('\\') {
            let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if words.first().is_some_and(|w| w == "otactl") {
                out.push(words[1..].to_vec());
            }
            line.clear();
        }
    }
    out
}

#[test]
fn readme_aws_commands_run_with_openssl_in_place_of_aws() {
    let Some(ssl) = tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| openssl(&ssl, d, args);
    // curl -O …/AmazonRootCA1.pem
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=Amazon Root CA 1",
        "-keyout",
        "root.key",
        "-out",
        "AmazonRootCA1.pem",
    ]);
    let cmds = commands();
    let names: Vec<String> = cmds.iter().map(|c| c[..2].join(" ")).collect();
    for want in [
        "certs csr",
        "aws policy",
        "cert-to-c --header",
        "publish --broker",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    for args in &cmds {
        if args[0] == "publish" {
            continue;
        }
        let (args, stdout_to) = match args.iter().position(|a| a == ">") {
            Some(i) => (&args[..i], Some(args[i + 1].clone())),
            None => (&args[..], None),
        };
        let out = run(otactl().current_dir(d).args(args));
        assert!(
            out.status.success(),
            "otactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(f) = stdout_to {
            std::fs::write(d.join(f), &out.stdout).unwrap();
        }
        // aws iot create-certificate-from-csr: the CA signs the request.
        if args[..2] == ["certs", "csr"] {
            let csr = format!("certs/{}.csr", args[2]);
            let crt = format!("certs/{}.crt", args[2]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "AmazonRootCA1.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                &crt,
            ]);
        }
    }
    for f in ["device-policy.json", "publisher-policy.json"] {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(f)).unwrap()).unwrap();
        assert!(
            doc["Statement"].as_array().is_some_and(|s| !s.is_empty()),
            "{f}"
        );
    }
    assert!(d.join("ota_device_0001.h").is_file());
}
