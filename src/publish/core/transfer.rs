//! Transfers inside the core: whole-image pushes scheduled round-robin under the window, and
//! rate-limited single-chunk pulls. A push counts as sent once the broker acknowledged every
//! chunk; a push that lived through a lost connection resumes with the chunks the broker did not
//! acknowledge, but no longer counts for revert detection (the device may have missed some).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ota_core::protocol::{self, ChunkSize, Request};

use super::pace::Bucket;
use super::{Core, Owner, Reply, Tag, Transmit};
use crate::publish::events::{Event, Mode};
use crate::publish::served::ServedImage;
use crate::publish::store::HistoryKind;

/// A pull with no request for this long is finished (for progress and busy-ness).
const PULL_IDLE: Duration = Duration::from_secs(30);
/// A repeated "Request Update" restarts a push only this long after the last (re)start: a real
/// device asks again only after its data timeout, a flood of repeats costs one stream.
const RESTART_GUARD: Duration = Duration::from_secs(5);

pub(super) struct Push {
    pub id: u64,
    /// The connection it is pinned to (chunks stay in order).
    pub conn: usize,
    pub device: String,
    pub mode: Mode,
    image: Arc<ServedImage>,
    /// Next chunk index to consider sending.
    next: usize,
    acked: Vec<bool>,
    acked_count: usize,
    started: Option<Instant>,
    /// The connection dropped while this push was under way.
    interrupted: bool,
    /// Its pace: a burst, then the device rate (bytes).
    pace: Bucket,
}

impl Push {
    /// The transmit of chunk `index` (of push `id`) will never be acknowledged.
    pub fn lost(&mut self, id: u64, index: usize) {
        if id == self.id {
            self.next = self.next.min(index);
            self.interrupted = true;
        }
    }

    /// The broker asked for chunk `index` again later (throttled): resend it.
    pub fn resend(&mut self, id: u64, index: usize) {
        if id == self.id {
            self.next = self.next.min(index);
        }
    }

    /// Whether chunks are left to hand out.
    fn unsent(&self) -> bool {
        self.acked[self.next.min(self.acked.len())..]
            .iter()
            .any(|a| !a)
    }
}

pub(super) struct Pull {
    pub device: String,
    started: Instant,
    last: Instant,
    done: bool,
    /// Token bucket for chunk requests.
    tokens: f64,
    refilled: Instant,
    /// The latest request that arrived faster than the rate: (offset, length).
    deferred: Option<(u32, u16)>,
    rate: u32,
}

impl Pull {
    fn refill(&mut self, now: Instant) {
        let dt = now.duration_since(self.refilled).as_secs_f64();
        let rate = f64::from(self.rate.max(1));
        self.tokens = (self.tokens + dt * rate).min(rate);
        self.refilled = now;
    }

    /// When a deferred request can be served.
    pub fn wake_at(&self) -> Option<Instant> {
        self.deferred?;
        let need = (1.0 - self.tokens).max(0.0) / f64::from(self.rate.max(1));
        Some(self.refilled + Duration::from_secs_f64(need))
    }

    /// Still asking for chunks: not finished, and asked within the last few seconds (a device
    /// that reset mid-download and comes back on a new topic is not a second device).
    pub fn in_progress(&self, now: Instant) -> bool {
        !self.done && now.duration_since(self.last) < Duration::from_secs(5)
    }

    pub fn idle(&self, now: Instant) -> bool {
        self.deferred.is_none() && now.duration_since(self.last) >= PULL_IDLE
    }
}

