//! Every decision of the publisher, without I/O: what to answer, what to send, what to record,
//! what to block. [`Core`] takes `(now, input)` and produces transmits ([`Core::poll_transmit`]),
//! events ([`Core::poll_event`]) and batches of changes to store ([`Core::take_save`]: the
//! records it touched and a history event per offer, transfer, result, revert and block); it owns its
//! state, takes no locks, and never touches a socket, a timer or a file (the shape of rumqttc's
//! `MqttState` and of the device agent). `super::driver` runs it on tokio; the unit and property
//! tests run it with made-up inputs and clocks.
//!
//! Trust boundaries (spec §1.4, §2.1):
//! - A device's `SerialNumber` identifies it only when it is its own ([`state::device_key`]);
//!   the template serial, a missing one, and a serial seen from two devices at once are
//!   *unidentified* and never blocked automatically.
//! - Replies go only to `PFX/BRD/OTAImage/<0–65535>` of the board whose request topic the
//!   request arrived on ([`topics::parse_unique_topic`]); the broadcast topic only for "Send
//!   Direct Update". Results are attributed through their topic to the session the publisher
//!   served there, never through a serial in the message.
//! - Work per request is bounded: one transfer per unique topic, at most
//!   [`Limits::max_transfers`] pushes at once (the rest wait in a bounded queue), a per-topic
//!   rate for chunk requests, a bounded reply queue, rate-limited warnings.

mod pace;
mod transfer;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ota_core::protocol::codec::{encode_no_update, encode_result_received};
use ota_core::protocol::{self, topics, AppVersion, MessageKind, Request};

use super::document::JobTemplate;
use super::events::{Event, Mode};
use super::served::ServedImage;
use super::state::{self, State};
use super::store::{Batch, HistoryEvent, HistoryKind};

use pace::Bucket;
use transfer::{Pull, Push};

/// Payloads longer than this on the request topic are ignored unread (a device's longest
/// request, a chunk request with a 255-byte topic, is well under 1 KiB).
pub const MAX_REQUEST: usize = 4 * 1024;
/// How long an acknowledgement waits for the state file to record what it acknowledges.
const SAVE_WAIT: Duration = Duration::from_secs(5);
/// A session (unique topic) with no traffic for this long is forgotten.
const SESSION_TTL: Duration = Duration::from_secs(15 * 60);
/// How often forgotten sessions and idle pulls are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// At most this many warnings per [`WARN_WINDOW`]; the rest are counted and summarised.
const WARN_BURST: u32 = 20;
const WARN_WINDOW: Duration = Duration::from_secs(10);
/// `detail` of a transfer event the core infers: the device reports the version it was offered
/// but no transfer of it was recorded.
pub const INFERRED_TRANSFER: &str = "inferred: the device runs the version it was offered; the publisher that sent it stopped before recording the transfer";

/// What bounds the work a publisher does for devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// PUBLISHes handed to one MQTT connection and not yet acknowledged by the broker.
    pub window: usize,
    /// Pushes (whole-image streams) running at once; more wait in a queue.
    pub max_transfers: usize,
    /// Pushes waiting for a slot; beyond this a "Request Update" is refused with a warning.
    pub max_waiting: usize,
    /// "Request Data Chunk" messages served per second per unique topic (a burst of as many is
    /// allowed); a faster device's requests are deferred, the latest one kept.
    pub chunk_requests_per_sec: u32,
    /// Small replies (job documents, answers, pulled chunks) queued; beyond this they are
    /// dropped with a warning.
    pub max_replies: usize,
    /// PUBLISH packets per second on the connection (`None`: no limit).
    pub publish_rate: Option<u32>,
    /// Payload bytes per second on the connection (`None`: no limit).
    pub bytes_rate: Option<u32>,
    /// Chunks a push sends at once before it is paced (half the broker's queue per device).
    pub burst: usize,
    /// Bytes per second a push is paced to after its burst.
    pub device_rate: u32,
}

