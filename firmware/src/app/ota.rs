//! The OTA task: drives the sans-IO [`Agent`] over one MQTT [`Link`], against the board's
//! flash, and narrates what happens (check, no update, download progress, verify, reboot,
//! confirm, revert) in the transcript.
//!
//! Connection pattern: one connection at a time, each a new session with a client ID and a
//! unique topic derived from the clock like the C agent's (`CY_IOT_DEVICE<ms & 0xffff>`,
//! `PFX/BRD/OTAImage/<ms & 0xffff>`); on connect the task
//! subscribes to the agent's unique topic and the app filter topic (`PFX/BRD/OTAImage`), as the
//! C device does, then tells the agent it is connected. A lost connection is retried every 5 s
//! (`CY_OTA_RETRY_INTERVAL_SECS`); the agent re-sends whatever it was waiting for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::DeviceConfig;
use super::link::{tls_config, Link};
use super::say;
use crate::agent::{Agent, AgentConfig, BootReport, Inbound, Outbound, Phase, Status};
use crate::flashmap::FlashMap;
use crate::image::verify::PublicKey;
use crate::protocol::{topics, AppVersion, DeviceIdentity};
use crate::sim::SimDevice;

/// Retry interval after a failed connection.
const RETRY: Duration = Duration::from_secs(5);
/// How often the agent's timers run.
const TICK: Duration = Duration::from_millis(100);

/// Everything the task works with.
struct Ctx {
    dev: SimDevice,
    start: Instant,
    /// The board's clock when the application started (see [`boot_ms`]).
    boot: u64,
    last: Status,
    shown_pct: u32,
    /// The outcome of the last update check that found nothing (repeats are not narrated).
    quiet_check: Option<String>,
}

impl Ctx {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The board's millisecond tick (`cy_rtos_get_time`), from which session names come.
    fn tick(&self) -> u32 {
        u32::try_from(self.boot.wrapping_add(self.now()) & 0xffff_ffff).unwrap_or(0)
    }
}

/// The tick of a real board when its application starts differs from board to board (reset
/// timing, bootloader, Wi-Fi join); simulated boards started together would otherwise all read
/// about the same tick and name their first sessions alike. A per-start random value below
/// 65536 ms stands in for it.
fn boot_ms() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() & 0xffff
}