impl Core {
    /// Starts (or restarts) a push of `image` to `topic`: at most one per topic; beyond
    /// [`super::Limits::max_transfers`] it waits for a slot.
    pub(super) fn start_push(
        &mut self,
        now: Instant,
        image: &Arc<ServedImage>,
        topic: &str,
        device: &str,
        mode: Mode,
    ) {
        let session = self.sessions.get_mut(topic);
        let last = session.as_ref().and_then(|s| s.pushed);
        if last.is_some_and(|t| now.duration_since(t) < RESTART_GUARD) {
            self.warn(
                now,
                topic,
                "repeated request for a transfer started less than 5 s ago; ignored".into(),
            );
            return;
        }
        if let Some(s) = session {
            s.pushed = Some(now);
        }
        self.next_id += 1;
        let conn = self.least_loaded_link();
        let push = Push {
            id: self.next_id,
            conn,
            device: device.to_string(),
            mode,
            image: Arc::clone(image),
            next: 0,
            acked: vec![false; image.chunks.len()],
            acked_count: 0,
            started: None,
            interrupted: false,
            pace: Bucket::new(
                f64::from(self.cfg.limits.device_rate.max(1)),
                (self.cfg.limits.burst.max(1) * protocol::CHUNK_SIZE) as f64,
                now,
            ),
        };
        if let Some(old) = self.pushes.insert(topic.to_string(), push) {
            // A repeated request restarts the stream in its slot (or its place in the queue).
            if old.started.is_some() {
                self.begin(now, topic);
            }
            return;
        }
        if self.running.len() < self.cfg.limits.max_transfers {
            self.running.push_back(topic.to_string());
            self.begin(now, topic);
        } else if self.waiting.len() < self.cfg.limits.max_waiting {
            self.waiting.push_back(topic.to_string());
        } else {
            self.pushes.remove(topic);
            self.warn(
                now,
                topic,
                format!(
                    "{} transfers running and {} waiting; request refused (the device will ask again)",
                    self.running.len(),
                    self.waiting.len()
                ),
            );
        }
    }

    fn begin(&mut self, now: Instant, topic: &str) {
        let Some(p) = self.pushes.get_mut(topic) else {
            return;
        };
        p.started = Some(now);
        let e = Event::Started {
            device: p.device.clone(),
            topic: topic.to_string(),
            mode: p.mode,
            version: p.image.version.to_string(),
            total: p.image.len(),
        };
        self.emit(e);
    }

    /// The connection with the fewest pushes pinned to it (connected ones first).
    fn least_loaded_link(&self) -> usize {
        (0..self.links.len())
            .min_by_key(|c| {
                let pinned = self.pushes.values().filter(|p| p.conn == *c).count();
                (!self.links[*c].connected, pinned)
            })
            .unwrap_or(0)
    }

    /// The next chunk of the running pushes pinned to connection `c`, round-robin, each within
    /// its pace.
    pub(super) fn next_chunk(&mut self, now: Instant, c: usize) -> Option<Transmit> {
        for _ in 0..self.running.len() {
            let topic = self.running.pop_front()?;
            self.running.push_back(topic.clone());
            let Some(p) = self.pushes.get_mut(&topic) else {
                continue;
            };
            if p.conn != c {
                continue;
            }
            while p.next < p.acked.len() && p.acked[p.next] {
                p.next += 1;
            }
            if p.next >= p.acked.len() {
                continue;
            }
            let index = p.next;
            let cost = (p.image.chunks[index].len() - protocol::CHUNK_HEADER_SIZE) as f64;
            if !p.pace.ready(now, cost) {
                continue;
            }
            p.pace.take(cost);
            p.next += 1;
            let payload = p.image.chunks[index].clone();
            let id = p.id;
            let tag = self.new_tag(
                c,
                Owner::Chunk {
                    topic: topic.clone(),
                    id,
                    index,
                },
            );
            return Some(Transmit {
                conn: c,
                topic,
                payload,
                tag,
            });
        }
        None
    }

    pub(super) fn on_acked(&mut self, now: Instant, tag: Tag) {
        match self.settle(tag) {
            Some(Owner::Chunk { topic, id, index }) => self.chunk_acked(now, &topic, id, index),
            Some(Owner::PullLast { topic, device }) => self.pull_delivered(&topic, &device),
            Some(Owner::Reply) | None => {}
        }
    }

