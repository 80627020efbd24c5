//! `otactl publish`: the update server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use otactl::mqtt;
use otactl::publish::store;
use otactl::publish::{
    self, load_public_key, ClientOptions, Event, EventSink, JobTemplate, Profile, PublishConfig,
    ServedImage,
};

use super::board;
use super::progress::{self, Style};
use super::tls::TlsArgs;
use super::Ctx;

/// Serve updates to unmodified Infineon ota-update devices over MQTT.
///
/// Answers "Update Availability" with a job document when the image is newer than the device's
/// version (else "No Update Available"), streams the image for "Request Update", broadcasts it
/// for "Send Direct Update", serves "Request Data Chunk", and keeps results, blocked versions and
/// each device's history in the state database (`otactl status` reads it meanwhile).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct Cmd {
    /// Broker URL: mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883).
    #[arg(long)]
    broker: Option<String>,
    /// Board string (CY_TARGET_BOARD_STRING) for an --image given without BOARD=.
    #[arg(long)]
    board: Option<String>,
    /// Signed image to serve: FILE (for --board) or BOARD=FILE, the .bin or .hex `otactl sign`
    /// wrote (a .hex is served as the bytes from its image header on). Repeat for several boards.
    #[arg(long, value_name = "[BOARD=]FILE")]
    image: Vec<String>,
    /// Signing key (private PEM) or its public half; every image must verify with it.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Company topic prefix (COMPANY_TOPIC_PREPEND of the devices).
    #[arg(long, default_value = ota_core::protocol::topics::PREFIX_APP)]
    topic_prefix: String,
    /// State database: device versions, results, blocked versions, history. A FILE is SQLite (a
    /// JSON state file, FILE.json or the .json next to FILE, is imported once into FILE.db and
    /// kept as FILE.json.imported); postgres://USER[:PASSWORD]@HOST[:PORT]/DB is a PostgreSQL
    /// database that several publishers (--share-group replicas) share.
    #[arg(long, value_name = "FILE|URL", default_value = "otactl-state.db")]
    state: PathBuf,
    /// Clear a device's blocked versions (DEVICE as shown by `otactl status`, or "all") first.
    #[arg(long, value_name = "DEVICE")]
    unblock: Vec<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// MQTT client ID of the publisher.
    #[arg(long)]
    client_id: Option<String>,
    /// Split requests with other publishers through an MQTT 5 shared subscription ($share/NAME/...).
    #[arg(long, value_name = "NAME")]
    share_group: Option<String>,
    /// Run an in-process broker (rumqttd, plain MQTT 3.1.1) on ADDR and serve through it.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:1883")]
    embedded_broker: Option<SocketAddr>,
    /// Job document template (default: the example's ota_update.json fields).
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    /// QoS 1 messages in flight without PUBACK.
    #[arg(long, default_value_t = publish::DEFAULT_INFLIGHT)]
    inflight: u16,
    /// Block a version for a device once it came back N times (default 1) on its old version
    /// although it was sent the whole image (a revert). A device that reset or lost its own
    /// connection during the download looks the same on the wire; N > 1 offers it again N−1
    /// times first.
    #[arg(long, value_name = "N", default_value_t = publish::DEFAULT_BLOCK_AFTER,
          value_parser = clap::value_parser!(u32).range(1..))]
    block_after: u32,
    /// Whole-image pushes running at once; further "Request Update"s wait their turn.
    #[arg(long, value_name = "N", default_value_t = publish::core::DEFAULT_MAX_TRANSFERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_transfers: usize,
    /// "Request Data Chunk" messages served per second per device (faster ones are deferred).
    #[arg(long, value_name = "N", default_value_t = publish::core::DEFAULT_CHUNK_RATE,
          value_parser = clap::value_parser!(u32).range(1..))]
    chunk_rate: u32,
    /// Device records kept in the state database; beyond it unidentified records and records
    /// without blocked versions are dropped first, least recently seen first.
    #[arg(long, value_name = "N", default_value_t = publish::state::MAX_DEVICES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(100..=10_000_000))]
    max_devices: usize,
    /// The broker's limits: aws (AWS IoT Core: 100 PUBLISH/s and 512 KiB/s per connection,
    /// 128 KiB payloads, 8 topic levels), mosquitto (Debian's defaults: 1000 messages queued per
    /// client) or generic. Default: aws for *.amazonaws.com, else generic. The flags below
    /// override single limits.
    #[arg(long, value_name = "NAME", value_parser = ["aws", "mosquitto", "generic"])]
    broker_profile: Option<String>,
    /// PUBLISH packets per second per connection (0: no limit).
    #[arg(long, value_name = "N")]
    publish_rate: Option<u32>,
    /// Payload bytes per second per connection (0: no limit).
    #[arg(long, value_name = "BYTES")]
    bytes_rate: Option<u32>,
    /// Largest payload the broker accepts (bytes).
    #[arg(long, value_name = "BYTES")]
    max_payload: Option<usize>,
    /// Messages the broker queues per device before it drops them; a push sends half of this
    /// at once and paces the rest to --device-rate.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    queue_depth: Option<usize>,
    /// Bytes per second a push is paced to once its burst is sent (default 262144: a Wi-Fi MCU
    /// writing external flash); devices slower than this need a lower value.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
    device_rate: Option<u32>,
    /// Longest topic the broker accepts (bytes).
    #[arg(long, value_name = "N")]
    max_topic_length: Option<usize>,
    /// Most topic levels the broker accepts (0: no limit).
    #[arg(long, value_name = "N")]
    max_topic_levels: Option<usize>,
    /// MQTT connections to open (distinct client ids ID, ID-1, ID-2 …): each transfer stays on
    /// one; on a broker that limits each connection's rate (AWS IoT Core: 100 PUBLISH/s), N
    /// connections move N times as much. The first one receives the requests.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    connections: usize,
    /// When no device has asked anything for this many seconds after the publisher connected,
    /// say once what to check (board string, topic prefix, broker, ACL); 0: never.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    quiet_time: u64,
    /// One JSON event per line on stdout (device, version, bytes, result).
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "\
Examples:
  otactl publish --broker mqtt://127.0.0.1:1883 --board APP_CY8CPROTO_062S2_43439 \\
    --image app.signed.bin --key signing.pem
  otactl publish --broker mqtts://broker.local:8884 --ca ca.crt --cert publisher.crt \\
    --client-key publisher.key --image APP_CY8CPROTO_062S2_43439=app.bin \\
    --image APP_KIT_XMC72_EVK=xmc.bin --key signing.pub.pem --json
  # Infineon's generate_ssl_cert.sh certificates (they name mosquitto_server, not the address)
  otactl publish --broker mqtts://127.0.0.1:8884 --tls-server-name mosquitto_server \\
    --ca mosquitto_ca.crt --cert mosquitto_client.crt --client-key mosquitto_client.key \\
    --board APP_CY8CPROTO_062S2_43439 --image app.signed.hex --key signing.pem";

