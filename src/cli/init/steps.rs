//! What `otactl init` knows and does besides asking: the kit table, answer checks, the signing
//! key it creates, where paths point, and the next commands it prints.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use otactl::config::{Broker, Project, FILE_NAME};
use otactl::fsutil::{self, Mode, Overwrite};

/// `*.json` flash maps in `dir` (not the XMC7000 `*_platform.json` companions), sorted.
pub fn flashmaps_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".json") && !n.ends_with("_platform.json"))
        })
        .collect();
    v.sort();
    v
}

/// The flash map must parse and pass the geometry checks (the same parser `sign` uses).
pub fn check_flashmap(path: &Path) -> Result<()> {
    ota_core::flashmap::infineon::load(path, None)
        .with_context(|| format!("{} is not a usable flash map", path.display()))?;
    Ok(())
}

/// An IP address or a DNS name, as a device would need it: `192.168.0.300` is neither (its last
/// label is all digits, so it is no DNS name, and 300 is no IPv4 byte).
pub fn check_host(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains("://") || s.contains('/') || s.chars().any(char::is_whitespace) {
        return Err("expected a host name or IP address (no scheme, no path)".into());
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if s.contains(':') {
        return Err(format!(
            "{s} is not an IP address (and a host name has no ':')"
        ));
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = name.split('.').collect();
    let numeric = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
    if labels.last().is_some_and(|l| numeric(l)) {
        let why = if labels.len() == 4 && labels.iter().all(|l| numeric(l)) {
            "each of the four parts of an IPv4 address is 0-255"
        } else {
            "a host name does not end in a number"
        };
        return Err(format!(
            "{s} is neither an IP address nor a host name ({why})"
        ));
    }
    if name.len() > 253 {
        return Err(format!(
            "{s} is longer than a host name may be (253 characters)"
        ));
    }
    for l in &labels {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if l.is_empty()
            || l.len() > 63
            || l.starts_with('-')
            || l.ends_with('-')
            || !l.chars().all(ok_char)
        {
            return Err(format!(
                "{s} is not a host name: each dot-separated part is 1-63 letters, digits or '-', \
                 not starting or ending with '-'"
            ));
        }
    }
    Ok(())
}

/// `ADDR:PORT` for the embedded broker to listen on.
pub fn check_listen(s: &str) -> Result<(), String> {
    s.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| "expected ADDR:PORT, e.g. 127.0.0.1:1883 or 0.0.0.0:1883".into())
}

/// `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`, HOST as [`check_host`] wants it.
pub fn check_url(s: &str) -> Result<(), String> {
    let url = otactl::mqtt::BrokerUrl::parse(s).map_err(|e| e.reason)?;
    check_host(&url.host)
}

/// Creates the signing key with the library (`otactl keygen`'s code path): mode 0600, never
/// over an existing file.
pub fn generate_key(path: &Path) -> Result<()> {
    let key = otactl::sign::generate(otactl::KeyType::EcdsaP256);
    let pem = otactl::sign::private_key_pem(&key)?;
    fsutil::write_atomic(path, pem.as_bytes(), Mode::Private, Overwrite::Refuse)?;
    Ok(())
}

/// Paths as the config file at `out` needs them: relative paths are relative to the file's
/// directory, so when that is not the current directory they are made absolute.
pub fn for_location(project: &Project, out: &Path) -> Result<Project> {
    if out.parent().is_none_or(|d| d.as_os_str().is_empty()) {
        return Ok(project.clone());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let abs = |p: &Path| {
        if p.is_relative() {
            cwd.join(p)
        } else {
            p.to_path_buf()
        }
    };
    let mut out = project.clone();
    out.flashmap = abs(&project.flashmap);
    out.key = abs(&project.key);
    out.certs_dir = abs(&project.certs_dir);
    Ok(out)
}

/// The commands to run after init, each with why.
pub fn next_steps(project: &Project, out: &Path) -> Vec<(String, String)> {
    let otactl = if out == Path::new(FILE_NAME) {
        "otactl".to_owned()
    } else {
        format!("otactl --config {}", out.display())
    };
    let mut steps = Vec::new();
    let mut step = |cmd: String, why: &str| steps.push((cmd, why.to_owned()));
    if !project.key.exists() {
        step(format!("{otactl} keygen"), "create the signing key");
    }
    step(
        format!("{otactl} getpub -e lang-c"),
        "the public key as C, for your MCUboot build",
    );
    let certs = project.certs_dir.display();
    match &project.broker {
        Broker::Mosquitto { host } if project.tls => {
            let san = if host.parse::<std::net::IpAddr>().is_ok() {
                "--ip"
            } else {
                "--dns"
            };
            step(
                format!("{otactl} certs gen {san} {host} --out {certs}"),
                "CA, broker and publisher certificates, mosquitto.conf",
            );
            step(
                format!(
                    "mosquitto -c {}",
                    project.certs_dir.join("mosquitto.conf").display()
                ),
                "start the broker (in another terminal)",
            );
        }
        Broker::Mosquitto { .. } => step(
            "mosquitto -p 1883".into(),
            "start a plain broker (in another terminal)",
        ),
        Broker::Aws { .. } => step(
            format!("cp AmazonRootCA1.pem {certs}/ca.crt"),
            "and the thing's certificate and key as publisher.crt / publisher.key",
        ),
        Broker::Url(_) if project.tls => step(
            format!("cp your-broker-ca.crt {certs}/ca.crt"),
            "and the publisher's client certificate and key as publisher.crt / publisher.key",
        ),
        _ => {}
    }
    step(
        format!("{otactl} sign -v 1.1.0 app.unsigned.hex app.hex"),
        "sign the new firmware (key and flash map from the config)",
    );
    step(
        format!("{otactl} publish --image app.hex"),
        "serve it to devices (broker, board, key from the config)",
    );
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hosts_and_listen_addresses() {
        assert!(check_url("mqtts://broker.example:8883").is_ok());
        assert!(check_url("http://x").is_err());
        assert!(check_url("mqtt://192.168.0.300:1883").is_err());
        assert!(check_url("broker").is_err());
        assert!(check_host("192.168.0.10").is_ok());
        assert!(check_host("mqtt://x").is_err());
        for good in [
            "broker.local",
            "::1",
            "[::1]",
            "my-pc",
            "a1b2-ats.iot.eu-west-1.amazonaws.com",
        ] {
            assert!(check_host(good).is_ok(), "{good}");
        }
        for bad in [
            "192.168.0.300",
            "10.0.0",
            "a..b",
            "-x.local",
            "x_y.local:1883",
            "host!",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        assert!(check_host("192.168.0.300").unwrap_err().contains("0-255"));
        assert!(check_listen("0.0.0.0:1883").is_ok());
        assert!(check_listen("localhost").is_err());
    }
}
