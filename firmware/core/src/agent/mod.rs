//! The device's OTA agent: a sans-IO state machine. It takes inbound MQTT messages and the
//! time, returns the message to publish (or "reboot now"), and does its flash work on the
//! secondary slot through [`NorFlash`]. It never opens a socket, spawns a task or allocates.
//!
//! # Driving it (what a board loop does)
//!
//! ```text
//! boot (crate::boot::BootLoader::boot)
//! let mut agent = Agent::new(config, tick_ms)?;
//! match agent.on_boot(&mut primary, &mut secondary)? {        // must come first
//!     BootReport::AwaitingConfirm => …,    // call agent.confirm once healthy
//!     BootReport::Reverted => agent.report_reverted(&mut secondary)?,  // publish it
//!     BootReport::RebootPending => reset,  // a finished download was (re)marked pending
//!     BootReport::Normal => {}
//! }
//! connect; subscribe agent.unique_topic() (and the app filter topic); agent.handle(now, Inbound::Connected, …)
//! loop {
//!     on PUBLISH (topic, payload):  out = agent.handle(now, Inbound::Publish { topic, payload }, &mut secondary)?
//!     every ~100 ms:                out = agent.poll(now, &mut secondary)?
//!     after a healthy start:        out = agent.confirm(now, &mut primary)?
//!     match out { Some(Outbound::Publish { topic, payload }) => publish QoS 1,
//!                 Some(Outbound::Reboot) => reset (the bootloader installs the update),
//!                 None => {} }
//! }
//! ```
//!
//! # Session
//!
//! 1. Every `check_interval_ms`: publish "Update Availability"; wait `job_timeout_ms` for the
//!    job document; judge it with [`JobDoc::evaluate`] (version must be newer, board equal).
//! 2. Download into the secondary slot. Pull mode publishes "Request Data Chunk" (`Offset`,
//!    `Size`: the chunk size, or the exact rest for the last chunk where the C agent sends
//!    `-1`, which publisher.py cannot serve) for the first missing byte after each chunk and
//!    after `chunk_timeout_ms`; push mode publishes "Request Update" once, and once it has had
//!    to ask (a resumed download, a chunk timeout, a reconnect) pulls the rest chunk by chunk.
//!    When `max_retries` requests in a row bring nothing, the agent falls back once per
//!    download to a fresh "Request Update" (what the C agent does after its retries): a
//!    publisher that only pushes sends the image from the start, the chunks already there are
//!    dropped as duplicates and the rest extends the download.
//!    Any chunk is accepted if it extends the received prefix: duplicates and chunks
//!    from the future are dropped (they are requested again), overlaps are trimmed. Progress
//!    is persisted ([`journal`]) after every chunk; after a reset the same job resumes there.
//! 3. When all bytes are there: validate the image (hash, key, signature, size, newer version;
//!    for an encrypted image, whose hash is over the plaintext, the signature of its recorded
//!    hash, its size and version: the bootloader checks the payload against that hash through
//!    its decryption key), mark it pending ([`crate::boot::app::set_pending`], test or permanent), return
//!    [`Outbound::Reboot`]. A bad image is erased and reported as `Failure`.
//! 4. After the reboot the new image runs unconfirmed; once the application is healthy it
//!    calls [`Agent::confirm`], which writes `image_ok` and reports `Success`.
//!
//! # States
//!
//! | state | on | does | next |
//! | --- | --- | --- | --- |
//! | `Unchecked` | [`Agent::on_boot`] | looks at both slots | `AwaitingConfirm`, `ReadyToReboot` (finished download made pending) or `Idle` |
//! | `AwaitingConfirm` | [`Agent::confirm`] | writes `image_ok`, publishes `Success` | `Idle` |
//! | `Idle` | `poll`, check due | publishes "Update Availability" | `WaitingForJob` |
//! | `WaitingForJob` | job document | version newer and board equal → erase the slot or resume from the journal, ask for data | `Downloading` |
//! | `WaitingForJob` | job naming another MQTT server, `follow_redirects` | as above, then [`Outbound::Redirect`]; asks for data on [`Inbound::Connected`] there | `Downloading` |
//! | `WaitingForJob` | refused job / timeout | records the [`ErrorCode`] | `Idle` |
//! | `Downloading` | chunk extending the prefix | writes it, appends progress, asks for the next (pull) | `Downloading` |
//! | `Downloading` | last byte | verifies, `set_pending` → [`Outbound::Reboot`]; bad image → erase, `Failure` | `ReadyToReboot` / `Idle` |
//! | `Downloading` | older version in a chunk | (`INVALID_VERSION`, as the C device) | `Idle` |
//! | `Downloading` | chunk timeout | asks again; after `max_retries` sends "Request Update" once, then gives up, keeping the journal | `Downloading` / `Idle` |
//! | any | [`Inbound::Connected`] | re-sends the pending request | same |
//!
//! Protocol failures never come back as `Err`: they are in [`Status::last_error`] (a stable
//! [`ErrorCode`]) and, where the device reports them, in a `Failure` result. `Err` means the
//! flash failed (or, in the simulator, lost power); the persisted state is then consistent
//! and a new agent after the reset carries on.
//!
//! Buffer sizes are constants ([`OUT_MAX`]); the download path uses no heap.