impl Cmd {
    fn images(&self) -> Result<Vec<(String, PathBuf)>> {
        if self.image.is_empty() {
            bail!("--image is required (FILE with --board, or BOARD=FILE)");
        }
        self.image
            .iter()
            .map(|spec| match spec.split_once('=') {
                Some((b, f)) => Ok((b.to_string(), PathBuf::from(f))),
                None => {
                    let board = self.board.clone().context(
                        "--board is required for --image FILE (or use --image BOARD=FILE)",
                    )?;
                    Ok((board, PathBuf::from(spec)))
                }
            })
            .collect()
    }

    /// The broker profile with the single-limit overrides applied.
    fn profile(&self) -> Result<Profile> {
        let url = self.url()?;
        let host = mqtt::BrokerUrl::parse(&url)
            .map(|u| u.host)
            .unwrap_or_default();
        let mut p = match &self.broker_profile {
            Some(name) => Profile::named(name).context("unknown --broker-profile")?,
            None => Profile::for_host(&host),
        };
        let none_if_zero = |v: u32| (v > 0).then_some(v);
        if let Some(r) = self.publish_rate {
            p.publish_rate = none_if_zero(r);
        }
        if let Some(b) = self.bytes_rate {
            p.bytes_rate = none_if_zero(b);
        }
        if let Some(m) = self.max_payload {
            p.max_payload = m;
        }
        if let Some(q) = self.queue_depth {
            p.queue_depth = q;
        }
        if let Some(r) = self.device_rate {
            p.device_rate = r;
        }
        if let Some(t) = self.max_topic_length {
            p.max_topic_len = t;
        }
        if let Some(l) = self.max_topic_levels {
            p.max_topic_levels = (l > 0).then_some(l);
        }
        Ok(p)
    }

    fn url(&self) -> Result<String> {
        Ok(match (&self.broker, self.embedded_broker) {
            (Some(u), _) => u.clone(),
            (None, Some(addr)) => format!("mqtt://{addr}"),
            (None, None) => {
                bail!("--broker is required (e.g. mqtt://127.0.0.1:1883), or use --embedded-broker")
            }
        })
    }