    fn chunk_acked(&mut self, now: Instant, topic: &str, id: u64, index: usize) {
        let Some(p) = self.pushes.get_mut(topic) else {
            return;
        };
        if p.id != id || p.acked[index] {
            return;
        }
        p.acked[index] = true;
        p.acked_count += 1;
        let bytes = (p.acked_count * protocol::CHUNK_SIZE).min(p.image.len() as usize) as u32;
        let e = Event::Progress {
            device: p.device.clone(),
            topic: topic.to_string(),
            bytes,
            total: p.image.len(),
        };
        let done = p.acked_count == p.acked.len();
        self.emit(e);
        if done {
            self.finish_push(now, topic);
        }
    }

    /// When the earliest running push on connection `c` with chunks left may send again.
    pub(super) fn next_push_wake(&self, c: usize) -> Option<Instant> {
        self.running
            .iter()
            .filter_map(|t| self.pushes.get(t))
            .filter(|p| p.conn == c && p.unsent())
            .map(|p| p.pace.when(protocol::CHUNK_SIZE as f64))
            .min()
    }

    /// Removes a push and lets waiting ones start.
    fn remove_push(&mut self, now: Instant, topic: &str) -> Option<Push> {
        let p = self.pushes.remove(topic)?;
        self.running.retain(|t| t != topic);
        self.waiting.retain(|t| t != topic);
        while self.running.len() < self.cfg.limits.max_transfers {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            if self.pushes.contains_key(&next) {
                self.running.push_back(next.clone());
                self.begin(now, &next);
            }
        }
        Some(p)
    }

    /// Stops a push that cannot succeed.
    pub(super) fn abort_push(&mut self, now: Instant, topic: &str) {
        self.remove_push(now, topic);
    }

    fn finish_push(&mut self, now: Instant, topic: &str) {
        let Some(p) = self.remove_push(now, topic) else {
            return;
        };
        let version = p.image.version.to_string();
        if p.interrupted {
            self.warn(
                now,
                topic,
                "broker connection lost during the transfer; it was resent, but the device may have missed chunks (not counted for revert detection)".into(),
            );
        } else if p.mode == Mode::Push {
            if let Some(rec) = self.state.devices.get_mut(&p.device) {
                rec.sent = Some(version.clone());
                rec.sent_epoch = Some(self.epoch);
                self.record(HistoryKind::Transfer, &p.device, &version, "push");
            }
        }
        self.emit(Event::Sent {
            device: p.device,
            topic: topic.to_string(),
            version,
            bytes: p.image.len(),
            millis: p
                .started
                .map_or(0, |s| now.duration_since(s).as_millis() as u64),
        });
    }

