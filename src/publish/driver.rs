//! The tokio loop that drives [`Core`]: one task owns the MQTT event loop, the client handle
//! and the core, so the order of everything is exact. It polls rumqttc's event loop with one
//! future at a time (never cancelled mid-way, except at shutdown) and, between its events,
//! hands the core's transmits to the client, runs the core's timers and reports saves.
//!
//! Acknowledgements: rumqttc reports each of our PUBLISHes as it goes out (with its packet id),
//! in the order the client was given them, and each PUBACK by packet id; this loop maps packet
//! ids back to the core's [`Tag`]s. When the connection drops, rumqttc starts a clean session
//! and drops everything unacknowledged: the core is told [`Input::Disconnected`] and resends.
//! Events rumqttc had buffered from the old connection come out after the reconnect; everything
//! before our first SUBSCRIBE of the new connection is ignored for that reason.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::core::{Core, Input, Tag};
use super::events::{Event, EventSink};
use super::state::State;
use super::transport::{Client, Loop, NetEvent};

/// Packet-id bookkeeping for the current connection.
#[derive(Default)]
struct Acks {
    /// Tags handed to the client and not yet seen going out, in order.
    queued: VecDeque<Tag>,
    /// Packet id → tag of PUBLISHes on the wire.
    on_wire: HashMap<u16, Tag>,
    /// Events from before the current connection's first SUBSCRIBE are stale.
    stale: bool,
}

impl Acks {
    fn reset(&mut self) {
        self.queued.clear();
        self.on_wire.clear();
        self.stale = true;
    }
}

/// Saves snapshots off the loop (coalescing bursts) and reports the change each save covered.
fn spawn_writer(
    path: PathBuf,
    saved: tokio::sync::mpsc::UnboundedSender<u64>,
) -> (
    tokio::sync::watch::Sender<Option<(u64, State)>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<(u64, State)>>(None);
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some((upto, snapshot)) = rx.borrow_and_update().clone() else {
                continue;
            };
            let p = path.clone();
            let r = tokio::task::spawn_blocking(move || snapshot.save(&p)).await;
            if let Ok(Err(e)) = r {
                log::error!("{e}");
            }
            // Also after a failed save (logged above): a broken disk must not hold up devices.
            if saved.send(upto).is_err() {
                return;
            }
        }
    });
    (tx, task)
}

/// Everything the loop needs besides the core.
pub(super) struct Driver {
    pub client: Client,
    pub lp: Loop,
    pub filters: Vec<String>,
    pub events: EventSink,
    pub state_file: Option<PathBuf>,
}

impl Driver {
    /// Runs until `shutdown`; returns the core (for the final save).
    pub async fn run(self, mut core: Core, shutdown: impl Future<Output = ()>) -> Core {
        let Self {
            client,
            mut lp,
            filters,
            events,
            state_file,
        } = self;
        let (saved_tx, mut saved_rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = state_file.map(|p| spawn_writer(p, saved_tx));
        let mut acks = Acks {
            stale: true,
            ..Acks::default()
        };
        let mut backoff = Duration::from_millis(100);
        let mut awaiting_subacks = 0usize;
        tokio::pin!(shutdown);
        'run: loop {
            let ev = {
                let next = lp.poll();
                tokio::pin!(next);
                loop {
                    let now = Instant::now().into_std();
                    while let Some(t) = core.poll_transmit(now) {
                        acks.queued.push_back(t.tag);
                        if client.try_publish(&t.topic, t.payload).is_err() {
                            acks.queued.pop_back();
                            core.handle(now, Input::Failed(t.tag));
                            break;
                        }
                    }
                    while let Some(e) = core.poll_event() {
                        (events)(e);
                    }
                    if let Some((tx, _)) = &writer {
                        if let Some(snapshot) = core.take_save() {
                            tx.send_replace(Some(snapshot));
                        }
                    }
                    let wake = core.poll_timeout().map_or_else(
                        || Instant::now() + Duration::from_secs(3600),
                        Instant::from_std,
                    );
                    tokio::select! {
                        () = &mut shutdown => break 'run,
                        ev = &mut next => break ev,
                        Some(n) = saved_rx.recv() => core.handle(Instant::now().into_std(), Input::Saved(n)),
                        () = tokio::time::sleep_until(wake) => core.handle_timeout(Instant::now().into_std()),
                    }
                }
            };
            let now = Instant::now().into_std();
            match ev {
                Ok(NetEvent::Connected) => {
                    backoff = Duration::from_millis(100);
                    awaiting_subacks = filters.len();
                    for f in &filters {
                        let _ = client.try_subscribe(f);
                    }
                }
                Ok(NetEvent::SubscribeSent) => acks.stale = false,
                Ok(NetEvent::Subscribed { granted }) => {
                    if !granted {
                        (events)(Event::Warning {
                            topic: filters.join(", "),
                            message: "the broker refused the subscription: this identity may not read the request topic (check the broker's ACL for the publisher's certificate or user, and --topic-prefix / --board)".into(),
                        });
                    }
                    awaiting_subacks = awaiting_subacks.saturating_sub(1);
                    if awaiting_subacks == 0 {
                        core.handle(now, Input::Connected);
                        (events)(Event::Connected {
                            filters: filters.clone(),
                        });
                    }
                }
                Ok(NetEvent::PublishSent(pkid)) if !acks.stale => {
                    if let Some(tag) = acks.queued.pop_front() {
                        acks.on_wire.insert(pkid, tag);
                    }
                }
                Ok(NetEvent::PubAck(pkid, refused)) if !acks.stale => {
                    if let Some(tag) = acks.on_wire.remove(&pkid) {
                        let input = match refused {
                            None => Input::Acked(tag),
                            Some(why) => Input::Refused(tag, why),
                        };
                        core.handle(now, input);
                    }
                }
                Ok(NetEvent::Message { topic, payload }) => {
                    core.handle(
                        now,
                        Input::Message {
                            topic: &topic,
                            payload: &payload,
                        },
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    acks.reset();
                    core.handle(now, Input::Disconnected);
                    while let Some(e) = core.poll_event() {
                        (events)(e);
                    }
                    (events)(Event::Disconnected {
                        error,
                        retry_ms: backoff.as_millis() as u64,
                    });
                    tokio::select! {
                        () = &mut shutdown => break 'run,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        while let Some(e) = core.poll_event() {
            (events)(e);
        }
        if let Some((_, task)) = writer {
            task.abort();
        }
        client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while lp.poll().await.is_ok() {}
        })
        .await;
        core
    }
}