/// Default of [`Limits::max_transfers`].
pub const DEFAULT_MAX_TRANSFERS: usize = 32;
/// Default of [`Limits::chunk_requests_per_sec`].
pub const DEFAULT_CHUNK_RATE: u32 = 1000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            window: 128,
            max_transfers: DEFAULT_MAX_TRANSFERS,
            max_waiting: 4096,
            chunk_requests_per_sec: DEFAULT_CHUNK_RATE,
            max_replies: 8192,
            publish_rate: None,
            bytes_rate: None,
            burst: super::profile::Profile::GENERIC.burst(),
            device_rate: super::profile::DEFAULT_DEVICE_RATE,
        }
    }
}

/// The core's configuration.
pub struct CoreConfig {
    /// Company topic prefix.
    pub prefix: String,
    /// Job document template.
    pub template: JobTemplate,
    /// See [`super::PublishConfig::block_after`].
    pub block_after: u32,
    /// Whether a state writer runs: replies that announce an outcome wait for its save.
    pub persisting: bool,
    /// Work bounds.
    pub limits: Limits,
    /// MQTT connections the transmits are spread over (at least 1); each push stays on one.
    pub connections: usize,
}

/// Identifies one transmit, so its acknowledgement can be attributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u64);

/// One PUBLISH (QoS 1, not retained) to hand to the MQTT client of connection `conn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The connection (index) to send it on.
    pub conn: usize,
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Report its fate with [`Input::Acked`] or [`Input::Failed`].
    pub tag: Tag,
}

/// What happened.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Connection `n` is up (the first one also subscribed): transmits may flow on it.
    Connected(usize),
    /// Connection `n` is gone: every transmit on it not yet acknowledged is lost.
    Disconnected(usize),
    /// A message arrived on a subscribed topic.
    Message {
        /// Its topic.
        topic: &'a str,
        /// Its payload.
        payload: &'a [u8],
    },
    /// The broker acknowledged this transmit.
    Acked(Tag),
    /// This transmit could not be handed over (it will never be acknowledged).
    Failed(Tag),
    /// The broker refused this transmit (MQTT 5 PUBACK reason code).
    Refused(Tag, Refusal),
    /// The state writer stored every change up to this number.
    Saved(u64),
    /// Another process (`otactl status --unblock`) cleared `version` for `device` in the store.
    Unblocked {
        /// Device key.
        device: &'a str,
        /// The version no longer blocked.
        version: &'a str,
    },
    /// Another publisher on the same store (a replica) blocked `version` for `device`: it is
    /// not offered or sent to it here either.
    Blocked {
        /// Device key.
        device: &'a str,
        /// The version blocked.
        version: &'a str,
    },
    /// Another publisher on the same store wrote `device`'s record (what it sent, what the
    /// device reported): merged into this one's ([`state::DeviceRecord::merge_from`]), so that
    /// a revert reported here of an image sent there is recognised.
    Record {
        /// Device key.
        device: &'a str,
        /// The record as stored (its blocked versions come as [`Input::Blocked`]).
        record: &'a state::DeviceRecord,
    },
}

/// Why a broker refused a PUBLISH (MQTT 5 PUBACK reason codes that matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 0x97 Quota exceeded: throttled; back off and send it again.
    QuotaExceeded,
    /// 0x87 Not authorized, 0x90 Topic name invalid, 0x99 Payload format invalid, packet too
    /// large or any other error: this transfer cannot succeed.
    Fatal(&'static str),
}

/// How long the connection pauses after "Quota exceeded".
const QUOTA_BACKOFF: Duration = Duration::from_secs(1);

/// What a transmit belongs to.
enum Owner {
    /// A reply (job document, answer).
    Reply,
    /// A chunk of push `id` on `topic`.
    Chunk {
        topic: String,
        id: u64,
        index: usize,
    },
    /// The last chunk of a pull: once acknowledged, the device has been sent everything.
    PullLast { topic: String, device: String },
}

struct Reply {
    topic: String,
    payload: Bytes,
    owner: Owner,
}

struct Held {
    change: u64,
    deadline: Instant,
    reply: Reply,
}

/// One MQTT connection as the core sees it.
struct Link {
    connected: bool,
    /// Transmits handed out on it and not yet acknowledged.
    outstanding: usize,
    /// Its PUBLISH and byte budgets (broker profile), made on first use.
    publishes: Option<Bucket>,
    bytes: Option<Bucket>,
    /// No transmits before this (after "Quota exceeded").
    paused_until: Option<Instant>,
}

