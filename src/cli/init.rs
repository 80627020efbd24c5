//! `otactl init`: the guided project setup. Asks (or takes as flags) the board, flash map,
//! broker, TLS, signing key and topic prefix; writes `otactl.toml` atomically; offers to create
//! the signing key and the TLS material; prints the exact commands to run next.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use otactl::config::{Broker, Project};
use otactl::fsutil::{self, Mode, Overwrite};

use super::prompt::{status, Prompter};
use super::Ctx;

/// Set up a project: board, flash map, broker, TLS, signing key; writes otactl.toml.
///
/// On a terminal every answer not given as a flag is asked for. With --non-interactive (or
/// without a terminal) the flags are the answers: --board, --flashmap, --broker-kind (and
/// --broker-address) are required; --tls defaults to on, --key to keys/signing.pem,
/// --topic-prefix to MyUniqueTopic, and nothing is generated unless asked for.
/// The file goes to --config FILE (or OTACTL_CONFIG), else ./otactl.toml.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct Cmd {
    /// Board string the firmware was built for (CY_TARGET_BOARD_STRING: "APP_" + TARGET with
    /// '-' as '_'), e.g. APP_CY8CPROTO_062S2_43439.
    #[arg(long, value_name = "BOARD")]
    board: Option<String>,
    /// Flash map (Infineon JSON) the bootloader and application are built with.
    #[arg(long, value_name = "FILE")]
    flashmap: Option<PathBuf>,
    /// Broker devices and `otactl publish` use.
    #[arg(long, value_enum, value_name = "KIND")]
    broker_kind: Option<BrokerKind>,
    /// mosquitto: the address devices use to reach this machine (e.g. 192.168.0.10); aws: the
    /// IoT endpoint (xxxx-ats.iot.REGION.amazonaws.com); url: mqtt[s]://HOST[:PORT].
    #[arg(long, value_name = "ADDRESS")]
    broker_address: Option<String>,
    /// Mutual TLS with certificates: on or off (AWS IoT is always on; a URL says it by scheme).
    #[arg(long, value_name = "on|off", value_parser = BoolishValueParser::new())]
    tls: Option<bool>,
    /// Signing key file.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Generate a new signing key at --key now (yes), or use the existing one (no).
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    generate_key: Option<bool>,
    /// Company topic prefix (COMPANY_TOPIC_PREPEND in the firmware's cy_ota_config.h).
    #[arg(long, value_name = "PREFIX")]
    topic_prefix: Option<String>,
    /// Generate the CA, broker, publisher and device certificates now (yes/no).
    #[arg(long, value_name = "yes|no", value_parser = BoolishValueParser::new())]
    gen_certs: Option<bool>,
    /// Where TLS material goes.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    certs_dir: PathBuf,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
}

const EXAMPLES: &str = "\
Examples:
  otactl init
  otactl init --non-interactive --board APP_CY8CPROTO_062S2_43439 \\
    --flashmap flashmap/psoc62_2m_ext_swap_single.json --broker-kind mosquitto \\
    --broker-address 192.168.0.10 --generate-key yes";

/// `--broker-kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BrokerKind {
    /// The broker built into `otactl publish` (one machine, for trying things out).
    Embedded,
    /// mosquitto on this machine (`otactl certs gen` writes its config).
    Mosquitto,
    /// AWS IoT Core.
    Aws,
    /// Any other broker, by URL.
    Url,
}

/// A development kit Infineon's OTA example supports, with the flash map its Makefile picks.
struct Kit {
    target: &'static str,
    flashmap: &'static str,
}

/// Infineon kits (TARGET names) and their default OTA_FLASH_MAP (ota-bootloader-abstraction).
const KITS: &[Kit] = &[
    Kit {
        target: "CY8CPROTO-062S2-43439",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CPROTO-062-4343W",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CKIT-062S2-43012",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CEVAL-062S2-LAI-4373M2",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CEVAL-062S2-MUR-43439M2",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CEVAL-062S2-CYW943439M2IPA1",
        flashmap: "psoc62_2m_ext_swap_single.json",
    },
    Kit {
        target: "CY8CPROTO-062S3-4343W",
        flashmap: "psoc62_512k_xip_swap_single.json",
    },
    Kit {
        target: "KIT_XMC72_EVK",
        flashmap: "xmc7200_int_swap_single.json",
    },
    Kit {
        target: "KIT_XMC72_EVK_MUR_43439M2",
        flashmap: "xmc7200_int_swap_single.json",
    },
    Kit {
        target: "KIT_XMC71_EVK_LITE_V1",
        flashmap: "xmc7100_int_swap_single.json",
    },
];