    pub(super) fn on_chunk_request(
        &mut self,
        now: Instant,
        image: &Arc<ServedImage>,
        topic: &str,
        req: &Request<'_>,
    ) {
        let total = image.len();
        let offset = req.offset.unwrap_or(0);
        if offset >= u64::from(total) {
            if offset > u64::from(total) {
                self.warn(
                    now,
                    topic,
                    format!("Offset {offset} is past the end of the {total}-byte image; ignored"),
                );
            }
            return;
        }
        let offset = offset as u32;
        let left = total - offset;
        let limit = protocol::CHUNK_SIZE.min(protocol::max_chunk_data(topic.len())) as u32;
        let want = match req.size {
            None | Some(ChunkSize::Rest) => left,
            Some(ChunkSize::Bytes(0)) => {
                self.warn(now, topic, "Size 0 ignored".into());
                return;
            }
            Some(ChunkSize::Bytes(n)) => {
                if n > u64::from(limit) {
                    self.warn(
                        now,
                        topic,
                        format!("Size {n} too large; sending {limit} bytes"),
                    );
                }
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        let len = want.min(limit).min(left) as u16;
        let device = if offset == 0 || !self.pulls.contains_key(topic) {
            let device = self.identify(now, &image.board, topic, req);
            if !self.may_send(now, image, &device, req, topic) {
                return;
            }
            self.remember(now, topic, &device, &image.board, image.version);
            device
        } else {
            self.pulls[topic].device.clone()
        };
        let rate = self.cfg.limits.chunk_requests_per_sec;
        let new = offset == 0 || !self.pulls.contains_key(topic);
        let pull = self.pulls.entry(topic.to_string()).or_insert_with(|| Pull {
            device: device.clone(),
            started: now,
            last: now,
            done: false,
            tokens: f64::from(rate.max(1)),
            refilled: now,
            deferred: None,
            rate,
        });
        if new {
            pull.device.clone_from(&device);
            pull.started = now;
            pull.done = false;
            self.emit(Event::Started {
                device,
                topic: topic.to_string(),
                mode: Mode::Pull,
                version: image.version.to_string(),
                total,
            });
        }
        if let Some(s) = self.sessions.get_mut(topic) {
            s.last = now;
        }
        let pull = self.pulls.get_mut(topic).expect("inserted");
        pull.last = now;
        pull.refill(now);
        if pull.tokens < 1.0 {
            pull.deferred = Some((offset, len));
            return;
        }
        pull.tokens -= 1.0;
        self.serve_chunk(now, image, topic, offset, len);
    }

    /// Serves deferred chunk requests whose turn has come.
    pub(super) fn serve_deferred_pulls(&mut self, now: Instant) {
        let due: Vec<(String, u32, u16)> = self
            .pulls
            .iter_mut()
            .filter_map(|(t, p)| {
                p.refill(now);
                if p.tokens < 1.0 {
                    return None;
                }
                let (o, l) = p.deferred.take()?;
                p.tokens -= 1.0;
                Some((t.clone(), o, l))
            })
            .collect();
        for (topic, offset, len) in due {
            let image = self
                .sessions
                .get(&topic)
                .and_then(|s| self.images.get(&s.board))
                .cloned();
            if let Some(image) = image {
                self.serve_chunk(now, &image, &topic, offset, len);
            }
        }
    }

    fn serve_chunk(
        &mut self,
        now: Instant,
        image: &ServedImage,
        topic: &str,
        offset: u32,
        len: u16,
    ) {
        let Some(chunk) = image.chunk_at(offset, len) else {
            return;
        };
        let total = image.len();
        let Some(p) = self.pulls.get(topic) else {
            return;
        };
        let last = offset + u32::from(len) == total;
        let device = p.device.clone();
        self.emit(Event::Progress {
            device: device.clone(),
            topic: topic.to_string(),
            bytes: offset + u32::from(len),
            total,
        });
        let owner = if last {
            Owner::PullLast {
                topic: topic.to_string(),
                device,
            }
        } else {
            Owner::Reply
        };
        self.queue(
            now,
            Reply {
                topic: topic.to_string(),
                payload: chunk,
                owner,
            },
        );
    }

    /// The broker acknowledged the last chunk of a pull: the device was sent everything.
    fn pull_delivered(&mut self, topic: &str, device: &str) {
        let Some(p) = self.pulls.get_mut(topic) else {
            return;
        };
        if p.done || p.device != device {
            return;
        }
        p.done = true;
        let millis = p.last.duration_since(p.started).as_millis() as u64;
        let Some(s) = self.sessions.get(topic) else {
            return;
        };
        let Some(version) = s.version.map(|v| v.to_string()) else {
            return;
        };
        let bytes = self.images.get(&s.board).map_or(0, |i| i.len());
        if let Some(rec) = self.state.devices.get_mut(device) {
            rec.sent = Some(version.clone());
            rec.sent_epoch = Some(self.epoch);
            self.record(HistoryKind::Transfer, device, &version, "pull");
        }
        self.emit(Event::Sent {
            device: device.to_string(),
            topic: topic.to_string(),
            version,
            bytes,
            millis,
        });
    }
}