mod download;
mod error;
pub mod journal;

pub use error::AgentError;

use embedded_storage::nor_flash::NorFlash;

use crate::flashmap::FlashMap;
use crate::image::verify::PublicKey;
use crate::protocol::codec;
use crate::protocol::topics::{self, Topic};
use crate::protocol::{AppVersion, DeviceIdentity, ErrorCode, JobDoc, JobVerdict, MessageKind};
use journal::Journal;

/// Size of the outbound message buffer (the longest request is ~600 bytes with a 255-byte
/// topic).
pub const OUT_MAX: usize = 768;

/// How chunks are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// "Request Data Chunk" per chunk (the C agent's compile-time chunk flow; the default of
    /// [`AgentConfig::new`]).
    Pull,
    /// "Request Update" once (the publisher pushes the whole image; the example firmware's
    /// flow); after a resume, a timeout or a reconnect the rest is pulled.
    Push,
}

/// Agent settings.
#[derive(Clone, Copy, Debug)]
pub struct AgentConfig<'a> {
    /// The flash map (secondary slot geometry, trailer layout, largest image).
    pub map: FlashMap,
    /// Trusted signing keys (empty: hash-only).
    pub keys: &'a [PublicKey],
    /// Identity literals of the request templates.
    pub identity: DeviceIdentity<'a>,
    /// `COMPANY_TOPIC_PREPEND`.
    pub prefix: &'a str,
    /// `CY_TARGET_BOARD_STRING`.
    pub board: &'a str,
    /// The running version.
    pub running: AppVersion,
    /// The broker host and port the device is connected to (for the job's same-server test).
    pub host: &'a str,
    /// Broker port.
    pub port: u16,
    /// Chunk size to request (≤ 4096).
    pub chunk_size: u16,
    /// Pull or push.
    pub delivery: Delivery,
    /// Mark downloaded images permanent (no test boot) instead of test.
    pub permanent: bool,
    /// Time between update checks.
    pub check_interval_ms: u64,
    /// How long to wait for the job document.
    pub job_timeout_ms: u64,
    /// How long to wait for a chunk before asking again.
    pub chunk_timeout_ms: u64,
    /// Re-requests without progress before the session is abandoned (progress is kept).
    pub max_retries: u32,
    /// Follow a job's `Broker`/`Port` redirect (`CHANGING_SERVER`, spec §4.4) like the C
    /// agent: [`Outbound::Redirect`] asks the driver to connect there for the download. Off,
    /// such a job is refused with [`ErrorCode::ChangingServer`] (for drivers that cannot).
    pub follow_redirects: bool,
}

impl<'a> AgentConfig<'a> {
    /// Defaults: APP identity, pull mode, 4096-byte chunks, test swaps, check every 60 s,
    /// 30 s job timeout, 10 s chunk timeout, 5 retries.
    #[must_use]
    pub fn new(map: FlashMap, keys: &'a [PublicKey], board: &'a str, running: AppVersion) -> Self {
        Self {
            map,
            keys,
            identity: DeviceIdentity::APP,
            prefix: "MyUniqueTopic",
            board,
            running,
            host: "",
            port: 0,
            chunk_size: 4096,
            delivery: Delivery::Pull,
            permanent: false,
            check_interval_ms: 60_000,
            job_timeout_ms: 30_000,
            chunk_timeout_ms: 10_000,
            max_retries: 5,
            follow_redirects: false,
        }
    }
}

