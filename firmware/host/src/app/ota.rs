//! The OTA task: drives the sans-IO [`Agent`] over one MQTT [`Link`], against the board's
//! flash, and reports what happens (check, no update, download progress, verify, reboot,
//! confirm, revert) as [`Step`]s to an [`Observer`].
//!
//! Connection pattern: one connection at a time, each a new session with a client ID and a
//! unique topic derived from the clock like the C agent's (`CY_IOT_DEVICE<ms & 0xffff>`,
//! `PFX/BRD/OTAImage/<ms & 0xffff>`); on connect the task
//! subscribes to the agent's unique topic and the app filter topic (`PFX/BRD/OTAImage`), as the
//! C device does, then tells the agent it is connected. A lost connection is retried every 5 s
//! (`CY_OTA_RETRY_INTERVAL_SECS`); the agent re-sends whatever it was waiting for.
//!
//! [`ota_task`] is the device application's (flash files, transcript lines); [`drive`] is the
//! loop itself, for any flash and observer (`otactl device` runs it in-process).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{DeviceConfig, OtaConfig};
use super::link::Link;
use super::say;
use super::step::{Observer, Step};
use crate::board::BoardError;
use crate::sim::SimDevice;
use ota_core::agent::{Agent, AgentConfig, BootReport, Inbound, Outbound, Phase, Status};
use ota_core::flashmap::FlashMap;
use ota_core::image::verify::PublicKey;
use ota_core::protocol::{topics, AppVersion, DeviceIdentity};

/// Retry interval after a failed connection.
const RETRY: Duration = Duration::from_secs(5);
/// How often the agent's timers run.
const TICK: Duration = Duration::from_millis(100);

/// Everything the task works with.
struct Ctx<'d> {
    dev: &'d mut SimDevice,
    obs: &'d mut (dyn Observer + Send),
    /// The observer asked to stop.
    stopped: bool,
    start: Instant,
    /// The board's clock when the application started (see [`boot_ms`]).
    boot: u64,
    last: Status,
    shown_pct: u32,
    /// The outcome of the last update check that found nothing (repeats are not reported).
    quiet_check: Option<String>,
}

impl Ctx<'_> {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The board's millisecond tick (`cy_rtos_get_time`), from which session names come.
    fn tick(&self) -> u32 {
        u32::try_from(self.boot.wrapping_add(self.now()) & 0xffff_ffff).unwrap_or(0)
    }

    /// Reports `step`; remembers a request to stop.
    fn tell(&mut self, step: &Step<'_>) {
        if self.obs.step(step).is_break() {
            self.stopped = true;
        }
    }
}

/// The tick of a real board when its application starts differs from board to board (reset
/// timing, bootloader, Wi-Fi join); simulated boards started together would otherwise all read
/// about the same tick and name their first sessions alike. A per-start random value below
/// 65536 ms stands in for it.
#[must_use]
pub fn boot_ms() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() & 0xffff
}

/// The device application's OTA task: loads the board's flash map, key, flash and TLS files,
/// then runs [`drive`] with every step as an `ota:` transcript line, until the agent asks for a
/// reboot; returns why (for the transcript).
pub async fn ota_task(cfg: DeviceConfig, running: AppVersion) -> String {
    let (map, key, mut dev) = match setup(&cfg) {
        Ok(s) => s,
        Err(e) => halt(&format!("cannot start: {}", ota_tls::error_chain(&e))).await,
    };
    let tls = match cfg.tls.as_ref().map(|f| f.client_tls().build()).transpose() {
        Ok(t) => t.map(Arc::new),
        Err(e) => halt(&format!("TLS configuration: {}", ota_tls::error_chain(&e))).await,
    };
    let keys = [key];
    let run = Drive {
        cfg: &cfg.ota,
        map,
        keys: &keys,
        running,
        tls,
        boot_ms: boot_ms(),
    };
    let mut print = |step: &Step<'_>| {
        say("ota", &step.to_string());
        ControlFlow::Continue(())
    };
    match drive(run, &mut dev, &mut print).await {
        Ending::Reset(why) => why,
        Ending::Stopped => unreachable!("the transcript never stops the task"),
    }
}

/// Says `why` and waits forever (the application cannot run its OTA task; the LED task goes
/// on, as on the board).
async fn halt(why: &str) -> ! {
    say("ota", why);
    std::future::pending::<()>().await;
    unreachable!("pending never completes")
}

