//! Request handling: one [`Server`] shared by the dispatcher and the transfer tasks.
//!
//! Nothing here awaits the network while holding a lock, and nothing a device sends can make a
//! handler fail: every problem becomes one [`Event::Warning`]. Transfers (push, pull,
//! acknowledgement tracking) are in [`transfer`].

mod transfer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use firmware::protocol::codec::{encode_no_update, encode_result_received};
use firmware::protocol::{self, topics, AppVersion, MessageKind, Request};
use tokio::sync::{watch, Notify};

use super::events::{Event, EventSink, Mode};
use super::image::ServedImage;
use super::job::JobTemplate;
use super::state::State;
use super::transport::Client;

/// Payloads longer than this on the request topic are ignored unread.
pub const MAX_REQUEST: usize = 16 * 1024;
/// At most this many unique topics are remembered (for results and pull progress).
const MAX_TOPICS: usize = 50_000;
/// How long an acknowledgement waits for the state file to record what it acknowledges.
const SAVE_WAIT: Duration = Duration::from_secs(5);

struct Active {
    id: u64,
    device: String,
    abort: tokio::task::AbortHandle,
}

struct Pull {
    device: String,
    started: Instant,
    bytes: u32,
}

/// How the device records are kept.
pub(super) struct StatePolicy {
    /// A state writer runs (`--state`).
    pub persisting: bool,
    /// See [`super::PublishConfig::block_after`].
    pub block_after: u32,
}