/// Inbound events.
#[derive(Clone, Copy, Debug)]
pub enum Inbound<'p> {
    /// (Re)connected and subscribed: the agent re-sends what it is waiting on.
    Connected,
    /// A PUBLISH on a subscribed topic.
    Publish {
        /// Its topic.
        topic: &'p str,
        /// Its payload.
        payload: &'p [u8],
    },
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound<'o> {
    /// Publish `payload` on `topic` (QoS 1, no retain).
    Publish {
        /// The request topic `PFX/BRD/publish_notify`.
        topic: &'o str,
        /// The JSON request.
        payload: &'o [u8],
    },
    /// Reset the device so the bootloader installs the pending image.
    Reboot,
    /// The job names another server (spec §4.4 `CHANGING_SERVER`): disconnect, connect to
    /// `host:port` (a new session: call [`Agent::new_session`] first) and hand the agent
    /// [`Inbound::Connected`]; it then asks for the data there. When the download ends
    /// ([`Agent::redirect`] is `None` again), go back to the home broker.
    Redirect {
        /// The job's `Broker`.
        host: &'o str,
        /// The job's `Port` (the home port when the job left it empty).
        port: u16,
    },
}

/// The longest `Broker` host the agent follows.
pub const HOST_MAX: usize = 128;

/// Where the agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// [`Agent::on_boot`] has not run yet; the agent does nothing until it has.
    Unchecked,
    /// Waiting for the next update check.
    Idle,
    /// The running image is a test image: no updates until [`Agent::confirm`].
    AwaitingConfirm,
    /// Waiting for the job document.
    WaitingForJob,
    /// Downloading.
    Downloading,
    /// A verified image is pending: reboot.
    ReadyToReboot,
}

/// A snapshot for logs, tests and `otactl status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The phase.
    pub phase: Phase,
    /// Bytes of the image received (in order).
    pub received: u32,
    /// The image size, once known.
    pub total: Option<u32>,
    /// Where the current download resumed from a previous session/reset (bytes), if it did.
    pub resumed_from: Option<u32>,
    /// The last failure.
    pub last_error: Option<ErrorCode>,
}

/// What [`Agent::on_boot`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootReport {
    /// Nothing special.
    Normal,
    /// The running image was just installed: confirm it when healthy. In swap mode it is a
    /// test image the next boot reverts unless confirmed; in overwrite mode the install is
    /// permanent and confirming only records (in `image_ok`) that it started and was reported.
    AwaitingConfirm,
    /// The last update was reverted (it never confirmed itself).
    Reverted,
    /// A downloaded image is pending (or was made pending again): reboot.
    RebootPending,
}

#[derive(Clone, Copy, Debug)]
struct Download {
    version: AppVersion,
    total: Option<u32>,
    /// Bytes of the image received in order (`flushed` + tail).
    received: u32,
    /// Bytes written to flash (a multiple of the write size).
    flushed: u32,
    tail: [u8; 32],
    next_rec: u32,
    requested_at: u64,
    retries: u32,
    inconsistent: bool,
    /// The fallback "Request Update" after `max_retries` unanswered requests was sent.
    fell_back: bool,
    /// The agent asks for each chunk after the previous one: pull delivery, or a push download
    /// that had to ask (resumed, a chunk timed out, reconnected). A push that is still
    /// streaming needs no requests.
    pulling: bool,
    /// Redirected: the first request waits for [`Inbound::Connected`] on the data server.
    awaiting_server: bool,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// [`Agent::on_boot`] not called yet: do nothing (it could erase a revert image).
    Unchecked,
    Idle {
        next_check: u64,
    },
    AwaitingConfirm,
    WaitJob {
        deadline: u64,
    },
    Download(Download),
    ReadyToReboot,
}

/// What a step produced, before it is turned into an [`Outbound`] borrowing the buffer.
enum Out {
    Nothing,
    Publish(usize),
    Reboot,
    Redirect,
}

/// The OTA agent (see the module docs).
#[derive(Debug)]
pub struct Agent<'a> {
    cfg: AgentConfig<'a>,
    state: State,
    journal: Journal,
    unique: Topic,
    request: Topic,
    out: [u8; OUT_MAX],
    resumed_from: Option<u32>,
    last_error: Option<ErrorCode>,
    /// The data server of a redirected download (while it lasts).
    redirect: Option<(heapless::String<HOST_MAX>, u16)>,
}

type Res<T, E> = Result<T, AgentError<E>>;

