//! The tokio loop that drives [`Core`]: one task owns the core, every connection's client and
//! every connection's event loop, so the order of everything is exact. Each event loop is polled
//! by one future that owns it and hands it back with its event (never cancelled mid-way, except
//! at shutdown); between events the task hands the core's transmits to the clients, runs the
//! core's timers and reports saves. The state store runs on a blocking task of its own: it
//! writes the core's batches (retrying, with the backlog merged, while the database is away) and
//! asks every 0.2 s what other processes wrote (unblocks; other replicas' blocks and records),
//! which it feeds back to the core as inputs.
//!
//! Acknowledgements: rumqttc reports each of our PUBLISHes as it goes out (with its packet id),
//! in the order the client was given them, and each PUBACK by packet id; this loop maps packet
//! ids back to the core's [`Tag`]s. When a connection drops, its client and event loop are
//! replaced by new ones (a clean session: everything unacknowledged is gone, and no event of the
//! old connection can be mistaken for one of the new), and the core resends.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::core::{Core, Input, Tag};
use super::events::{Event, EventSink};
use super::store::{Batch, Change, Store};
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

/// How often the store is asked for changes by other processes (and a failed write retried).
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// What the store task tells the loop.
enum FromStore {
    /// Every change up to this number was handled (written, or kept for a retry).
    Saved(u64),
    /// What other processes (`status --unblock`, other replicas) wrote.
    Changes(Vec<Change>),
}

/// Writes `backlog` if there is one; says so when the database fails and when it is back.
fn flush(store: &mut dyn Store, backlog: &mut Option<Batch>, failing: &mut bool) {
    let Some(b) = backlog.as_ref() else {
        return;
    };
    match store.write(b) {
        Ok(()) => {
            if std::mem::take(failing) {
                log::warn!(
                    "{}: the state store works again; {} record(s) and {} event(s) held in memory were written",
                    store.describe(),
                    b.records.len(),
                    b.events.len()
                );
            }
            *backlog = None;
        }
        Err(e) if !*failing => {
            *failing = true;
            log::error!("{e}; devices are served from memory and the changes written when the store is back");
        }
        Err(_) => {}
    }
}

/// Runs the store off the loop: writes each batch (one at a time; the loop sends the next once
/// this one is reported), retries a failed one with later batches merged in, and reports
/// what other processes wrote. Ends, after a last write, when the sender is dropped.
fn spawn_store(
    mut store: Box<dyn Store>,
    out: tokio::sync::mpsc::UnboundedSender<FromStore>,
) -> (
    std::sync::mpsc::Sender<(u64, Batch)>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Batch)>();
    let task = tokio::task::spawn_blocking(move || {
        let mut backlog: Option<Batch> = None;
        let mut failing = false;
        let mut watch_failed = false;
        loop {
            let next = rx.recv_timeout(WATCH_EVERY);
            let closed = matches!(next, Err(RecvTimeoutError::Disconnected));
            let upto = match next {
                Ok((upto, batch)) => {
                    match &mut backlog {
                        Some(b) => b.merge(batch),
                        None => backlog = Some(batch),
                    }
                    Some(upto)
                }
                Err(_) => None,
            };
            flush(&mut *store, &mut backlog, &mut failing);
            // Also after a failed write (logged): a broken store must not hold up devices.
            if let Some(n) = upto {
                let _ = out.send(FromStore::Saved(n));
            }
            if closed {
                if let Some(b) = backlog {
                    log::error!(
                        "{}: {} record(s) and {} event(s) could not be written before the publisher stopped",
                        store.describe(),
                        b.records.len(),
                        b.events.len()
                    );
                }
                return;
            }
            match store.changes_since() {
                Ok(v) => {
                    watch_failed = false;
                    if !v.is_empty() {
                        let _ = out.send(FromStore::Changes(v));
                    }
                }
                Err(e) if !watch_failed => {
                    watch_failed = true;
                    log::warn!("cannot read other publishers' changes from the state store: {e}");
                }
                Err(_) => {}
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
    pub store: Option<Box<dyn Store>>,
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
            store,
        } = self;
        let (saved_tx, mut saved_rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = store.map(|s| spawn_store(s, saved_tx));
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
            // One batch at a time: while the store writes, changes accumulate in the core and
            // the next batch covers them all (one transaction per burst).
            if let (Some((tx, _)), false) = (&writer, saving) {
                if let Some(batch) = core.take_save() {
                    saving = tx.send(batch).is_ok();
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
                Some(m) = saved_rx.recv() => {
                    let now = Instant::now().into_std();
                    match m {
                        FromStore::Saved(n) => {
                            saving = false;
                            core.handle(now, Input::Saved(n));
                        }
                        FromStore::Changes(v) => {
                            for c in &v {
                                core.handle(now, match c {
                                    Change::Unblocked { device, version } => {
                                        Input::Unblocked { device, version }
                                    }
                                    Change::Blocked { device, version } => {
                                        Input::Blocked { device, version }
                                    }
                                    Change::Record { device, record } => {
                                        Input::Record { device, record }
                                    }
                                });
                            }
                        }
                    }
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
        if let Some((tx, task)) = writer {
            if let Some(batch) = core.take_save() {
                let _ = tx.send(batch);
            }
            drop(tx);
            let _ = task.await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::state::{DeviceRecord, State, StateError};
    use crate::publish::store::HistoryEvent;

    /// A store whose writes fail while `down`; it keeps what it was given.
    #[derive(Default)]
    struct Flaky {
        down: bool,
        written: Vec<Batch>,
    }

    impl Store for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }
        fn load(&mut self) -> Result<State, StateError> {
            Ok(State::new())
        }
        fn write(&mut self, batch: &Batch) -> Result<(), StateError> {
            if self.down {
                return Err(StateError::Database {
                    what: "flaky".into(),
                    source: "connection refused".into(),
                });
            }
            self.written.push(batch.clone());
            Ok(())
        }
        fn changes_since(&mut self) -> Result<Vec<Change>, StateError> {
            Ok(Vec::new())
        }
        fn unblock(&mut self, _: Option<&str>, _: Option<&str>) -> Result<usize, StateError> {
            Ok(0)
        }
        fn history(&mut self, _: &str) -> Result<Vec<HistoryEvent>, StateError> {
            Ok(Vec::new())
        }
    }

    fn batch(device: &str, version: &str) -> Batch {
        Batch {
            records: vec![(
                device.into(),
                DeviceRecord {
                    version: Some(version.into()),
                    ..DeviceRecord::default()
                },
            )],
            ..Batch::default()
        }
    }

    #[test]
    fn a_store_that_goes_away_gets_the_backlog_when_it_returns() {
        let mut store = Flaky {
            down: true,
            ..Flaky::default()
        };
        let (mut backlog, mut failing) = (None, false);
        for (d, v) in [("B/1", "1"), ("B/2", "1"), ("B/1", "2")] {
            match &mut backlog {
                Some(b) => Batch::merge(b, batch(d, v)),
                None => backlog = Some(batch(d, v)),
            }
            flush(&mut store, &mut backlog, &mut failing);
            assert!(failing && backlog.is_some() && store.written.is_empty());
        }
        store.down = false;
        flush(&mut store, &mut backlog, &mut failing);
        assert!(!failing && backlog.is_none());
        let keys: Vec<(&str, Option<&str>)> = store.written[0]
            .records
            .iter()
            .map(|(k, r)| (k.as_str(), r.version.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [("B/2", Some("1")), ("B/1", Some("2"))],
            "the latest of each"
        );
    }
}
