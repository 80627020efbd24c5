//! What `otactl init` knows and does besides asking: the kit table, answer checks, the signing
//! key it creates, where paths point, and the next commands it prints.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use otactl::config::{Broker, Project, FILE_NAME};
use otactl::fsutil::{self, Mode, Overwrite};

/// A development kit Infineon's OTA example supports, with the flash map its Makefile picks.
pub struct Kit {
    /// The ModusToolbox TARGET.
    pub target: &'static str,
    /// Its default OTA_FLASH_MAP file name.
    pub flashmap: &'static str,
}

const fn kit(target: &'static str, flashmap: &'static str) -> Kit {
    Kit { target, flashmap }
}

const PSOC62_2M: &str = "psoc62_2m_ext_swap_single.json";

/// Infineon kits (TARGET names) and their default OTA_FLASH_MAP, as ota-bootloader-abstraction's
/// `mcuboot_support.mk` chooses them.
pub const KITS: &[Kit] = &[
    kit("CY8CPROTO-062S2-43439", PSOC62_2M),
    kit("CY8CPROTO-062-4343W", PSOC62_2M),
    kit("CY8CKIT-062S2-43012", PSOC62_2M),
    kit("CY8CEVAL-062S2-LAI-4373M2", PSOC62_2M),
    kit("CY8CEVAL-062S2-MUR-43439M2", PSOC62_2M),
    kit("CY8CEVAL-062S2-CYW943439M2IPA1", PSOC62_2M),
    kit("CY8CPROTO-062S3-4343W", "psoc62_512k_xip_swap_single.json"),
    kit("KIT_XMC72_EVK", "xmc7200_int_swap_single.json"),
    kit("KIT_XMC72_EVK_MUR_43439M2", "xmc7200_int_swap_single.json"),
    kit("KIT_XMC71_EVK_LITE_V1", "xmc7100_int_swap_single.json"),
];

/// `APP_` + TARGET with `-` as `_` (the ModusToolbox rule for app-local BSPs).
pub fn board_string(target: &str) -> String {
    format!("APP_{}", target.replace('-', "_"))
}

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
    firmware::flashmap::infineon::load(path, None)
        .with_context(|| format!("{} is not a usable flash map", path.display()))?;
    Ok(())
}

/// One MQTT topic level that devices also put in JSON without escaping.
pub fn check_topic_level(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('$') {
        return Err("must not start with '$'".into());
    }
    let bad = |c: &char| matches!(c, '/' | '+' | '#' | '"' | '\\') || !c.is_ascii_graphic();
    match s.chars().find(bad) {
        Some(c) => Err(format!("must not contain {c:?}")),
        None => Ok(()),
    }
}

/// A host name or IP address.
pub fn check_host(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains("://") || s.contains('/') || s.chars().any(char::is_whitespace) {
        return Err("expected a host name or IP address (no scheme, no path)".into());
    }
    Ok(())
}

/// `ADDR:PORT` for the embedded broker to listen on.
pub fn check_listen(s: &str) -> Result<(), String> {
    s.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| "expected ADDR:PORT, e.g. 127.0.0.1:1883 or 0.0.0.0:1883".into())
}

/// `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
pub fn check_url(s: &str) -> Result<(), String> {
    otactl::mqtt::BrokerUrl::parse(s)
        .map(drop)
        .map_err(|e| e.reason)
}

/// Creates the signing key with the library (`otactl keygen`'s code path): mode 0600, never
/// over an existing file.
pub fn generate_key(path: &Path) -> Result<()> {
    let key = otactl::sign::generate(otactl::KeyType::EcdsaP256);
    let pem = otactl::sign::private_key_pem(&key)?;
    fsutil::write_atomic(path, pem.as_bytes(), Mode::Private, Overwrite::Refuse)
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
    fn board_strings_follow_the_modustoolbox_rule() {
        assert_eq!(
            board_string("CY8CPROTO-062S2-43439"),
            "APP_CY8CPROTO_062S2_43439"
        );
        assert_eq!(board_string("KIT_XMC72_EVK"), "APP_KIT_XMC72_EVK");
    }

    #[test]
    fn topic_levels_reject_wildcards_and_json_breakers() {
        assert!(check_topic_level("MyUniqueTopic").is_ok());
        for bad in ["", "a/b", "a+", "#", "a\"b", "a b", "$SYS"] {
            assert!(check_topic_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_hosts_and_listen_addresses() {
        assert!(check_url("mqtts://broker.example:8883").is_ok());
        assert!(check_url("http://x").is_err());
        assert!(check_url("broker").is_err());
        assert!(check_host("192.168.0.10").is_ok());
        assert!(check_host("mqtt://x").is_err());
        assert!(check_listen("0.0.0.0:1883").is_ok());
        assert!(check_listen("localhost").is_err());
    }
}
