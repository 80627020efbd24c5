//! `otactl init`: the guided project setup. Asks (or takes as flags) the board, flash map,
//! broker, TLS, signing key and topic prefix; writes `otactl.toml` atomically; offers to create
//! the signing key and the TLS material; prints the exact commands to run next.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use otactl::config::{Broker, Project};
use otactl::fsutil::{self, Mode, Overwrite};

use super::board::{self, board_string, check_topic_level, kit_of, KITS};
use super::prompt::{status, Prompter};
use super::Ctx;

mod steps;

use steps::{check_flashmap, check_host, check_listen, check_url, flashmaps_in};

/// Set up a project: board, flash map, broker, TLS, signing key; writes otactl.toml.
///
/// On a terminal every answer not given as a flag is asked for. With --non-interactive (or
/// without a terminal) the flags are the answers: --board, --flashmap, --broker-kind (and
/// --broker-address, except for the embedded broker) are required; --tls defaults to on, --key to
/// keys/signing.pem, --topic-prefix to MyUniqueTopic; a key that does not exist needs
/// --generate-key. The file goes to --config FILE (or OTACTL_CONFIG), else ./otactl.toml.
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
    /// IoT endpoint (xxxx-ats.iot.REGION.amazonaws.com); url: mqtt[s]://HOST[:PORT]; embedded:
    /// ADDR:PORT to listen on (default 127.0.0.1:1883).
    #[arg(long, value_name = "ADDRESS")]
    broker_address: Option<String>,
    /// Mutual TLS with certificates: on or off (AWS IoT is always on, the embedded broker off; a
    /// URL says it by its scheme).
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
    /// Where the publisher's TLS material is (ca.crt, publisher.crt, publisher.key).
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
        let text = steps::for_location(&project, &out)?.render();
        fsutil::write_atomic(&out, text.as_bytes(), Mode::Public, Overwrite::Allow)?;
        if ctx.verbose > 0 {
            eprintln!("{text}");
        }
        status(ctx, "Created", &out.display().to_string());
        if generate_key {
            steps::generate_key(&project.key)?;
            status(
                ctx,
                "Generated",
                &format!("signing key {}", project.key.display()),
            );
        }
        let steps = steps::next_steps(&project, &out);
        if !ctx.quiet {
            outln!("\nNext steps:");
            for (cmd, why) in steps {
                outln!("  # {why}\n  {cmd}");
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
                check_topic_level(t).map_err(|e| anyhow!("--topic-prefix: {e}"))?;
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
            warn_board(board::check(b).map_err(|e| anyhow!("--board: {e}"))?);
            return Ok((b.clone(), kit_of(b).map(|k| k.flashmap)));
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
            |s| board::check(s).map(drop),
        )?;
        warn_board(board::check(&b).ok().flatten());
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
                    check(a).map_err(|e| anyhow!("--broker-address: {e}"))?;
                    Ok(a.clone())
                }
                None => p.input("--broker-address", prompt, None, check),
            }
        };
        Ok(match kind {
            BrokerKind::Embedded => Broker::Embedded {
                listen: match &self.broker_address {
                    Some(a) => {
                        check_listen(a).map_err(|e| anyhow!("--broker-address: {e}"))?;
                        a.clone()
                    }
                    None => p.input(
                        "--broker-address",
                        "Address to listen on (0.0.0.0:1883 lets boards on your network in)",
                        Some("127.0.0.1:1883"),
                        check_listen,
                    )?,
                },
            },
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
            Broker::Embedded { .. } => Some(false),
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

fn warn_board(warning: Option<String>) {
    if let Some(w) = warning {
        log::warn!("{w}");
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}