/// `APP_` + TARGET with `-` as `_` (the ModusToolbox rule for app-local BSPs).
fn board_string(target: &str) -> String {
    format!("APP_{}", target.replace('-', "_"))
}

/// The default for --topic-prefix (Infineon's example app).
const DEFAULT_PREFIX: &str = "MyUniqueTopic";
/// The default for --key.
const DEFAULT_KEY: &str = "keys/signing.pem";

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let p = Prompter::new(ctx);
        let out = ctx.config_path.clone();
        self.check_overwrite(&p, &out)?;
        let project = self.ask(&p, &Previous::from(ctx))?;
        let generate_key = self.ask_generate_key(&p, &project.key)?;
        let gen_certs = self.ask_gen_certs(&p, &project)?;
        let text = for_location(&project, &out)?.render();
        fsutil::write_atomic(&out, text.as_bytes(), Mode::Public, Overwrite::Allow)?;
        if ctx.verbose > 0 {
            eprintln!("{text}");
        }
        status(ctx, "Created", &out.display().to_string());
        let steps = next_steps(&project, &out, generate_key, gen_certs);
        if !ctx.quiet {
            println!("\nNext steps:");
            for (cmd, why) in steps {
                println!("  # {why}\n  {cmd}");
            }
        }
        Ok(())
    }

    /// Refuses to replace an existing config unless --force or the user agrees (asked first, so
    /// nobody answers every question only to be refused).
    fn check_overwrite(&self, p: &Prompter, out: &Path) -> Result<()> {
        if self.force || !out.exists() {
            return Ok(());
        }
        if !p.is_interactive() {
            bail!("{} exists; pass --force to replace it", out.display());
        }
        let q = format!("{} exists. Replace it?", out.display());
        if !p.confirm_required("--force", &q, false)? {
            bail!("{} left unchanged", out.display());
        }
        Ok(())
    }

    /// Every answer that goes into the config file.
    fn ask(&self, p: &Prompter, prev: &Previous) -> Result<Project> {
        let (board, suggested) = self.ask_board(p, prev)?;
        let flashmap = self.ask_flashmap(p, suggested)?;
        let broker = self.ask_broker(p)?;
        let tls = self.ask_tls(p, &broker)?;
        let key = match &self.key {
            Some(k) => k.clone(),
            None => PathBuf::from(p.input(
                "--key",
                "Signing key file",
                Some(prev.key.as_deref().unwrap_or(DEFAULT_KEY)),
                |_| Ok(()),
            )?),
        };
        let topic_prefix = match &self.topic_prefix {
            Some(t) => {
                check_topic_level(t).map_err(|e| anyhow::anyhow!("--topic-prefix: {e}"))?;
                t.clone()
            }
            None => p.input(
                "--topic-prefix",
                "Company topic prefix (COMPANY_TOPIC_PREPEND)",
                Some(prev.topic_prefix.as_deref().unwrap_or(DEFAULT_PREFIX)),
                check_topic_level,
            )?,
        };
        Ok(Project {
            board,
            flashmap,
            broker,
            tls,
            key,
            topic_prefix,
            certs_dir: self.certs_dir.clone(),
        })
    }

    /// The board string, and the flash map file its kit usually uses.
    fn ask_board(&self, p: &Prompter, prev: &Previous) -> Result<(String, Option<&'static str>)> {
        if let Some(b) = &self.board {
            check_topic_level(b).map_err(|e| anyhow::anyhow!("--board: {e}"))?;
            let kit = KITS.iter().find(|k| board_string(k.target) == *b);
            return Ok((b.clone(), kit.map(|k| k.flashmap)));
        }
        let mut items: Vec<String> = KITS
            .iter()
            .map(|k| format!("{:<32} {}", k.target, board_string(k.target)))
            .collect();
        items.push("Another board (type its board string)".into());
        let cursor = prev
            .board
            .as_ref()
            .and_then(|b| KITS.iter().position(|k| board_string(k.target) == *b))
            .unwrap_or(0);
        let i = p.select("--board", "Board", &items, cursor)?;
        if let Some(kit) = KITS.get(i) {
            return Ok((board_string(kit.target), Some(kit.flashmap)));
        }
        let b = p.input(
            "--board",
            "Board string (CY_TARGET_BOARD_STRING, e.g. APP_MY_BOARD)",
            None,
            check_topic_level,
        )?;
        Ok((b, None))
    }

    /// A flash map from ./flashmap/, or any path; it must parse.
    fn ask_flashmap(&self, p: &Prompter, suggested: Option<&str>) -> Result<PathBuf> {
        if let Some(f) = &self.flashmap {
            check_flashmap(f).with_context(|| format!("--flashmap {}", f.display()))?;
            return Ok(f.clone());
        }
        let found = flashmaps_in(Path::new("flashmap"));
        let pick_path = |p: &Prompter| -> Result<PathBuf> {
            let s = p.input("--flashmap", "Flash map file (Infineon JSON)", None, |s| {
                check_flashmap(Path::new(s)).map_err(|e| format!("{e:#}"))
            })?;
            Ok(PathBuf::from(s))
        };
        if found.is_empty() {
            return pick_path(p);
        }
        let mut items: Vec<String> = found.iter().map(|f| f.display().to_string()).collect();
        items.push("Another file (type its path)".into());
        let cursor = suggested
            .and_then(|s| found.iter().position(|f| f.file_name() == Some(s.as_ref())))
            .unwrap_or(0);
        let i = p.select("--flashmap", "Flash map (OTA_FLASH_MAP)", &items, cursor)?;
        match found.get(i) {
            Some(f) => {
                check_flashmap(f).with_context(|| format!("flash map {}", f.display()))?;
                Ok(f.clone())
            }
            None => pick_path(p),
        }
    }

    fn ask_broker(&self, p: &Prompter) -> Result<Broker> {
        let kind = match self.broker_kind {
            Some(k) => k,
            None => {
                let items = [
                    "Embedded: otactl publish runs its own broker (try things on this machine)",
                    "Local mosquitto on this machine (certificates and config from otactl)",
                    "AWS IoT Core endpoint",
                    "Another broker (URL)",
                ]
                .map(String::from);
                let kinds = [
                    BrokerKind::Embedded,
                    BrokerKind::Mosquitto,
                    BrokerKind::Aws,
                    BrokerKind::Url,
                ];
                kinds[p.select("--broker-kind", "Broker", &items, 1)?]
            }
        };
        let address = |prompt: &str, check: fn(&str) -> Result<(), String>| -> Result<String> {
            match &self.broker_address {
                Some(a) => {
                    check(a).map_err(|e| anyhow::anyhow!("--broker-address: {e}"))?;
                    Ok(a.clone())
                }
                None => p.input("--broker-address", prompt, None, check),
            }
        };
        Ok(match kind {
            BrokerKind::Embedded => Broker::Embedded,
            BrokerKind::Mosquitto => Broker::Mosquitto {
                host: address(
                    "Address devices use to reach this machine (e.g. 192.168.0.10)",
                    check_host,
                )?,
            },
            BrokerKind::Aws => Broker::Aws {
                endpoint: address(
                    "AWS IoT endpoint (xxxx-ats.iot.REGION.amazonaws.com)",
                    check_host,
                )?,
            },
            BrokerKind::Url => Broker::Url(address(
                "Broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])",
                check_url,
            )?),
        })
    }

    fn ask_tls(&self, p: &Prompter, broker: &Broker) -> Result<bool> {
        let fixed = match broker {
            Broker::Aws { .. } => Some(true),
            Broker::Url(u) => Some(u.starts_with("mqtts://")),
            _ => None,
        };
        match (fixed, self.tls) {
            (Some(f), Some(t)) if f != t => {
                bail!("--tls {}: this broker is always {}", on_off(t), on_off(f))
            }
            (Some(f), _) => Ok(f),
            (None, Some(t)) => Ok(t),
            (None, None) => p.confirm(
                "--tls",
                "Use TLS with client certificates (mutual TLS)?",
                true,
            ),
        }
    }

    /// Whether to create the key now: asked when not given; without a terminal an existing key
    /// is used and a missing one is an error naming --generate-key.
    fn ask_generate_key(&self, p: &Prompter, key: &Path) -> Result<bool> {
        let exists = key.exists();
        let generate = match self.generate_key {
            Some(g) => g,
            None if !p.is_interactive() && exists => false,
            None => {
                let items = [
                    format!("Generate a new signing key at {}", key.display()),
                    format!("Use the existing key {}", key.display()),
                ];
                p.select("--generate-key", "Signing key", &items, usize::from(exists))? == 0
            }
        };
        if generate && exists {
            bail!(
                "{} already exists; use it (--generate-key no) or choose another --key",
                key.display()
            );
        }
        if !generate && !exists {
            log::warn!(
                "{} does not exist yet; create it before signing (see the next steps)",
                key.display()
            );
        }
        Ok(generate)
    }

    fn ask_gen_certs(&self, p: &Prompter, project: &Project) -> Result<bool> {
        if !project.tls || !project.broker.certs_are_ours() {
            return Ok(false);
        }
        match self.gen_certs {
            Some(g) => Ok(g),
            None => p.confirm(
                "--gen-certs",
                &format!(
                    "Generate the CA, broker, publisher and device certificates in {}?",
                    project.certs_dir.display()
                ),
                p.is_interactive(),
            ),
        }
    }
}