/// Runs update sessions until the agent asks for a reboot; returns why (for the transcript).
pub async fn ota_task(cfg: DeviceConfig, running: AppVersion) -> String {
    match setup(&cfg) {
        Ok((map, key, dev)) => run(&cfg, running, map, key, dev).await,
        Err(e) => {
            say("ota", &format!("cannot start: {e}"));
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
    }
}

fn setup(cfg: &DeviceConfig) -> Result<(FlashMap, PublicKey, SimDevice), String> {
    let map = crate::flashmap::infineon::load(&cfg.flashmap, None)
        .map_err(|e| format!("{}: {e}", cfg.flashmap.display()))?;
    let key = crate::board::load_pubkey(&cfg.pubkey)?;
    let dev =
        SimDevice::open(&cfg.flash, map, 2).map_err(|e| format!("{}: {e}", cfg.flash.display()))?;
    Ok((map, key, dev))
}

async fn run(
    cfg: &DeviceConfig,
    running: AppVersion,
    map: FlashMap,
    key: PublicKey,
    dev: SimDevice,
) -> String {
    let keys = [key];
    let mut ac = AgentConfig::new(map, &keys, &cfg.board, running);
    ac.prefix = &cfg.prefix;
    ac.identity = DeviceIdentity {
        serial_number: &cfg.serial,
        ..DeviceIdentity::APP
    };
    ac.host = &cfg.host;
    ac.port = cfg.port;
    ac.follow_redirects = true;
    ac.check_interval_ms = u64::try_from(cfg.check_interval.as_millis()).unwrap_or(u64::MAX);
    ac.job_timeout_ms = 10_000;
    ac.chunk_timeout_ms = 3_000;
    // Push is what the example's firmware does (CY_MQTT_GET_ALL_DATA_WITH_ONE_CALL, spec §2.9):
    // one "Request Update", the publisher pushes every chunk; a download that had to ask
    // (resumed after a reset, a chunk timed out) pulls the rest chunk by chunk, and falls back
    // to "Request Update" when nobody answers. `chunks` asks for every chunk.
    ac.delivery = cfg.flow;
    let mut cx = Ctx {
        dev,
        start: Instant::now(),
        boot: boot_ms(),
        last: idle_status(),
        shown_pct: 0,
        quiet_check: None,
    };
    let mut agent = match Agent::new::<crate::sim::SimFlashError>(ac, cx.tick()) {
        Ok(a) => a,
        Err(e) => return format!("agent: {e:?}"),
    };
    match agent.on_boot(&mut cx.dev.primary, &mut cx.dev.secondary) {
        Ok(BootReport::Normal) => {}
        Ok(BootReport::AwaitingConfirm) => say(
            "ota",
            "running a test image: it confirms itself once the broker connection works",
        ),
        Ok(BootReport::Reverted) => say(
            "ota",
            "the last update never confirmed itself: the bootloader reverted it",
        ),
        Ok(BootReport::RebootPending) => return "a downloaded image is pending".into(),
        Err(e) => say("ota", &format!("flash error at start: {e:?}")),
    }
    let tls = match cfg.tls.as_ref().map(tls_config).transpose() {
        Ok(t) => t.map(Arc::new),
        Err(e) => {
            say("ota", &format!("TLS configuration: {e}"));
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
    };
    // The agent's first check is due at once; the example waits CY_OTA_INITIAL_CHECK_SECS.
    tokio::time::sleep(cfg.check_interval.min(Duration::from_secs(1))).await;
    loop {
        // A new session: client ID and unique topic from the clock, as the C agent.
        let tick = cx.tick();
        let id = topics::client_id("CY_IOT_DEVICE", tick);
        if let Err(e) = agent.new_session(tick) {
            return format!("agent: {e:?}");
        }
        // The job's server while a redirected download lasts (spec §4.4: same credentials,
        // TLS unless the port is 1883), else the home broker.
        let server = server_for(cfg, agent.redirect());
        let here = agent.redirect().map(|(h, p)| (h.to_string(), p));
        let tls = tls.as_ref().filter(|_| server.tls.is_some());
        match Link::connect(&server, tls, &id).await {
            Ok(link) => match session(&server, &mut agent, &mut cx, link, &id).await {
                End::Reset(why) => return why,
                End::Lost => {}
                End::Move => continue,
            },
            Err(e) if here.is_some() => {
                say("ota", &format!("{e}; back to the home broker"));
                agent.server_unreachable(cx.now());
            }
            Err(e) => say("ota", &format!("{e}; retrying in {} s", RETRY.as_secs())),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Where the device connects: `redirect` (the job's `Broker`/`Port`) or the home broker.
fn server_for(cfg: &DeviceConfig, redirect: Option<(&str, u16)>) -> DeviceConfig {
    let mut server = cfg.clone();
    if let Some((host, port)) = redirect {
        server.host = host.to_string();
        server.port = port;
        if port == 1883 {
            server.tls = None;
        }
    }
    server
}

/// How a connection ended.
enum End {
    /// The device must reset (why).
    Reset(String),
    /// The connection failed: retry after [`RETRY`].
    Lost,
    /// The agent wants another server (a redirect, or home after it): connect now.
    Move,
}

/// One connection to `cfg`'s broker.
async fn session(
    cfg: &DeviceConfig,
    agent: &mut Agent<'_>,
    cx: &mut Ctx,
    mut link: Link,
    client_id: &str,
) -> End {
    let Ok(direct) = topics::direct_topic(&cfg.prefix, &cfg.board) else {
        return End::Reset("the prefix and board form no topic".into());
    };
    let unique = agent.unique_topic().to_string();
    let here = agent.redirect().map(|(h, p)| (h.to_string(), p));
    for t in [direct.as_str(), unique.as_str()] {
        if let Err(e) = link.subscribe(t).await {
            say("ota", &e);
            return End::Lost;
        }
    }
    say(
        "ota",
        &format!(
            "connected to {}:{} as {client_id} (replies on {unique})",
            cfg.host, cfg.port
        ),
    );
    let now = cx.now();
    let out = match agent.confirm(now, &mut cx.dev.primary) {
        Ok(Some(o)) => {
            say(
                "ota",
                "image confirmed (image_ok written): this version stays",
            );
            owned(Some(o))
        }
        Ok(None) => None,
        Err(e) => return End::Reset(format!("flash error while confirming: {e:?}")),
    };
    if let Some(r) = act(&mut link, out).await {
        return r;
    }
    let out = agent
        .handle(cx.now(), Inbound::Connected, &mut cx.dev.secondary)
        .map(owned);
    if let Some(r) = step(&mut link, agent, cx, out).await {
        return r;
    }
    if agent.redirect().is_some() != here.is_some() {
        return End::Move;
    }
    loop {
        let msg = match link.recv(TICK).await {
            Ok(m) => m,
            Err(e) => {
                say("ota", &format!("connection lost: {e}"));
                return End::Lost;
            }
        };
        let now = cx.now();
        let out = match &msg {
            Some(m) => agent.handle(
                now,
                Inbound::Publish {
                    topic: &m.topic,
                    payload: &m.payload,
                },
                &mut cx.dev.secondary,
            ),
            None => agent.poll(now, &mut cx.dev.secondary),
        }
        .map(owned);
        if let Some(r) = step(&mut link, agent, cx, out).await {
            return r;
        }
        if agent.redirect().map(|(h, p)| (h.to_string(), p)) != here {
            if here.is_some() {
                say("ota", "back to the home broker");
            }
            return End::Move;
        }
    }
}

/// An outbound action detached from the agent's buffer.
enum Action {
    Publish(String, Vec<u8>),
    Reboot,
    Redirect(String, u16),
}

fn owned(o: Option<Outbound<'_>>) -> Option<Action> {
    o.map(|o| match o {
        Outbound::Publish { topic, payload } => Action::Publish(topic.into(), payload.to_vec()),
        Outbound::Reboot => Action::Reboot,
        Outbound::Redirect { host, port } => Action::Redirect(host.into(), port),
    })
}

/// Narrates the agent's progress, then carries out its action; `Some` ends the connection.
async fn step<E: core::fmt::Debug>(
    link: &mut Link,
    agent: &Agent<'_>,
    cx: &mut Ctx,
    out: Result<Option<Action>, crate::agent::AgentError<E>>,
) -> Option<End> {
    let out = match out {
        Ok(o) => o,
        Err(e) => return Some(End::Reset(format!("flash error: {e:?}"))),
    };
    narrate(cx, agent.status());
    if let Some(Action::Publish(_, payload)) = &out {
        let status = agent.status();
        let kind = crate::protocol::decode_request(payload).map(|r| r.kind);
        if status.phase == Phase::Downloading
            && status.received > 0
            && kind == Ok(crate::protocol::MessageKind::RequestUpdate)
        {
            say(
                "ota",
                "no answer to the chunk requests: asking for the whole image again",
            );
        }
    }
    act(link, out).await
}

async fn act(link: &mut Link, out: Option<Action>) -> Option<End> {
    match out {
        None => None,
        Some(Action::Reboot) => Some(End::Reset("update downloaded and verified".into())),
        Some(Action::Redirect(host, port)) => {
            say(
                "ota",
                &format!("the job names the server {host}:{port}: downloading from there"),
            );
            Some(End::Move)
        }
        Some(Action::Publish(topic, payload)) => match link.publish(&topic, &payload).await {
            Ok(()) => None,
            Err(e) => {
                say("ota", &e);
                Some(End::Lost)
            }
        },
    }
}

fn idle_status() -> Status {
    Status {
        phase: Phase::Idle,
        received: 0,
        total: None,
        resumed_from: None,
        last_error: None,
    }
}

fn narrate(cx: &mut Ctx, now: Status) {
    let before = cx.last;
    cx.last = now;
    match (before.phase, now.phase) {
        (Phase::Idle | Phase::AwaitingConfirm, Phase::WaitingForJob)
            if cx.quiet_check.is_none() =>
        {
            say("ota", "asking the publisher for an update");
        }
        (Phase::WaitingForJob, Phase::Idle) => {
            let why = now
                .last_error
                .map_or_else(|| "no update".to_string(), |c| format!("no update: {c}"));
            if cx.quiet_check.as_deref() != Some(why.as_str()) {
                say("ota", &format!("{why} (asking again every check interval)"));
                cx.quiet_check = Some(why);
            }
        }
        (Phase::WaitingForJob, Phase::Downloading) => {
            cx.quiet_check = None;
            cx.shown_pct = 0;
            match now.resumed_from {
                Some(at) if at > 0 => say(
                    "ota",
                    &format!("update accepted; resuming the download at {at} bytes"),
                ),
                _ => say(
                    "ota",
                    "update accepted; downloading into the secondary slot",
                ),
            }
        }
        (Phase::Downloading, Phase::Downloading) => {
            if let Some(total) = now.total.filter(|t| *t > 0) {
                let pct =
                    u32::try_from(u64::from(now.received) * 100 / u64::from(total)).unwrap_or(100);
                if pct >= cx.shown_pct + 10 || (pct == 100 && cx.shown_pct < 100) {
                    cx.shown_pct = pct - pct % 10;
                    say(
                        "ota",
                        &format!("download {pct:>3}% ({}/{total} bytes)", now.received),
                    );
                }
            }
        }
        (Phase::Downloading, Phase::ReadyToReboot) => {
            if cx.shown_pct < 100 {
                cx.shown_pct = 100;
                let t = before.total.unwrap_or(0);
                say("ota", &format!("download 100% ({t}/{t} bytes)"));
            }
            say("ota", "image verified and marked pending (test swap)");
        }
        (Phase::Downloading, Phase::Idle) => match now.last_error {
            Some(code) => say("ota", &format!("download failed: {code}")),
            None => say("ota", "download stopped"),
        },
        _ => {}
    }
}