/// What the publisher knows about a unique topic it served.
struct Session {
    device: String,
    board: String,
    /// The version offered or sent in this session.
    version: Option<AppVersion>,
    last: Instant,
    /// When a push to this topic last started.
    pushed: Option<Instant>,
}

/// The publisher's decisions and state.
pub struct Core {
    cfg: CoreConfig,
    images: HashMap<String, Arc<ServedImage>>,
    state: State,
    links: Vec<Link>,
    /// Where the next transmit search starts (round-robin over connections).
    next_link: usize,
    /// Incremented at every disconnect (see `DeviceRecord::sent_epoch`).
    epoch: u64,
    next_tag: u64,
    next_id: u64,
    tags: HashMap<Tag, (usize, Owner)>,
    replies: VecDeque<Reply>,
    held: VecDeque<Held>,
    pushes: HashMap<String, Push>,
    running: VecDeque<String>,
    waiting: VecDeque<String>,
    pulls: HashMap<String, Pull>,
    sessions: HashMap<String, Session>,
    events: VecDeque<Event>,
    changes: u64,
    taken: u64,
    /// Records changed since the last batch.
    dirty: BTreeSet<String>,
    /// History since the last batch.
    journal: Vec<HistoryEvent>,
    told: HashSet<String>,
    next_sweep: Option<Instant>,
    warn_window: Option<Instant>,
    warned: u32,
    suppressed: u32,
}

fn reason(kind: MessageKind) -> &'static str {
    kind.as_str()
}

impl Core {
    /// A core serving `images` (by board) with `state`.
    #[must_use]
    pub fn new(cfg: CoreConfig, images: HashMap<String, Arc<ServedImage>>, state: State) -> Self {
        let links = (0..cfg.connections.max(1))
            .map(|_| Link {
                connected: false,
                outstanding: 0,
                publishes: None,
                bytes: None,
                paused_until: None,
            })
            .collect();
        Self {
            cfg,
            images,
            state,
            links,
            next_link: 0,
            epoch: 0,
            next_tag: 0,
            next_id: 0,
            tags: HashMap::new(),
            replies: VecDeque::new(),
            held: VecDeque::new(),
            pushes: HashMap::new(),
            running: VecDeque::new(),
            waiting: VecDeque::new(),
            pulls: HashMap::new(),
            sessions: HashMap::new(),
            events: VecDeque::new(),
            changes: 0,
            taken: 0,
            dirty: BTreeSet::new(),
            journal: Vec::new(),
            told: HashSet::new(),
            next_sweep: None,
            warn_window: None,
            warned: 0,
            suppressed: 0,
        }
    }