/// Answers from an existing config file, offered as the defaults when init runs again.
#[derive(Default)]
struct Previous {
    board: Option<String>,
    key: Option<String>,
    topic_prefix: Option<String>,
}

impl Previous {
    fn from(ctx: &Ctx) -> Self {
        let get = |table: &str, key: &str| {
            let v = ctx.config.lookup(&[table], key).ok().flatten()?;
            v.into_iter().next()
        };
        Self {
            board: get("publish", "board"),
            key: get("sign", "key"),
            topic_prefix: get("publish", "topic-prefix"),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Paths as the config file at `out` needs them: relative paths are relative to the file's
/// directory, so when it is not the current directory they are made absolute.
fn for_location(project: &Project, out: &Path) -> Result<Project> {
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
    let Some(_) = dir else {
        return Ok(project.clone());
    };
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
fn next_steps(
    project: &Project,
    out: &Path,
    generated_key: bool,
    generated_certs: bool,
) -> Vec<(String, String)> {
    let cfg = if out == Path::new(otactl::config::FILE_NAME) {
        String::new()
    } else {
        format!("--config {} ", out.display())
    };
    let mut steps = Vec::new();
    if !generated_key && !project.key.exists() {
        steps.push((
            format!("otactl {cfg}keygen"),
            format!("create the signing key {}", project.key.display()),
        ));
    }
    if project.tls && project.broker.certs_are_ours() && !generated_certs {
        steps.push((
            format!("otactl {cfg}certs gen"),
            format!("TLS material in {}", project.certs_dir.display()),
        ));
    }
    if let Broker::Mosquitto { .. } = project.broker {
        steps.push((
            format!(
                "mosquitto -c {}",
                project.certs_dir.join("mosquitto.conf").display()
            ),
            "start the broker (another terminal)".into(),
        ));
    }
    steps.push((
        format!("otactl {cfg}sign app.unsigned.hex app.hex --version 1.1.0"),
        "sign the new firmware".into(),
    ));
    steps.push((
        format!("otactl {cfg}publish app.hex"),
        "serve it to devices".into(),
    ));
    steps
}

/// `*.json` flash maps in `dir` (not the XMC7000 `*_platform.json` companions), sorted.
fn flashmaps_in(dir: &Path) -> Vec<PathBuf> {
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

/// The flash map must exist and be a JSON object.
fn check_flashmap(path: &Path) -> Result<()> {
    let text = fsutil::read(path)?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if !value.is_object() {
        bail!(
            "{} is not an Infineon flash map (a JSON object)",
            path.display()
        );
    }
    Ok(())
}

/// One MQTT topic level that devices also put in JSON without escaping.
fn check_topic_level(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('$') {
        return Err("must not start with '$'".into());
    }
    match s
        .chars()
        .find(|c| matches!(c, '/' | '+' | '#' | '"' | '\\') || !c.is_ascii_graphic())
    {
        Some(c) => Err(format!("must not contain {c:?}")),
        None => Ok(()),
    }
}

fn check_host(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains("://") || s.contains('/') || s.chars().any(char::is_whitespace) {
        return Err("expected a host name or IP address (no scheme, no path)".into());
    }
    Ok(())
}

fn check_url(s: &str) -> Result<(), String> {
    otactl::mqtt::BrokerUrl::parse(s)
        .map(drop)
        .map_err(|e| e.reason)
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
    fn urls_and_hosts() {
        assert!(check_url("mqtts://broker.example:8883").is_ok());
        assert!(check_url("http://x").is_err());
        assert!(check_url("broker").is_err());
        assert!(check_host("192.168.0.10").is_ok());
        assert!(check_host("mqtt://x").is_err());
    }
}
