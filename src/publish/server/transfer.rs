//! Transfers: whole-image pushes, single-chunk pulls, and tracking which chunks the broker
//! acknowledged on an unbroken connection (what counts as "sent" for revert detection).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use firmware::protocol::{self, ChunkSize, Request};

use super::{lock, Active, Pull, Server, MAX_TOPICS};
use crate::publish::events::{Event, Mode};
use crate::publish::image::ServedImage;

impl Server {
    /// Queues one QoS 1 PUBLISH; returns its sequence number (compare with [`Self::acked`]).
    pub(super) async fn send(
        &self,
        topic: &str,
        payload: Bytes,
    ) -> Result<u64, crate::publish::transport::Closed> {
        self.client.publish(topic, payload).await?;
        Ok(self.queued.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// The event loop saw a PUBACK.
    pub(in crate::publish) fn on_puback(&self) {
        self.acked.fetch_add(1, Ordering::AcqRel);
        self.ack_notify.notify_waiters();
    }

    /// The current connection epoch.
    pub(in crate::publish) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The connection was lost: rumqttc drops unacknowledged PUBLISHes when it reconnects with a
    /// clean session, so they will never be acknowledged; pushes spanning this are not intact.
    pub(in crate::publish) fn on_disconnect(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.acked
            .store(self.queued.load(Ordering::Acquire), Ordering::Release);
        self.ack_notify.notify_waiters();
    }

    /// Waits (at most `limit`) until the broker has acknowledged `seq` PUBLISHes.
    pub(super) async fn wait_acked(&self, seq: u64, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, async {
            loop {
                let notified = self.ack_notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.acked.load(Ordering::Acquire) >= seq {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }

    /// Streams every chunk of `image` to `topic` (replacing a stream already running there).
    pub(super) fn start_push(
        self: &Arc<Self>,
        image: &Arc<ServedImage>,
        topic: &str,
        device: &str,
        mode: Mode,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let s = Arc::clone(self);
        let image = Arc::clone(image);
        let (t, d) = (topic.to_string(), device.to_string());
        let mut active = lock(&self.active);
        let epoch = self.rx_epoch.load(Ordering::Acquire);
        let task = tokio::spawn(async move { s.push(image, t, d, mode, (id, epoch)).await });
        let entry = Active {
            id,
            device: device.to_string(),
            abort: task.abort_handle(),
        };
        if let Some(old) = active.insert(topic.to_string(), entry) {
            old.abort.abort();
        }
    }

    pub(super) async fn push(
        self: Arc<Self>,
        image: Arc<ServedImage>,
        topic: String,
        device: String,
        mode: Mode,
        (id, epoch): (u64, u64),
    ) {
        let total = image.len();
        let version = image.version.to_string();
        self.emit(Event::Started {
            device: device.clone(),
            topic: topic.clone(),
            mode,
            version: version.clone(),
            total,
        });
        let started = Instant::now();
        let mut bytes = 0u32;
        let mut last = 0;
        for chunk in &image.chunks {
            match self.send(&topic, chunk.clone()).await {
                Ok(seq) => last = seq,
                Err(_) => return,
            }
            bytes += (chunk.len() - protocol::CHUNK_HEADER_SIZE) as u32;
            self.emit(Event::Progress {
                device: device.clone(),
                topic: topic.clone(),
                bytes,
                total,
            });
        }
        {
            let mut active = lock(&self.active);
            if active.get(&topic).is_some_and(|a| a.id == id) {
                active.remove(&topic);
            }
        }
        let acked = self
            .wait_acked(last, std::time::Duration::from_secs(60))
            .await;
        let intact = acked && self.epoch.load(Ordering::Relaxed) == epoch;
        if !intact {
            self.warn(
                &topic,
                "broker connection lost during the transfer; chunks may be missing (the device will ask again)".into(),
            );
        }
        if mode == Mode::Push && intact {
            let mut st = lock(&self.state);
            let rec = st.device(&device, &image.board);
            rec.sent = Some(version.clone());
            rec.sent_epoch = Some(epoch);
            drop(st);
            self.changed();
        }
        self.emit(Event::Sent {
            device,
            topic,
            version,
            bytes,
            millis: started.elapsed().as_millis() as u64,
        });
    }

    pub(super) fn on_chunk_request(
        self: &Arc<Self>,
        image: &Arc<ServedImage>,
        device: &str,
        req: &Request<'_>,
    ) {
        let Some(topic) = req.unique_topic else {
            return;
        };
        let total = image.len();
        let offset = req.offset.unwrap_or(0);
        if offset >= u64::from(total) {
            if offset > u64::from(total) {
                self.warn(
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
                self.warn(topic, "Size 0 ignored".into());
                return;
            }
            Some(ChunkSize::Bytes(n)) => {
                if n > limit.into() {
                    self.warn(topic, format!("Size {n} too large; sending {limit} bytes"));
                }
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        let len = want.min(limit).min(left) as u16;
        if offset == 0 && !self.may_send(image, device, req, topic) {
            return;
        }
        let Some(chunk) = image.chunk_at(offset, len) else {
            return;
        };
        self.remember_topic(topic, device);
        self.publish(topic.to_string(), chunk);
        self.pull_progress(image, topic, device, offset, u32::from(len));
    }

    pub(super) fn pull_progress(
        &self,
        image: &ServedImage,
        topic: &str,
        device: &str,
        offset: u32,
        len: u32,
    ) {
        let total = image.len();
        let version = image.version.to_string();
        let mut pulls = lock(&self.pulls);
        if offset == 0 || !pulls.contains_key(topic) {
            if pulls.len() >= MAX_TOPICS {
                pulls.clear();
            }
            pulls.insert(
                topic.to_string(),
                Pull {
                    device: device.to_string(),
                    started: Instant::now(),
                    bytes: 0,
                },
            );
            self.emit(Event::Started {
                device: device.to_string(),
                topic: topic.to_string(),
                mode: Mode::Pull,
                version: version.clone(),
                total,
            });
        }
        let Some(p) = pulls.get_mut(topic) else {
            return;
        };
        p.bytes = offset + len;
        self.emit(Event::Progress {
            device: p.device.clone(),
            topic: topic.to_string(),
            bytes: p.bytes,
            total,
        });
        if offset + len == total {
            let p = pulls.remove(topic).expect("present");
            drop(pulls);
            let mut st = lock(&self.state);
            let rec = st.device(device, &image.board);
            rec.sent = Some(version.clone());
            rec.sent_epoch = Some(self.rx_epoch.load(Ordering::Acquire));
            drop(st);
            self.changed();
            self.emit(Event::Sent {
                device: p.device,
                topic: topic.to_string(),
                version,
                bytes: total,
                millis: p.started.elapsed().as_millis() as u64,
            });
        }
    }
}
