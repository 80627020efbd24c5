//! `otactl device`: stand-in boards that ask the publisher for an update (see
//! [`otactl::device`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ota_core::agent::Delivery;
use ota_core::protocol::AppVersion;
use ota_host::app::step::Step;
use otactl::device::{self, Outcome, StandIn, Who};
use otactl::mqtt::{self, BrokerUrl};
use serde_json::json;

use super::board;
use super::tls::TlsArgs;
use super::Ctx;

/// Check a broker + certificates + publisher set-up without a board.
///
/// Runs the device side of the firmware crate (the OTA agent and the device application's OTA
/// task, not a second implementation) in-process on simulated flash: it connects to --broker
/// with your certificates, asks for an update as the example firmware does (running --version,
/// board and topic prefix as a flashed board would), downloads the image into the secondary
/// slot, and verifies it with the signing key. It does not boot the image.
///
/// One line per step (--json: one JSON object per line). Exit 0 when every device got a verified
/// image; 1 when one did not (no update, no answer, a signature that does not verify, time
/// limit); 2 for set-up errors (files, a connection refused for good). Broker, TLS files, board,
/// topic prefix and key come from the flags, OTACTL_* or otactl.toml ([device], then the
/// [publish] or [sign] settings, then [defaults]); --cert/--client-key are the device's own.
///
/// Devices use fresh serials (sim-XXXX-N) unless --serial names one: the publisher would count a
/// second run of the same serial on the old version as a revert.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, disable_version_flag = true)]
pub struct Cmd {
    /// Broker URL: mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883).
    #[arg(long)]
    broker: Option<String>,
    /// Board string (CY_TARGET_BOARD_STRING) the device reports.
    #[arg(long)]
    board: Option<String>,
    /// Company topic prefix (COMPANY_TOPIC_PREPEND).
    #[arg(long, default_value = ota_core::protocol::topics::PREFIX_APP)]
    topic_prefix: String,
    /// Signing key (private PEM) or its public half: downloaded images must verify with it.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    // --cert/--client-key: the device's own pair (e.g. from `otactl certs device`).
    #[command(flatten)]
    tls: TlsArgs,
    /// Version the (pretend) running firmware reports; the publisher offers newer ones.
    #[arg(long, value_name = "VERSION", default_value = "1.0.0")]
    version: String,
    /// Devices to run at once, each with its own serial, client ID and reply topic.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    count: usize,
    /// SerialNumber the device reports (with --count: SERIAL-1 … SERIAL-N). Default: a fresh
    /// sim-XXXX-N per run.
    #[arg(long, value_name = "SERIAL")]
    serial: Option<String>,
    /// The board's flash map (Infineon JSON): an image too large for its slot fails as on the
    /// board. Default: 8 MiB slots.
    #[arg(long, value_name = "FILE")]
    flashmap: Option<PathBuf>,
    /// push: one "Request Update", the publisher sends every chunk (the example firmware);
    /// chunks: one "Request Data Chunk" per chunk.
    #[arg(long, value_name = "FLOW", default_value = "push", value_parser = ["push", "chunks"])]
    flow: String,
    /// Give up after this many seconds without a verified image.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// One JSON object per line on stdout (each step, each device's result, the summary).
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "\
Examples:
  otactl device --broker mqtts://192.168.0.10:8884 --ca certs/ca.crt \\
    --cert certs/DEVICE-0001.crt --client-key certs/DEVICE-0001.key \\
    --board APP_CY8CPROTO_062S2_43439 --key signing.pem
  # five at once, each with its own serial, with broker, board and key from otactl.toml
  otactl device --count 5 --cert certs/DEVICE-0001.crt --client-key certs/DEVICE-0001.key";

impl Cmd {
    fn serials(&self) -> Vec<String> {
        match (&self.serial, self.count) {
            (Some(s), 1) => vec![s.clone()],
            (Some(s), n) => (1..=n).map(|i| format!("{s}-{i}")).collect(),
            (None, n) => {
                let tag = ota_host::app::ota::boot_ms();
                (1..=n).map(|i| format!("sim-{tag:04x}-{i}")).collect()
            }
        }
    }

