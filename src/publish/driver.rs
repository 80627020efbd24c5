//! The tokio loop that drives [`Core`]: one task owns the core, every connection's client and
//! every connection's event loop, so the order of everything is exact. Each event loop is polled
//! by one future that owns it and hands it back with its event (never cancelled mid-way, except
//! at shutdown); between events the task hands the core's transmits to the clients, runs the
//! core's timers and reports saves.
//!
//! Acknowledgements: rumqttc reports each of our PUBLISHes as it goes out (with its packet id),
//! in the order the client was given them, and each PUBACK by packet id; this loop maps packet
//! ids back to the core's [`Tag`]s. When a connection drops, its client and event loop are
//! replaced by new ones (a clean session: everything unacknowledged is gone, and no event of the
//! old connection can be mistaken for one of the new), and the core resends.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::core::{Core, Input, Tag};
use super::events::{Event, EventSink};
use super::state::State;
use super::transport::{self, Client, ClientOptions, Loop, NetError, NetEvent, Tuning};

/// One connection's client and packet-id bookkeeping.
struct Conn {
    options: ClientOptions,
    client: Client,
    /// Tags handed to the client and not yet seen going out, in order.
    queued: VecDeque<Tag>,
    /// Packet id → tag of PUBLISHes on the wire.
    on_wire: HashMap<u16, Tag>,
    /// SUBACKs still awaited before the subscriptions are complete.
    awaiting_subacks: usize,
    /// The filters asked for in the current round of subscriptions.
    subscribed: Vec<String>,
    backoff: Duration,
    /// It has been connected once: later failures are retried, whatever they are.
    ever_connected: bool,
}

type Polling = Pin<Box<dyn Future<Output = (Loop, Result<NetEvent, NetError>)> + Send>>;

/// Polls `lp` once, after `delay` (the reconnect backoff), and hands it back.
fn poll_owned(mut lp: Loop, delay: Duration) -> Polling {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let r = lp.poll().await;
        (lp, r)
    })
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
    /// One entry per connection; the first subscribes to the request topics.
    pub options: Vec<ClientOptions>,
    pub tuning: Tuning,
    /// Tried first: every board's requests (`PFX/+/publish_notify`); when the broker refuses
    /// it, `filters` instead.
    pub wide: Option<String>,
    /// The served boards' request topics.
    pub filters: Vec<String>,
    pub events: EventSink,
    pub state_file: Option<PathBuf>,
}