impl<'a> Agent<'a> {
    /// An agent whose session topic is made from `tick_ms` (milliseconds since boot), as the
    /// C device does. Nothing happens until [`Self::on_boot`] has looked at the slots (so a
    /// test image's revert copy is never erased); then the first update check is due
    /// immediately.
    ///
    /// The constructor touches no flash, so its only error is the topic's.
    ///
    /// # Errors
    /// [`TopicError`](topics::TopicError) for a prefix or board that cannot form a topic.
    pub fn new(cfg: AgentConfig<'a>, tick_ms: u32) -> Result<Self, topics::TopicError> {
        Ok(Self {
            unique: topics::unique_topic(cfg.prefix, cfg.board, tick_ms)?,
            request: topics::request_topic(cfg.prefix, cfg.board)?,
            journal: Journal::new(&cfg.map),
            cfg,
            state: State::Unchecked,
            out: [0; OUT_MAX],
            resumed_from: None,
            last_error: None,
            redirect: None,
        })
    }

    /// Starts a new session (before each connection): the unique topic is derived again from
    /// `tick_ms` (milliseconds since boot), as the C agent does for every session, so two
    /// boards, or two sessions of one board, do not share a reply topic.
    ///
    /// # Errors
    /// [`TopicError`](topics::TopicError) for a prefix or board that cannot form a topic
    /// (already refused by [`Self::new`]).
    pub fn new_session(&mut self, tick_ms: u32) -> Result<(), topics::TopicError> {
        self.unique = topics::unique_topic(self.cfg.prefix, self.cfg.board, tick_ms)?;
        Ok(())
    }

    /// The server (`host`, `port`) of the job's redirect while the redirected download lasts;
    /// `None`: the home broker.
    #[must_use]
    pub fn redirect(&self) -> Option<(&str, u16)> {
        match self.state {
            State::Download(_) | State::ReadyToReboot => {
                self.redirect.as_ref().map(|(h, p)| (h.as_str(), *p))
            }
            _ => None,
        }
    }

    /// The unique topic to subscribe to (job and chunks arrive there).
    #[must_use]
    pub fn unique_topic(&self) -> &str {
        &self.unique
    }

    /// The request topic the agent publishes on.
    #[must_use]
    pub fn request_topic(&self) -> &str {
        &self.request
    }

    /// The current status.
    #[must_use]
    pub fn status(&self) -> Status {
        let (phase, received, total) = match &self.state {
            State::Unchecked => (Phase::Unchecked, 0, None),
            State::Idle { .. } => (Phase::Idle, 0, None),
            State::AwaitingConfirm => (Phase::AwaitingConfirm, 0, None),
            State::WaitJob { .. } => (Phase::WaitingForJob, 0, None),
            State::Download(d) => (Phase::Downloading, d.received, d.total),
            State::ReadyToReboot => (Phase::ReadyToReboot, 0, None),
        };
        Status {
            phase,
            received,
            total,
            resumed_from: self.resumed_from,
            last_error: self.last_error,
        }
    }