    fn stand_in(&self) -> Result<StandIn> {
        let url = self
            .broker
            .as_deref()
            .context("--broker is required (e.g. mqtts://192.168.0.10:8884)")?;
        let broker = BrokerUrl::parse(url).map_err(|e| anyhow::anyhow!("--broker {e}"))?;
        let board = self.board.clone().context(
            "--board is required (CY_TARGET_BOARD_STRING, e.g. APP_CY8CPROTO_062S2_43439)",
        )?;
        if let Some(w) = board::check(&board).map_err(|e| anyhow::anyhow!("--board: {e}"))? {
            log::warn!("{w}");
        }
        let key_path = self
            .key
            .clone()
            .context("--key is required (the signing key or its public half)")?;
        let key = otactl::publish::load_public_key(&key_path)?;
        let version = AppVersion::parse_strict(&self.version)
            .with_context(|| format!("--version {:?}: expected MAJOR.MINOR.BUILD", self.version))?;
        let tls = mqtt::tls_for(&broker, &self.tls.settings())?.map(Arc::new);
        let map = match &self.flashmap {
            Some(p) => {
                let bad =
                    |e: &dyn std::fmt::Display| anyhow::anyhow!("flash map {}: {e}", p.display());
                let map = ota_core::flashmap::infineon::load(p, None).map_err(|e| bad(&e))?;
                map.validate().map_err(|e| bad(&e))?;
                map
            }
            None => device::DEFAULT_MAP,
        };
        Ok(StandIn {
            broker,
            tls,
            prefix: self.topic_prefix.clone(),
            board,
            version,
            key,
            key_path,
            map,
            map_path: self.flashmap.clone(),
            flow: if self.flow == "chunks" {
                Delivery::Pull
            } else {
                Delivery::Push
            },
            timeout: Duration::from_secs(self.timeout),
        })
    }

    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let cfg = Arc::new(self.stand_in()?);
        let serials = self.serials();
        let json = self.json;
        for (i, serial) in serials.iter().enumerate() {
            let text = format!(
                "running {} on board {}, topic prefix {}; broker {}",
                cfg.version, cfg.board, cfg.prefix, cfg.broker
            );
            print_step(
                json,
                Who {
                    number: i + 1,
                    serial,
                },
                "start",
                &text,
                None,
            );
        }
        let out = Arc::new(Mutex::new(()));
        let report: device::Reporter = Arc::new(move |who: Who<'_>, step: &Step<'_>| {
            let _line = out.lock();
            let progress = match step {
                Step::Progress {
                    received, total, ..
                } => Some((*received, *total)),
                _ => None,
            };
            print_step(json, who, step.name(), &device::describe(step), progress);
        });
        let rt = tokio::runtime::Runtime::new()?;
        let outcomes = rt.block_on(device::run(Arc::clone(&cfg), serials.clone(), report));
        summary(json, &serials, &outcomes)
    }
}

/// One step line: `SERIAL: text`, or a JSON object.
fn print_step(json: bool, who: Who<'_>, step: &str, text: &str, progress: Option<(u32, u32)>) {
    if json {
        let mut v = json!({"device": who.number, "serial": who.serial, "step": step,
                           "message": text});
        if let Some((received, total)) = progress {
            v["received"] = json!(received);
            v["total"] = json!(total);
        }
        outln!("{v}");
    } else {
        outln!("{}: {text}", who.serial);
    }
}

/// Each device's result and the count; the error (exit 1 or 2) when one was not updated.
fn summary(json: bool, serials: &[String], outcomes: &[Outcome]) -> Result<()> {
    let updated = outcomes.iter().filter(|o| o.is_updated()).count();
    for (i, (serial, o)) in serials.iter().zip(outcomes).enumerate() {
        if json {
            let mut v = json!({"device": i + 1, "serial": serial, "result": o.name(),
                               "message": o.to_string()});
            if let Outcome::Updated { version, bytes } = o {
                v["version"] = json!(version);
                v["bytes"] = json!(bytes);
            }
            outln!("{v}");
        } else {
            outln!("{serial}: {o}");
        }
    }
    let n = outcomes.len();
    if json {
        outln!("{}", json!({"updated": updated, "devices": n}));
    } else {
        outln!("{updated} of {n} updated");
    }
    if updated == n {
        return Ok(());
    }
    let failed: Vec<String> = serials
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| !o.is_updated())
        .map(|(s, o)| format!("{s}: {o}"))
        .collect();
    let first = &failed[0];
    let text = if n == 1 {
        first.clone()
    } else {
        format!("{updated} of {n} updated; {first}")
    };
    if outcomes
        .iter()
        .any(|o| matches!(o, Outcome::CannotConnect(_)))
    {
        bail!("{text}");
    }
    Err(otactl::Rejected(text).into())
}