fn setup(cfg: &DeviceConfig) -> Result<(FlashMap, PublicKey, SimDevice), BoardError> {
    let map = crate::board::load_flashmap(&cfg.flashmap)?;
    let key = crate::board::load_pubkey(&cfg.pubkey)?;
    let dev = SimDevice::open(&cfg.flash, map, 2).map_err(BoardError::file(&cfg.flash))?;
    Ok((map, key, dev))
}

/// What [`drive`] runs with.
pub struct Drive<'a> {
    /// Where to connect, and the device's identity.
    pub cfg: &'a OtaConfig,
    /// The flash map of the device's flash.
    pub map: FlashMap,
    /// The keys downloads must verify with.
    pub keys: &'a [PublicKey],
    /// The running version (what "Update Availability" says).
    pub running: AppVersion,
    /// The TLS client configuration, for [`OtaConfig::tls`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The board's clock when the application started: session names (client ID, unique
    /// topic) come from it plus the time since ([`boot_ms`] picks one at random).
    pub boot_ms: u64,
}

/// How [`drive`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The device must reset (why): a verified update is pending, or the agent failed.
    Reset(String),
    /// The observer asked to stop.
    Stopped,
}

/// Runs update sessions against `dev`'s flash until the agent asks for a reboot or the observer
/// stops it, reporting every [`Step`] to `obs`.
pub async fn drive(run: Drive<'_>, dev: &mut SimDevice, obs: &mut (dyn Observer + Send)) -> Ending {
    let cfg = run.cfg;
    let mut ac = AgentConfig::new(run.map, run.keys, &cfg.board, run.running);
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
        obs,
        stopped: false,
        start: Instant::now(),
        boot: run.boot_ms,
        last: idle_status(),
        shown_pct: 0,
        quiet_check: None,
    };
    let mut agent = match Agent::new(ac, cx.tick()) {
        Ok(a) => a,
        Err(e) => return Ending::Reset(format!("agent: {e}")),
    };
    match agent.on_boot(&mut cx.dev.primary, &mut cx.dev.secondary) {
        Ok(BootReport::Normal) => {}
        Ok(BootReport::AwaitingConfirm) => cx.tell(&Step::TestImage),
        Ok(BootReport::Reverted) => cx.tell(&Step::Reverted),
        Ok(BootReport::RebootPending) => {
            return Ending::Reset("a downloaded image is pending".into())
        }
        Err(e) => cx.tell(&Step::FlashAtStart(&e.to_string())),
    }
    // The agent's first check is due at once; the example waits CY_OTA_INITIAL_CHECK_SECS.
    tokio::time::sleep(cfg.check_interval.min(Duration::from_secs(1))).await;
    while !cx.stopped {
        // A new session: client ID and unique topic from the clock, as the C agent.
        let tick = cx.tick();
        let id = topics::client_id("CY_IOT_DEVICE", tick);
        if let Err(e) = agent.new_session(tick) {
            return Ending::Reset(format!("agent: {e:?}"));
        }
        // The job's server while a redirected download lasts (spec §4.4: same credentials,
        // TLS unless the port is 1883), else the home broker.
        let server = server_for(cfg, agent.redirect());
        let here = agent.redirect().map(|(h, p)| (h.to_string(), p));
        let tls = run.tls.as_ref().filter(|_| server.tls);
        match Link::connect(&server, tls, &id).await {
            Ok(link) => match session(&server, &mut agent, &mut cx, link, &id).await {
                End::Reset(why) => return Ending::Reset(why),
                End::Stopped => return Ending::Stopped,
                End::Lost => {}
                End::Move => continue,
            },
            Err(error) => {
                let home = here.is_some();
                cx.tell(&Step::ConnectFailed {
                    error: &error,
                    home,
                    retry: RETRY,
                });
                if home {
                    agent.server_unreachable(cx.now());
                }
            }
        }
        if !cx.stopped {
            tokio::time::sleep(RETRY).await;
        }
    }
    Ending::Stopped
}

/// Where the device connects: `redirect` (the job's `Broker`/`Port`) or the home broker.
fn server_for(cfg: &OtaConfig, redirect: Option<(&str, u16)>) -> OtaConfig {
    let mut server = cfg.clone();
    if let Some((host, port)) = redirect {
        server.host = host.to_string();
        server.port = port;
        if port == 1883 {
            server.tls = false;
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
    /// The observer asked to stop.
    Stopped,
}

/// One connection to `cfg`'s broker.
async fn session(
    cfg: &OtaConfig,
    agent: &mut Agent<'_>,
    cx: &mut Ctx<'_>,
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
            cx.tell(&Step::LinkFailed(&e.to_string()));
            return stop_or(cx, End::Lost);
        }
    }
    cx.tell(&Step::Connected {
        host: &cfg.host,
        port: cfg.port,
        client_id,
        unique: &unique,
    });
    let now = cx.now();
    let out = match agent.confirm(now, &mut cx.dev.primary) {
        Ok(Some(o)) => {
            cx.tell(&Step::Confirmed);
            owned(Some(o))
        }
        Ok(None) => None,
        Err(e) => return End::Reset(format!("flash error while confirming: {e}")),
    };
    if let Some(r) = act(&mut link, cx, out).await {
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
                cx.tell(&Step::ConnectionLost(&e.to_string()));
                return stop_or(cx, End::Lost);
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
                cx.tell(&Step::BackHome);
            }
            return stop_or(cx, End::Move);
        }
    }
}