impl Driver {
    /// Runs until `shutdown`; returns the core (for the final save) and, when the broker can
    /// never be reached as configured (a certificate, authorisation or host problem before the
    /// first connection), why.
    pub async fn run(
        self,
        mut core: Core,
        shutdown: impl Future<Output = ()>,
    ) -> (Core, Option<String>) {
        let Self {
            options,
            tuning,
            wide,
            filters,
            events,
            state_file,
        } = self;
        let (saved_tx, mut saved_rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = state_file.map(|p| spawn_writer(p, saved_tx));
        let mut conns = Vec::new();
        let mut polls: Vec<Option<Polling>> = Vec::new();
        for o in options {
            let (client, lp) = transport::connect(o.clone(), tuning);
            conns.push(Conn {
                options: o,
                client,
                queued: VecDeque::new(),
                on_wire: HashMap::new(),
                awaiting_subacks: 0,
                subscribed: Vec::new(),
                backoff: Duration::from_millis(100),
                ever_connected: false,
            });
            polls.push(Some(poll_owned(lp, Duration::ZERO)));
        }
        let many = conns.len() > 1;
        let mut fatal = None;
        let mut saving = false;
        tokio::pin!(shutdown);
        'run: loop {
            let now = Instant::now().into_std();
            while let Some(t) = core.poll_transmit(now) {
                let c = &mut conns[t.conn];
                c.queued.push_back(t.tag);
                if c.client.try_publish(&t.topic, t.payload).is_err() {
                    c.queued.pop_back();
                    core.handle(now, Input::Failed(t.tag));
                    break;
                }
            }
            while let Some(e) = core.poll_event() {
                (events)(e);
            }
            // One snapshot at a time: while the writer saves, changes accumulate in the core
            // and the next snapshot covers them all (a large state is not copied per change).
            if let (Some((tx, _)), false) = (&writer, saving) {
                if let Some(snapshot) = core.take_save() {
                    tx.send_replace(Some(snapshot));
                    saving = true;
                }
            }
            let wake = core.poll_timeout().map_or_else(
                || Instant::now() + Duration::from_secs(3600),
                Instant::from_std,
            );
            let next = std::future::poll_fn(|cx| {
                for (i, p) in polls.iter_mut().enumerate() {
                    if let Some(f) = p.as_mut() {
                        if let Poll::Ready((lp, ev)) = f.as_mut().poll(cx) {
                            *p = None;
                            return Poll::Ready((i, lp, ev));
                        }
                    }
                }
                Poll::Pending
            });
            let (i, lp, ev) = tokio::select! {
                () = &mut shutdown => break 'run,
                r = next => r,
                Some(n) = saved_rx.recv() => {
                    saving = false;
                    core.handle(Instant::now().into_std(), Input::Saved(n));
                    continue;
                }
                () = tokio::time::sleep_until(wake) => {
                    core.handle_timeout(Instant::now().into_std());
                    continue;
                }
            };
            let now = Instant::now().into_std();
            let c = &mut conns[i];
            let mut lp = lp;
            let mut delay = Duration::ZERO;
            match ev {
                Ok(NetEvent::Connected) => {
                    c.backoff = Duration::from_millis(100);
                    c.ever_connected = true;
                    if i == 0 {
                        c.subscribed = wide.clone().map_or_else(|| filters.clone(), |w| vec![w]);
                        c.awaiting_subacks = c.subscribed.len();
                        for f in &c.subscribed {
                            let _ = c.client.try_subscribe(f);
                        }
                    } else {
                        core.handle(now, Input::Connected(i));
                    }
                }
                Ok(NetEvent::Subscribed { granted }) => {
                    let wide_refused =
                        !granted && wide.as_ref().is_some_and(|w| c.subscribed == [w.clone()]);
                    if wide_refused {
                        // Only the served boards' topics, then: devices of other boards go
                        // unnoticed, which is all the broker allows.
                        log::info!(
                            "the broker does not let this publisher read every board's requests; listening to {} only",
                            filters.join(", ")
                        );
                        c.subscribed.clone_from(&filters);
                        c.awaiting_subacks = filters.len();
                        for f in &filters {
                            let _ = c.client.try_subscribe(f);
                        }
                    } else {
                        if !granted {
                            (events)(Event::Warning {
                                topic: c.subscribed.join(", "),
                                message: "the broker refused the subscription: this identity may not read the request topic (check the broker's ACL for the publisher's certificate or user, and --topic-prefix / --board)".into(),
                            });
                        }
                        c.awaiting_subacks = c.awaiting_subacks.saturating_sub(1);
                        if c.awaiting_subacks == 0 {
                            core.handle(now, Input::Connected(i));
                            (events)(Event::Connected {
                                filters: c.subscribed.clone(),
                            });
                        }
                    }
                }
                Ok(NetEvent::PublishSent(pkid)) => {
                    if let Some(tag) = c.queued.pop_front() {
                        c.on_wire.insert(pkid, tag);
                    }
                }
                Ok(NetEvent::PubAck(pkid, refused)) => {
                    if let Some(tag) = c.on_wire.remove(&pkid) {
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
                    let address = c.options.address();
                    if error.permanent && !c.ever_connected {
                        fatal = Some(format!("cannot connect to {address}: {}", error.text));
                        break 'run;
                    }
                    core.handle(now, Input::Disconnected(i));
                    while let Some(e) = core.poll_event() {
                        (events)(e);
                    }
                    let mut error = if c.ever_connected {
                        error.text
                    } else {
                        format!(
                            "cannot connect to {address} ({}); is the broker running?",
                            error.text
                        )
                    };
                    if many {
                        error = format!("connection {}: {error}", i + 1);
                    }
                    (events)(Event::Disconnected {
                        error,
                        retry_ms: c.backoff.as_millis() as u64,
                    });
                    // A new client and event loop: a clean start with nothing of the old
                    // connection left over.
                    let (client, fresh) = transport::connect(c.options.clone(), tuning);
                    c.client = client;
                    c.queued.clear();
                    c.on_wire.clear();
                    lp = fresh;
                    delay = c.backoff;
                    c.backoff = (c.backoff * 2).min(Duration::from_secs(5));
                }
            }
            polls[i] = Some(poll_owned(lp, delay));
        }
        while let Some(e) = core.poll_event() {
            (events)(e);
        }
        if let Some((_, task)) = writer {
            task.abort();
        }
        for c in &conns {
            c.client.try_disconnect();
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            for p in polls.iter_mut() {
                while let Some(f) = p.take() {
                    let (lp, r) = f.await;
                    if r.is_ok() {
                        *p = Some(poll_owned(lp, Duration::ZERO));
                    }
                }
            }
        })
        .await;
        (core, fatal)
    }
}