    /// The state as it is now.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Transmits handed out and not yet acknowledged or failed.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.tags.len()
    }

    /// Pushes running and waiting for a slot.
    #[must_use]
    pub fn transfers(&self) -> (usize, usize) {
        (self.running.len(), self.waiting.len())
    }

    /// Takes the next event to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// What changed since the last batch (the touched records as they are now, the evicted
    /// ones, the history) and the change number it covers; `None` when nothing did.
    pub fn take_save(&mut self) -> Option<(u64, Batch)> {
        if self.changes == self.taken {
            return None;
        }
        self.taken = self.changes;
        let mut batch = Batch {
            records: Vec::with_capacity(self.dirty.len()),
            removed: self.state.take_evicted(),
            events: std::mem::take(&mut self.journal),
        };
        batch
            .removed
            .retain(|k| !self.state.devices.contains_key(k));
        for k in std::mem::take(&mut self.dirty) {
            match self.state.devices.get(&k) {
                Some(r) => batch.records.push((k, r.clone())),
                None if !batch.removed.contains(&k) => batch.removed.push(k),
                None => {}
            }
        }
        Some((self.changes, batch))
    }

    /// When [`Core::handle_timeout`] wants to run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.front().map(|h| h.deadline);
        let pulls = self.pulls.values().filter_map(Pull::wake_at).min();
        [held, pulls, self.next_sweep, self.send_wake()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due at `now`: held replies whose save took too long, deferred chunk
    /// requests, the session sweep.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.held.front().is_some_and(|h| h.deadline <= now) {
            let h = self.held.pop_front().expect("checked");
            self.warn(
                now,
                &h.reply.topic,
                format!("state not saved after {SAVE_WAIT:?}; replying anyway"),
            );
            self.queue(now, h.reply);
        }
        self.serve_deferred_pulls(now);
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sessions
                .retain(|_, s| now.duration_since(s.last) < SESSION_TTL);
            self.pulls.retain(|_, p| !p.idle(now));
            self.next_sweep =
                (!self.sessions.is_empty() || !self.pulls.is_empty()).then(|| now + SWEEP_EVERY);
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Connected(n) => {
                if let Some(l) = self.links.get_mut(n) {
                    l.connected = true;
                }
            }
            Input::Disconnected(n) => self.on_disconnect(n),
            Input::Message { topic, payload } => self.on_message(now, topic, payload),
            Input::Acked(tag) => self.on_acked(now, tag),
            Input::Failed(tag) => self.on_failed(tag),
            Input::Refused(tag, why) => self.on_refused(now, tag, why),
            Input::Saved(upto) => {
                while self.held.front().is_some_and(|h| h.change <= upto) {
                    let h = self.held.pop_front().expect("checked");
                    self.queue(now, h.reply);
                }
            }
            Input::Unblocked { device, version } => {
                if let Some(r) = self.state.devices.get_mut(device) {
                    if r.blocked.remove(version) {
                        self.emit(Event::Unblocked {
                            device: device.to_string(),
                            version: version.to_string(),
                        });
                    }
                }
            }
            Input::Blocked { device, version } => {
                // Not a change of this publisher's (nothing to write back): the block is stored.
                if let Some(r) = self.state.devices.get_mut(device) {
                    if r.blocked.insert(version.to_string()) {
                        self.emit(Event::Blocked {
                            device: device.to_string(),
                            version: version.to_string(),
                        });
                    }
                }
            }
            Input::Record { device, record } => match self.state.devices.get_mut(device) {
                Some(r) => r.merge_from(record),
                None => {
                    let r = self.state.device(device, &record.board, !record.shared);
                    r.merge_from(record);
                }
            },
        }
    }

    fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// One warning line, at most [`WARN_BURST`] per [`WARN_WINDOW`] (then one summary).
    fn warn(&mut self, now: Instant, topic: &str, message: String) {
        let fresh = self
            .warn_window
            .is_none_or(|t| now.duration_since(t) >= WARN_WINDOW);
        if fresh {
            if self.suppressed > 0 {
                let n = std::mem::take(&mut self.suppressed);
                self.emit(Event::Warning {
                    topic: String::new(),
                    message: format!("{n} more warnings like the above were not shown"),
                });
            }
            self.warn_window = Some(now);
            self.warned = 0;
        }
        if self.warned >= WARN_BURST {
            self.suppressed += 1;
            return;
        }
        self.warned += 1;
        self.emit(Event::Warning {
            topic: topic.to_string(),
            message,
        });
    }

    /// Notes that `device`'s record changed; returns the change number.
    fn changed(&mut self, device: &str) -> u64 {
        if !self.dirty.contains(device) {
            self.dirty.insert(device.to_string());
        }
        self.changes += 1;
        self.changes
    }

    /// Adds a history event (and notes the record changed).
    fn record(&mut self, kind: HistoryKind, device: &str, version: &str, detail: &str) -> u64 {
        self.journal.push(HistoryEvent {
            at: state::now(),
            device: device.to_string(),
            version: version.to_string(),
            kind,
            detail: detail.to_string(),
            publisher: String::new(),
        });
        self.changed(device)
    }

    /// Records a settled result (and the block it caused, if any) in the history.
    fn record_result(&mut self, device: &str, r: &state::LastResult, blocked_before: bool) {
        let kind = if r.result == "reverted" {
            HistoryKind::Revert
        } else {
            HistoryKind::Result
        };
        self.record(kind, device, &r.version, &r.result);
        let blocked_now = self
            .state
            .devices
            .get(device)
            .is_some_and(|d| d.blocked.contains(&r.version));
        if blocked_now && !blocked_before {
            let why = format!("after {}", r.result);
            self.record(HistoryKind::Block, device, &r.version, &why);
        }
    }

    fn new_tag(&mut self, conn: usize, owner: Owner) -> Tag {
        self.next_tag += 1;
        let tag = Tag(self.next_tag);
        self.tags.insert(tag, (conn, owner));
        self.links[conn].outstanding += 1;
        tag
    }

    /// Forgets a transmit's tag; returns its owner.
    fn settle(&mut self, tag: Tag) -> Option<Owner> {
        let (conn, owner) = self.tags.remove(&tag)?;
        let l = &mut self.links[conn];
        l.outstanding = l.outstanding.saturating_sub(1);
        Some(owner)
    }

    /// Queues a reply (bounded).
    fn queue(&mut self, now: Instant, reply: Reply) {
        if self.replies.len() >= self.cfg.limits.max_replies {
            self.warn(
                now,
                &reply.topic,
                "reply queue full (too many requests at once); reply dropped".into(),
            );
            return;
        }
        self.replies.push_back(reply);
    }

    /// Queues a reply that announces an outcome: once the state file holds `change`.
    fn queue_when_saved(&mut self, now: Instant, change: u64, reply: Reply) {
        if self.cfg.persisting {
            self.held.push_back(Held {
                change,
                deadline: now + SAVE_WAIT,
                reply,
            });
        } else {
            self.queue(now, reply);
        }
    }

    /// The next PUBLISH to hand out: on each connection in turn, replies first, then chunks of
    /// the pushes pinned to it (each within its pace); nothing on a connection that is down,
    /// paused, over the broker's rates, or with [`Limits::window`] outstanding.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let n = self.links.len();
        for k in 0..n {
            let c = (self.next_link + k) % n;
            if let Some(t) = self.transmit_on(now, c) {
                self.next_link = (c + 1) % n;
                return Some(t);
            }
        }
        None
    }

    fn transmit_on(&mut self, now: Instant, c: usize) -> Option<Transmit> {
        let (rate, bytes) = (self.cfg.limits.publish_rate, self.cfg.limits.bytes_rate);
        let size = self
            .replies
            .front()
            .map_or(protocol::CHUNK_SIZE + protocol::CHUNK_HEADER_SIZE, |r| {
                r.payload.len()
            }) as f64;
        let l = &mut self.links[c];
        if !l.connected || l.outstanding >= self.cfg.limits.window {
            return None;
        }
        if l.paused_until.is_some_and(|t| now < t) {
            return None;
        }
        if let Some(r) = rate {
            let b = l
                .publishes
                .get_or_insert_with(|| Bucket::per_second(r, now));
            if !b.ready(now, 1.0) {
                return None;
            }
        }
        if let Some(r) = bytes {
            let b = l.bytes.get_or_insert_with(|| Bucket::per_second(r, now));
            if !b.ready(now, size) {
                return None;
            }
        }
        let t = if let Some(r) = self.replies.pop_front() {
            let tag = self.new_tag(c, r.owner);
            Transmit {
                conn: c,
                topic: r.topic,
                payload: r.payload,
                tag,
            }
        } else {
            self.next_chunk(now, c)?
        };
        let l = &mut self.links[c];
        if let Some(b) = l.publishes.as_mut() {
            b.take(1.0);
        }
        if let Some(b) = l.bytes.as_mut() {
            b.take(t.payload.len() as f64);
        }
        Some(t)
    }

    /// When sending can go on, if there is work and it waits for a rate, a pause or a push's
    /// pace (a full window needs no timer: acknowledgements wake the loop).
    fn send_wake(&self) -> Option<Instant> {
        (0..self.links.len())
            .filter_map(|c| self.link_wake(c))
            .min()
    }

    fn link_wake(&self, c: usize) -> Option<Instant> {
        let l = &self.links[c];
        // A full window needs no timer (acknowledgements wake the loop): a time in the past
        // here would spin the driver until one arrives.
        if !l.connected || l.outstanding >= self.cfg.limits.window {
            return None;
        }
        let pushes = self.next_push_wake(c);
        if self.replies.is_empty() && pushes.is_none() {
            return None;
        }
        let mut gate = l.paused_until;
        gate = gate.max(l.publishes.as_ref().map(|b| b.when(1.0)));
        let cost = (protocol::CHUNK_SIZE + protocol::CHUNK_HEADER_SIZE) as f64;
        gate = gate.max(l.bytes.as_ref().map(|b| b.when(cost)));
        if self.replies.is_empty() {
            gate.max(pushes)
        } else {
            gate
        }
    }

    fn on_refused(&mut self, now: Instant, tag: Tag, why: Refusal) {
        let conn = self.tags.get(&tag).map_or(0, |(c, _)| *c);
        let owner = self.settle(tag);
        match (why, owner) {
            (Refusal::QuotaExceeded, Some(Owner::Chunk { topic, id, index })) => {
                if let Some(p) = self.pushes.get_mut(&topic) {
                    p.resend(id, index);
                }
                self.links[conn].paused_until = Some(now + QUOTA_BACKOFF);
                self.warn(
                    now,
                    &topic,
                    format!(
                        "the broker says quota exceeded; pausing {QUOTA_BACKOFF:?} and resending"
                    ),
                );
            }
            (Refusal::QuotaExceeded, _) => {
                self.links[conn].paused_until = Some(now + QUOTA_BACKOFF);
            }
            (Refusal::Fatal(reason), Some(Owner::Chunk { topic, .. })) => {
                self.warn(
                    now,
                    &topic,
                    format!("the broker refused a chunk ({reason}); transfer stopped"),
                );
                self.abort_push(now, &topic);
            }
            (Refusal::Fatal(reason), _) => {
                self.warn(now, "", format!("the broker refused a reply ({reason})"));
            }
        }
    }

    fn on_disconnect(&mut self, conn: usize) {
        let Some(l) = self.links.get_mut(conn) else {
            return;
        };
        l.connected = false;
        l.outstanding = 0;
        self.epoch += 1;
        let lost: Vec<Tag> = self
            .tags
            .iter()
            .filter(|(_, (c, _))| *c == conn)
            .map(|(t, _)| *t)
            .collect();
        for tag in lost {
            if let Some((_, Owner::Chunk { topic, id, index })) = self.tags.remove(&tag) {
                if let Some(p) = self.pushes.get_mut(&topic) {
                    p.lost(id, index);
                }
            }
        }
    }

    fn on_failed(&mut self, tag: Tag) {
        if let Some(Owner::Chunk { topic, id, index }) = self.settle(tag) {
            if let Some(p) = self.pushes.get_mut(&topic) {
                p.lost(id, index);
            }
        }
    }

    fn on_message(&mut self, now: Instant, topic: &str, payload: &[u8]) {
        let Some(board) = topics::board_of_request_topic(topic, &self.cfg.prefix) else {
            self.warn(now, topic, "message on an unexpected topic ignored".into());
            return;
        };
        let Some(image) = self.images.get(board).cloned() else {
            if self.told.insert(format!("board:{board}")) {
                let serves: Vec<&str> = self.images.keys().map(String::as_str).collect();
                self.warn(
                    now,
                    topic,
                    format!(
                        "a device of board {board} asked; this publisher serves {} (no image for {board}, ignored)",
                        serves.join(", ")
                    ),
                );
            }
            return;
        };
        if payload.len() > MAX_REQUEST {
            self.warn(
                now,
                topic,
                format!(
                    "{}-byte message ignored (limit {MAX_REQUEST} bytes: no device request is longer)",
                    payload.len()
                ),
            );
            return;
        }
        let req = match protocol::decode_request(payload) {
            Ok(r) => r,
            Err(e) => {
                self.warn(now, topic, format!("ignored: {e}"));
                return;
            }
        };
        if req.kind == MessageKind::SendDirectUpdate {
            self.on_direct(now, &image, &req);
            return;
        }
        let Some(reply_to) = req.unique_topic else {
            return;
        };
        if let Err(e) = topics::parse_unique_topic(reply_to, &self.cfg.prefix, board) {
            self.warn(
                now,
                topic,
                format!(
                    "{} with UniqueTopicName {reply_to:?}: {e}; not replying",
                    reason(req.kind)
                ),
            );
            return;
        }
        match req.kind {
            MessageKind::Success | MessageKind::Failure => self.on_result(now, reply_to, &req),
            MessageKind::UpdateAvailability => {
                self.on_availability(now, &image, reply_to, &req);
            }
            MessageKind::RequestUpdate => self.on_request_update(now, &image, reply_to, &req),
            MessageKind::RequestDataChunk => self.on_chunk_request(now, &image, reply_to, &req),
            other => self.warn(now, topic, format!("{} ignored", reason(other))),
        }
    }

    /// The record key of the requesting device; marks a serial that two devices use at once as
    /// unidentified, and says once per board why revert protection is off.
    fn identify(&mut self, now: Instant, board: &str, topic: &str, req: &Request<'_>) -> String {
        let (key, identified) = state::device_key(board, req.serial_number);
        let contested = identified && self.busy_elsewhere(now, &key, topic);
        let rec = self.state.device(&key, board, identified);
        rec.last_seen = state::now();
        let newly_shared = contested && !rec.shared;
        if newly_shared {
            rec.shared = true;
        }
        // Every request that identifies a device is stored (new record, last seen).
        self.changed(&key);
        if newly_shared {
            self.warn(
                now,
                topic,
                format!(
                    "two devices use SerialNumber {:?} at once: {key} is now unidentified (never blocked automatically); give each board its own serial (README: Fleets)",
                    req.serial_number.unwrap_or_default()
                ),
            );
        }
        if !identified && self.told.insert(format!("anon:{board}")) {
            self.emit(Event::Notice {
                board: board.to_string(),
                message: format!(
                    "devices of {board} send the example's template SerialNumber {:?} (or none), so they cannot be told apart: revert protection is off for them and every one that asks on an older version is offered the update. Give each board its own serial with `otactl cert-to-c --header` (README: Fleets) to turn it on.",
                    req.serial_number.unwrap_or("")
                ),
            });
        }
        key
    }

    /// Whether `key` is being served on another topic right now (a push or pull in progress).
    fn busy_elsewhere(&self, now: Instant, key: &str, topic: &str) -> bool {
        self.pushes
            .iter()
            .any(|(t, p)| t != topic && p.device == key && p.mode == Mode::Push)
            || self
                .pulls
                .iter()
                .any(|(t, p)| t != topic && p.device == key && p.in_progress(now))
    }

    fn remember(&mut self, now: Instant, topic: &str, device: &str, board: &str, v: AppVersion) {
        let s = self
            .sessions
            .entry(topic.to_string())
            .or_insert_with(|| Session {
                device: String::new(),
                board: String::new(),
                version: None,
                last: now,
                pushed: None,
            });
        s.device = device.to_string();
        s.board = board.to_string();
        s.version = Some(v);
        s.last = now;
        self.next_sweep.get_or_insert(now + SWEEP_EVERY);
    }

    fn running(req: &Request<'_>) -> AppVersion {
        AppVersion::parse_device(req.version.unwrap_or(""))
    }

    fn on_availability(
        &mut self,
        now: Instant,
        image: &ServedImage,
        topic: &str,
        req: &Request<'_>,
    ) {
        let device = self.identify(now, &image.board, topic, req);
        let running = Self::running(req);
        let (epoch, block_after) = (self.epoch, self.cfg.block_after.max(1));
        let rec = self.state.device(&device, &image.board, true);
        let sent_blocked = rec.sent.as_ref().is_some_and(|v| rec.blocked.contains(v));
        let transfer_recorded = rec.sent.is_some();
        let settled = rec.observe_version(running, epoch, block_after);
        let decision = rec.decide(running, image.version);
        if decision.is_ok() {
            rec.offered = Some(image.version.to_string());
        }
        if let Some(r) = &settled {
            if !transfer_recorded {
                // The device runs the version it was offered, but no publisher wrote down
                // sending it (a replica that sent it was killed first): the history still
                // shows the transfer, marked as inferred.
                self.record(
                    HistoryKind::Transfer,
                    &device,
                    &r.version,
                    INFERRED_TRANSFER,
                );
            }
            self.record_result(&device, r, sent_blocked);
        }
        if decision.is_ok() {
            self.record(HistoryKind::Offer, &device, &image.version.to_string(), "");
        }
        let change = self.changed(&device);
        let must_save = settled.is_some();
        if let Some(r) = settled {
            self.emit(Event::Result {
                device: device.clone(),
                version: r.version,
                result: r.result,
            });
        }
        let payload = match decision {
            Ok(()) => match self.cfg.template.render(&image.board, image.version, topic) {
                Ok(doc) => {
                    self.emit(Event::Offered {
                        device: device.clone(),
                        running: running.to_string(),
                        version: image.version.to_string(),
                    });
                    self.remember(now, topic, &device, &image.board, image.version);
                    Bytes::from(doc)
                }
                Err(e) => {
                    self.warn(
                        now,
                        topic,
                        format!(
                            "cannot build the job document: {}",
                            ota_tls::error_chain(&e)
                        ),
                    );
                    return;
                }
            },
            Err(why) => {
                self.emit(Event::NoUpdate {
                    device,
                    running: running.to_string(),
                    reason: why.reason().into(),
                });
                let mut buf = [0u8; 512];
                let Ok(n) = encode_no_update(&mut buf, topic) else {
                    return;
                };
                Bytes::copy_from_slice(&buf[..n])
            }
        };
        let reply = Reply {
            topic: topic.to_string(),
            payload,
            owner: Owner::Reply,
        };
        // A settled result (update confirmed, revert seen) is saved before the device hears back.
        if must_save {
            self.queue_when_saved(now, change, reply);
        } else {
            self.queue(now, reply);
        }
    }

    /// Whether `image` may go to `device` now (device rule + blocklist); says why not.
    fn may_send(
        &mut self,
        now: Instant,
        image: &ServedImage,
        device: &str,
        req: &Request<'_>,
        topic: &str,
    ) -> bool {
        if req.version.is_none() {
            return true;
        }
        let running = Self::running(req);
        let Some(rec) = self.state.devices.get(device) else {
            return true;
        };
        if let Err(why) = rec.decide(running, image.version) {
            self.emit(Event::NoUpdate {
                device: device.to_string(),
                running: running.to_string(),
                reason: why.reason().into(),
            });
            self.warn(
                now,
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
        &mut self,
        now: Instant,
        image: &Arc<ServedImage>,
        topic: &str,
        req: &Request<'_>,
    ) {
        let device = self.identify(now, &image.board, topic, req);
        if !self.may_send(now, image, &device, req, topic) {
            return;
        }
        if let Some(rec) = self.state.devices.get_mut(&device) {
            rec.sent = None;
            self.changed(&device);
        }
        self.remember(now, topic, &device, &image.board, image.version);
        self.start_push(now, image, topic, &device, Mode::Push);
    }

    fn on_direct(&mut self, now: Instant, image: &Arc<ServedImage>, req: &Request<'_>) {
        let Ok(topic) = topics::direct_topic(&self.cfg.prefix, &image.board) else {
            return;
        };
        if req.version.is_some() && !Self::running(req).accepts(image.version) {
            self.warn(
                now,
                &topic,
                format!(
                    "Send Direct Update from a device on {}: not newer, not broadcasting {}",
                    Self::running(req),
                    image.version
                ),
            );
            return;
        }
        if self.pushes.contains_key(topic.as_str()) {
            return;
        }
        let device = format!("{}/*", image.board);
        // The broadcast topic is a session of its own: repeats within 5 s cost nothing.
        self.remember(now, &topic, &device, &image.board, image.version);
        self.start_push(now, image, &topic, &device, Mode::Direct);
    }

    fn on_result(&mut self, now: Instant, topic: &str, req: &Request<'_>) {
        let Some(session) = self.sessions.get_mut(topic) else {
            self.warn(
                now,
                topic,
                format!(
                    "{} for a topic this publisher is not serving; ignored",
                    reason(req.kind)
                ),
            );
            return;
        };
        session.last = now;
        let (device, board) = (session.device.clone(), session.board.clone());
        let Some(version) = session.version.map(|v| v.to_string()) else {
            return;
        };
        let success = req.kind == MessageKind::Success;
        let rec = self.state.device(&device, &board, true);
        let was_blocked = rec.blocked.contains(&version);
        let r = rec.observe_result(success, &version);
        self.record_result(&device, &r, was_blocked);
        let change = self.changed(&device);
        self.emit(Event::Result {
            device,
            version: r.version,
            result: r.result,
        });
        let mut buf = [0u8; 512];
        if let Ok(n) = encode_result_received(&mut buf, topic) {
            let reply = Reply {
                topic: topic.to_string(),
                payload: Bytes::copy_from_slice(&buf[..n]),
                owner: Owner::Reply,
            };
            self.queue_when_saved(now, change, reply);
        }
    }
}

#[cfg(test)]
mod tests;