    fn mqtt(&self) -> Result<ClientOptions> {
        let url = self.url()?;
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("otactl-publish-{}", std::process::id()));
        broker_options(&url, &id, self.share_group.is_some(), self)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let key_path = self
            .key
            .clone()
            .context("--key is required (the signing key or its public half)")?;
        let key = load_public_key(&key_path)?;
        let mut images = Vec::new();
        for (board, path) in self.images()? {
            let flag = if self
                .image
                .iter()
                .any(|i| i.starts_with(&format!("{board}=")))
            {
                format!("--image {board}=…")
            } else {
                "--board".to_owned()
            };
            if let Some(w) = board::check(&board).map_err(|e| anyhow::anyhow!("{flag}: {e}"))? {
                log::warn!("{w}");
            }
            let img = ServedImage::load(&board, &path, &[key])?;
            log::info!(
                "{board}: {} version {} ({} bytes)",
                path.display(),
                img.version,
                img.len()
            );
            if img.trailing > 0 {
                log::warn!(
                    "{}: the {} bytes after the signed image (padding, a trailer or appended data) are not served; devices get the {} bytes the header and TLVs define",
                    path.display(),
                    img.trailing,
                    img.len()
                );
            }
            images.push(Arc::new(img));
        }
        let template = match &self.template {
            Some(t) => JobTemplate::load(t)?,
            None => JobTemplate::default(),
        };
        if !self.unblock.is_empty() {
            let who = store::command_id("otactl publish --unblock");
            let (mut st, imported) = store::open(&self.state, &who)?;
            if let Some(i) = imported {
                log::warn!("{i}");
            }
            for d in &self.unblock {
                let n = st.unblock((d != "all").then_some(d.as_str()), None)?;
                log::info!("unblocked {n} version(s) for {d}");
            }
        }
        if let Some(addr) = self.embedded_broker {
            publish::embedded::start(addr)?;
        }
        let mut cfg = PublishConfig::new(self.mqtt()?, images);
        cfg.prefix = self.topic_prefix.clone();
        cfg.template = template;
        cfg.state_file = Some(self.state.clone());
        cfg.share_group = self.share_group.clone();
        cfg.inflight = self.inflight;
        cfg.block_after = self.block_after;
        cfg.limits.max_transfers = self.max_transfers;
        cfg.limits.chunk_requests_per_sec = self.chunk_rate;
        cfg.max_devices = self.max_devices;
        cfg.profile = self.profile()?;
        cfg.connections = self.connections;
        log::info!("broker profile {}", cfg.profile);
        let style = if self.json {
            Style::Json
        } else if ctx.fancy() {
            Style::Bars
        } else {
            Style::Lines
        };
        let mut sink = progress::sink(style);
        if self.quiet_time > 0 {
            let boards: Vec<&str> = cfg.images.iter().map(|i| i.board.as_str()).collect();
            let hint = format!(
                "check that the devices report board {} (CY_TARGET_BOARD_STRING) and topic prefix \
                 {prefix} (COMPANY_TOPIC_PREPEND), connect to {}, and that the broker lets them \
                 publish to {prefix}/{}/publish_notify",
                boards.join(" or "),
                self.url()?,
                boards.first().copied().unwrap_or("BOARD"),
                prefix = cfg.prefix,
            );
            sink = quiet_watch(sink, Duration::from_secs(self.quiet_time), hint);
        }
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async move {
            let stop = async {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{signal, SignalKind};
                    match signal(SignalKind::terminate()) {
                        Ok(mut term) => {
                            tokio::select! {
                                _ = tokio::signal::ctrl_c() => {}
                                _ = term.recv() => {}
                            }
                        }
                        Err(_) => {
                            let _ = tokio::signal::ctrl_c().await;
                        }
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = tokio::signal::ctrl_c().await;
                }
            };
            publish::run(cfg, stop, sink).await
        })?;
        Ok(())
    }
}

/// Passes events on to `inner`; once `quiet` has gone by after a (re)connection without a single
/// device request, adds a notice "no device has asked … ; {hint}" (said once).
fn quiet_watch(inner: EventSink, quiet: Duration, hint: String) -> EventSink {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{channel, RecvTimeoutError};
    // true: (re)connected, the quiet time starts again; false: a device was heard.
    let (tx, rx) = channel::<bool>();
    let notice = Arc::clone(&inner);
    std::thread::spawn(move || {
        if rx.recv() != Ok(true) {
            return;
        }
        loop {
            match rx.recv_timeout(quiet) {
                Ok(true) => {}
                Ok(false) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    notice(Event::Notice {
                        board: String::new(),
                        message: format!(
                            "no device has asked anything in {} s; {hint}",
                            quiet.as_secs()
                        ),
                    });
                    return;
                }
            }
        }
    });
    let heard = AtomicBool::new(false);
    Arc::new(move |e: Event| {
        let signal = match &e {
            Event::Connected { .. } => Some(true),
            Event::Offered { .. }
            | Event::NoUpdate { .. }
            | Event::Started { .. }
            | Event::Result { .. } => Some(false),
            Event::Warning { topic, .. } if !topic.is_empty() => Some(false),
            _ => None,
        };
        if let Some(s) = signal {
            if !heard.load(Ordering::Relaxed) {
                heard.store(!s, Ordering::Relaxed);
                let _ = tx.send(s);
            }
        }
        inner(e);
    })
}

/// Broker URL + TLS flags → client options, built by [`otactl::mqtt`].
fn broker_options(url: &str, client_id: &str, v5: bool, cmd: &Cmd) -> Result<ClientOptions> {
    let url = mqtt::BrokerUrl::parse(url).map_err(|e| anyhow::anyhow!("--broker {e}"))?;
    let tls = cmd.tls.settings();
    Ok(if v5 {
        ClientOptions::V5(Box::new(mqtt::options_v5(&url, client_id, &tls)?))
    } else {
        ClientOptions::V4(Box::new(mqtt::options_v4(&url, client_id, &tls)?))
    })
}