/// [`End::Stopped`] when the observer asked to stop, else `end`.
fn stop_or(cx: &Ctx<'_>, end: End) -> End {
    if cx.stopped {
        End::Stopped
    } else {
        end
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

/// Reports the agent's progress, then carries out its action; `Some` ends the connection.
async fn step<E: core::fmt::Debug>(
    link: &mut Link,
    agent: &Agent<'_>,
    cx: &mut Ctx<'_>,
    out: Result<Option<Action>, ota_core::agent::AgentError<E>>,
) -> Option<End> {
    let out = match out {
        Ok(o) => o,
        Err(e) => return Some(End::Reset(format!("flash error: {e}"))),
    };
    narrate(cx, agent.status());
    if let Some(Action::Publish(_, payload)) = &out {
        let status = agent.status();
        let kind = ota_core::protocol::decode_request(payload).map(|r| r.kind);
        if status.phase == Phase::Downloading
            && status.received > 0
            && kind == Ok(ota_core::protocol::MessageKind::RequestUpdate)
        {
            cx.tell(&Step::FallBack);
        }
    }
    // A verified image ends the session whatever the observer says.
    if cx.stopped && !matches!(out, Some(Action::Reboot)) {
        return Some(End::Stopped);
    }
    act(link, cx, out).await
}

async fn act(link: &mut Link, cx: &mut Ctx<'_>, out: Option<Action>) -> Option<End> {
    match out {
        None => None,
        Some(Action::Reboot) => Some(End::Reset("update downloaded and verified".into())),
        Some(Action::Redirect(host, port)) => {
            cx.tell(&Step::Redirect { host: &host, port });
            Some(stop_or(cx, End::Move))
        }
        Some(Action::Publish(topic, payload)) => match link.publish(&topic, &payload).await {
            Ok(()) => None,
            Err(e) => {
                cx.tell(&Step::LinkFailed(&e.to_string()));
                Some(stop_or(cx, End::Lost))
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

fn narrate(cx: &mut Ctx<'_>, now: Status) {
    let before = cx.last;
    cx.last = now;
    match (before.phase, now.phase) {
        (Phase::Idle | Phase::AwaitingConfirm, Phase::WaitingForJob)
            if cx.quiet_check.is_none() =>
        {
            cx.tell(&Step::Asking);
        }
        (Phase::WaitingForJob, Phase::Idle) => {
            let why = now
                .last_error
                .map_or_else(|| "no update".to_string(), |c| format!("no update: {c}"));
            if cx.quiet_check.as_deref() != Some(why.as_str()) {
                cx.tell(&Step::NoUpdate(now.last_error));
                cx.quiet_check = Some(why);
            }
        }
        (Phase::WaitingForJob, Phase::Downloading) => {
            cx.quiet_check = None;
            cx.shown_pct = 0;
            cx.tell(&Step::Accepted {
                resumed_from: now.resumed_from,
            });
        }
        (Phase::Downloading, Phase::Downloading) => {
            if let Some(total) = now.total.filter(|t| *t > 0) {
                let pct =
                    u32::try_from(u64::from(now.received) * 100 / u64::from(total)).unwrap_or(100);
                if pct >= cx.shown_pct + 10 || (pct == 100 && cx.shown_pct < 100) {
                    cx.shown_pct = pct - pct % 10;
                    cx.tell(&Step::Progress {
                        pct,
                        received: now.received,
                        total,
                    });
                }
            }
        }
        (Phase::Downloading, Phase::ReadyToReboot) => {
            if cx.shown_pct < 100 {
                cx.shown_pct = 100;
                let t = before.total.unwrap_or(0);
                cx.tell(&Step::Progress {
                    pct: 100,
                    received: t,
                    total: t,
                });
            }
            cx.tell(&Step::Verified);
        }
        (Phase::Downloading, Phase::Idle) => cx.tell(&Step::DownloadFailed(now.last_error)),
        _ => {}
    }
}