/// The shared publisher state.
pub struct Server {
    pub(super) prefix: String,
    pub(super) images: HashMap<String, Arc<ServedImage>>,
    pub(super) template: JobTemplate,
    pub(super) client: Client,
    pub(super) events: EventSink,
    pub(super) state: Mutex<State>,
    /// Wakes the state writer.
    pub(super) dirty: Notify,
    /// Number of state changes so far.
    pub(super) changes: AtomicU64,
    /// The number of changes the last save covered (sent by the state writer).
    pub(super) saved: watch::Sender<u64>,
    /// Whether a state writer runs (`--state`): replies that report an outcome wait for it.
    persisting: bool,
    /// Reports on the old version after a full send before the version is blocked.
    block_after: u32,
    active: Mutex<HashMap<String, Active>>,
    topics: Mutex<HashMap<String, String>>,
    pulls: Mutex<HashMap<String, Pull>>,
    next_id: AtomicU64,
    /// Incremented whenever the broker connection is lost: a push that spans a change may have
    /// lost chunks, so it does not count as delivered (no revert detection for it).
    epoch: AtomicU64,
    /// The epoch in which the message being handled was received.
    rx_epoch: AtomicU64,
    queued: AtomicU64,
    acked: AtomicU64,
    ack_notify: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Server {
    pub(super) fn new(
        prefix: String,
        images: HashMap<String, Arc<ServedImage>>,
        template: JobTemplate,
        client: Client,
        events: EventSink,
        state: State,
        policy: StatePolicy,
    ) -> Self {
        Self {
            prefix,
            images,
            template,
            client,
            events,
            state: Mutex::new(state),
            dirty: Notify::new(),
            changes: AtomicU64::new(0),
            saved: watch::Sender::new(0),
            persisting: policy.persisting,
            block_after: policy.block_after.max(1),
            active: Mutex::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
            pulls: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            rx_epoch: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            ack_notify: Notify::new(),
        }
    }

    fn emit(&self, e: Event) {
        (self.events)(e);
    }

    fn warn(&self, topic: &str, message: String) {
        self.emit(Event::Warning {
            topic: topic.to_string(),
            message,
        });
    }

    /// A copy of the state (for saving).
    pub(super) fn snapshot(&self) -> Option<State> {
        Some(lock(&self.state).clone())
    }

    /// Stops every running transfer.
    pub(super) fn abort_all(&self) {
        for (_, a) in lock(&self.active).drain() {
            a.abort.abort();
        }
    }

    fn remember_topic(&self, topic: &str, device: &str) {
        let mut t = lock(&self.topics);
        if t.len() >= MAX_TOPICS {
            t.clear();
        }
        t.insert(topic.to_string(), device.to_string());
    }

    fn publish(self: &Arc<Self>, topic: String, payload: Bytes) {
        let s = Arc::clone(self);
        tokio::spawn(async move {
            let _ = s.send(&topic, payload).await;
        });
    }

    /// Records that the state changed and wakes the writer; returns the change's number.
    pub(super) fn changed(&self) -> u64 {
        let n = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
        self.dirty.notify_one();
        n
    }

    /// Like [`Self::publish`], but only once the state file holds change `change` (or
    /// [`SAVE_WAIT`] passed): a device told its result was received, or told there is no
    /// update after a revert, finds that outcome in `otactl status` and survives a restart.
    fn publish_when_saved(self: &Arc<Self>, change: u64, topic: String, payload: Bytes) {
        let s = Arc::clone(self);
        tokio::spawn(async move {
            if s.persisting {
                let mut saved = s.saved.subscribe();
                let stored = tokio::time::timeout(SAVE_WAIT, saved.wait_for(|&n| n >= change));
                if stored.await.is_err() {
                    log::warn!("state not saved after {SAVE_WAIT:?}; replying on {topic} anyway");
                }
            }
            let _ = s.send(&topic, payload).await;
        });
    }

    /// Handles one message from a request topic.
    ///
    /// `epoch` is the connection epoch in which the message was received: a transfer it starts
    /// only counts as delivered if the connection did not drop since.
    pub(super) fn handle(self: &Arc<Self>, topic: &str, payload: &[u8], epoch: u64) {
        self.rx_epoch.store(epoch, Ordering::Release);
        let Some(board) = topics::board_of_request_topic(topic, &self.prefix) else {
            self.warn(topic, "message on an unexpected topic ignored".into());
            return;
        };
        let Some(image) = self.images.get(board).cloned() else {
            self.warn(topic, format!("no image for board {board:?}; ignored"));
            return;
        };
        if payload.len() > MAX_REQUEST {
            self.warn(
                topic,
                format!(
                    "{}-byte message ignored (limit {MAX_REQUEST})",
                    payload.len()
                ),
            );
            return;
        }
        let req = match protocol::decode_request(payload) {
            Ok(r) => r,
            Err(e) => {
                self.warn(topic, format!("ignored: {e}"));
                return;
            }
        };
        let device = self.device_key(board, &req);
        match req.kind {
            MessageKind::UpdateAvailability => self.on_availability(&image, &device, &req),
            MessageKind::RequestUpdate => self.on_request_update(&image, &device, &req),
            MessageKind::SendDirectUpdate => self.on_direct(&image, &device, &req),
            MessageKind::RequestDataChunk => self.on_chunk_request(&image, &device, &req),
            MessageKind::Success | MessageKind::Failure => self.on_result(&image, &device, &req),
            _ => self.warn(topic, format!("{:?} ignored", req.kind)),
        }
    }

    fn device_key(&self, board: &str, req: &Request<'_>) -> String {
        if let Some(serial) = req.serial_number {
            return format!("{board}/{serial}");
        }
        req.unique_topic
            .and_then(|t| lock(&self.topics).get(t).cloned())
            .unwrap_or_else(|| format!("{board}/?"))
    }

    fn running(req: &Request<'_>) -> AppVersion {
        AppVersion::parse_device(req.version.unwrap_or(""))
    }

    fn on_availability(self: &Arc<Self>, image: &ServedImage, device: &str, req: &Request<'_>) {
        let Some(topic) = req.unique_topic else {
            return;
        };
        let running = Self::running(req);
        self.remember_topic(topic, device);
        let concurrent = lock(&self.active)
            .iter()
            .any(|(t, a)| a.device == device && t != topic);
        let (decision, settled) = {
            let mut st = lock(&self.state);
            let rec = st.device(device, &image.board);
            rec.shared |= concurrent;
            let settled = rec.observe_version(
                running,
                self.epoch.load(Ordering::Acquire),
                self.block_after,
            );
            let decision = rec.decide(running, image.version);
            if decision.is_ok() {
                rec.offered = Some(image.version.to_string());
            }
            (decision, settled)
        };
        let change = self.changed();
        // A settled result (update confirmed, revert seen) is saved before the device hears back.
        let must_save = settled.is_some();
        let reply = |payload: Bytes| {
            if must_save {
                self.publish_when_saved(change, topic.to_string(), payload);
            } else {
                self.publish(topic.to_string(), payload);
            }
        };
        if let Some(r) = settled {
            self.emit(Event::Result {
                device: device.to_string(),
                version: r.version,
                result: r.result,
            });
        }
        match decision {
            Ok(()) => match self.template.render(&image.board, image.version, topic) {
                Ok(doc) => {
                    self.emit(Event::Offered {
                        device: device.to_string(),
                        running: running.to_string(),
                        version: image.version.to_string(),
                    });
                    reply(Bytes::from(doc));
                }
                Err(e) => self.warn(topic, format!("cannot build the job document: {e:#}")),
            },
            Err(why) => {
                let mut buf = [0u8; 512];
                self.emit(Event::NoUpdate {
                    device: device.to_string(),
                    running: running.to_string(),
                    reason: why.reason().into(),
                });
                if let Ok(n) = encode_no_update(&mut buf, topic) {
                    reply(Bytes::copy_from_slice(&buf[..n]));
                }
            }
        }
    }

    /// Whether `image` may go to this device now (device rule + blocklist); warns if not.
    fn may_send(&self, image: &ServedImage, device: &str, req: &Request<'_>, topic: &str) -> bool {
        if req.version.is_none() {
            return true;
        }
        let running = Self::running(req);
        let verdict = lock(&self.state)
            .device(device, &image.board)
            .decide(running, image.version);
        if let Err(why) = verdict {
            self.emit(Event::NoUpdate {
                device: device.to_string(),
                running: running.to_string(),
                reason: why.reason().into(),
            });
            self.warn(
                topic,
                format!(
                    "{device} runs {running}: not sending {} ({})",
                    image.version,
                    why.reason()
                ),
            );
            return false;
        }
        true
    }

    fn on_request_update(
        self: &Arc<Self>,
        image: &Arc<ServedImage>,
        device: &str,
        req: &Request<'_>,
    ) {
        let Some(topic) = req.unique_topic else {
            return;
        };
        self.remember_topic(topic, device);
        if !self.may_send(image, device, req, topic) {
            return;
        }
        {
            let mut st = lock(&self.state);
            let rec = st.device(device, &image.board);
            rec.sent = None;
            rec.last_seen = super::state::now();
        }
        self.start_push(image, topic, device, Mode::Push);
    }

    fn on_direct(self: &Arc<Self>, image: &Arc<ServedImage>, device: &str, req: &Request<'_>) {
        let Ok(topic) = topics::direct_topic(&self.prefix, &image.board) else {
            return;
        };
        if !self.may_send(image, device, req, &topic) {
            return;
        }
        if lock(&self.active).contains_key(topic.as_str()) {
            log::debug!("direct broadcast on {topic} already running");
            return;
        }
        let device = format!("{}/*", image.board);
        self.start_push(image, &topic, &device, Mode::Direct);
    }

    fn on_result(self: &Arc<Self>, image: &ServedImage, device: &str, req: &Request<'_>) {
        let Some(topic) = req.unique_topic else {
            return;
        };
        let success = req.kind == MessageKind::Success;
        let r = {
            let mut st = lock(&self.state);
            let rec = st.device(device, &image.board);
            let version = rec
                .sent
                .clone()
                .or_else(|| rec.offered.clone())
                .unwrap_or_else(|| image.version.to_string());
            rec.observe_result(success, &version)
        };
        let change = self.changed();
        self.emit(Event::Result {
            device: device.to_string(),
            version: r.version,
            result: r.result,
        });
        let mut buf = [0u8; 512];
        if let Ok(n) = encode_result_received(&mut buf, topic) {
            self.publish_when_saved(change, topic.to_string(), Bytes::copy_from_slice(&buf[..n]));
        }
    }
}