    fn emit(&self, out: Out) -> Option<Outbound<'_>> {
        match out {
            Out::Nothing => None,
            Out::Reboot => Some(Outbound::Reboot),
            Out::Redirect => self
                .redirect
                .as_ref()
                .map(|(host, port)| Outbound::Redirect {
                    host: host.as_str(),
                    port: *port,
                }),
            Out::Publish(n) => Some(Outbound::Publish {
                topic: &self.request,
                payload: &self.out[..n],
            }),
        }
    }

    fn request(&mut self, kind: MessageKind) -> Result<Out, ()> {
        let n = codec::encode_request(
            &mut self.out,
            kind,
            &self.cfg.identity,
            self.cfg.running,
            &self.unique,
        )
        .map_err(|_| ())?;
        Ok(Out::Publish(n))
    }

    fn result(&mut self, success: bool) -> Result<Out, ()> {
        let n = codec::encode_result(&mut self.out, success, &self.unique).map_err(|_| ())?;
        Ok(Out::Publish(n))
    }

    fn idle(&mut self, now: u64) {
        self.redirect = None;
        self.state = State::Idle {
            next_check: now + self.cfg.check_interval_ms,
        };
    }

    /// The driver could not connect to the server of an [`Outbound::Redirect`]: the session
    /// ends ([`ErrorCode::Connect`]; the progress is kept) and the driver goes home.
    pub fn server_unreachable(&mut self, now: u64) {
        if self.redirect.is_some() && matches!(self.state, State::Download(_)) {
            self.last_error = Some(ErrorCode::Connect);
            self.idle(now);
        }
    }

    /// Timers: due update checks, job timeout, chunk re-requests.
    ///
    /// # Errors
    /// Flash or encoding errors.
    pub fn poll<F: NorFlash>(
        &mut self,
        now: u64,
        flash: &mut F,
    ) -> Res<Option<Outbound<'_>>, F::Error> {
        let out = match self.state {
            State::Idle { next_check } if now >= next_check => {
                self.state = State::WaitJob {
                    deadline: now + self.cfg.job_timeout_ms,
                };
                self.request(MessageKind::UpdateAvailability)
            }
            State::WaitJob { deadline } if now >= deadline => {
                self.last_error = Some(ErrorCode::NoUpdateAvailable);
                self.idle(now);
                Ok(Out::Nothing)
            }
            State::Download(d)
                if !d.awaiting_server && now >= d.requested_at + self.cfg.chunk_timeout_ms =>
            {
                self.retry(now, flash)?
            }
            _ => Ok(Out::Nothing),
        };
        let out = out.map_err(|()| AgentError::BufferTooSmall)?;
        Ok(self.emit(out))
    }

    /// Handles one inbound event.
    ///
    /// # Errors
    /// Flash or encoding errors (a power loss leaves the persisted progress consistent).
    pub fn handle<F: NorFlash>(
        &mut self,
        now: u64,
        msg: Inbound<'_>,
        flash: &mut F,
    ) -> Res<Option<Outbound<'_>>, F::Error> {
        let out = match (self.state, msg) {
            (State::WaitJob { .. }, Inbound::Connected) => {
                self.request(MessageKind::UpdateAvailability)
            }
            (State::Download(d), Inbound::Connected) if d.awaiting_server => {
                self.first_request(now)
            }
            (State::Download(_), Inbound::Connected) => self.ask(now),
            (State::WaitJob { .. }, Inbound::Publish { payload, .. }) => {
                self.on_job(now, payload, flash)?
            }
            (State::Download(d), Inbound::Publish { .. }) if d.awaiting_server => Ok(Out::Nothing),
            (State::Download(_), Inbound::Publish { payload, .. }) => {
                self.on_chunk(now, payload, flash)?
            }
            _ => Ok(Out::Nothing),
        };
        let out = out.map_err(|()| AgentError::BufferTooSmall)?;
        Ok(self.emit(out))
    }

    fn on_job<F: NorFlash>(
        &mut self,
        now: u64,
        payload: &[u8],
        flash: &mut F,
    ) -> Res<Result<Out, ()>, F::Error> {
        let verdict = match JobDoc::parse(payload) {
            Ok(job) => {
                let ctx = crate::protocol::DeviceContext {
                    running: self.cfg.running,
                    board: self.cfg.board,
                    connection: crate::protocol::job::Connection::Mqtt,
                    host: self.cfg.host,
                    port: self.cfg.port,
                };
                match job.evaluate(&ctx) {
                    JobVerdict::Accept => Ok((job.version, None)),
                    JobVerdict::ChangeServer {
                        connection: crate::protocol::job::Connection::Mqtt,
                        host,
                        port,
                    } if self.cfg.follow_redirects => heapless::String::try_from(host)
                        .map(|h| (job.version, Some((h, port))))
                        .map_err(|()| ErrorCode::ChangingServer),
                    JobVerdict::ChangeServer { .. } => Err(ErrorCode::ChangingServer),
                    JobVerdict::Reject(code) => Err(code),
                }
            }
            Err(code) => Err(code),
        };
        match verdict {
            Ok((version, server)) => {
                let redirected = server.is_some();
                self.redirect = server;
                let out = self.start_download(now, version, flash, redirected)?;
                if redirected && matches!(self.state, State::Download(_)) {
                    return Ok(Ok(Out::Redirect));
                }
                Ok(out)
            }
            Err(code) => {
                fw_info!("job refused: {}", code);
                self.last_error = Some(code);
                self.idle(now);
                Ok(Ok(Out::Nothing))
            }
        }
    }

    /// After a healthy start of a test image: writes `image_ok` (MCUboot `boot_set_confirmed`)
    /// and reports `Success`. Does nothing unless [`Self::on_boot`] said
    /// [`BootReport::AwaitingConfirm`].
    ///
    /// # Errors
    /// Flash or encoding errors.
    pub fn confirm<F: NorFlash>(
        &mut self,
        now: u64,
        primary: &mut F,
    ) -> Res<Option<Outbound<'_>>, F::Error> {
        if !matches!(self.state, State::AwaitingConfirm) {
            return Ok(None);
        }
        let layout = self.cfg.map.trailer_for(&self.cfg.map.primary);
        crate::boot::app::set_confirmed(primary, &layout).map_err(AgentError::from_boot)?;
        self.idle(now);
        let out = self.result(true).map_err(|()| AgentError::BufferTooSmall)?;
        Ok(self.emit(out))
    }
}
