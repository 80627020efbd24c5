//! An AWS IoT Core stand-in: a proxy on a free loopback port that forwards every client
//! connection to a real mosquitto and enforces, per connection, the message-broker limits AWS
//! publishes (spec/brokers.md), recording what each connection did so tests can assert on it.
//!
//! Enforced, client → broker: at most 100 PUBLISH/s and 512 KiB/s of PUBLISH packets (a sliding
//! 1 s window; an over-limit PUBLISH is throttled: [`Throttle::Drop`] discards it — no PUBACK
//! on MQTT 3.1.1, a PUBACK with reason code 0x97 "Quota exceeded" on MQTT 5 — and
//! [`Throttle::Disconnect`] closes the connection), payloads of at most 128 KiB, topics of at
//! most 256 bytes and 7 slashes, no QoS 2 PUBLISH, client IDs of at most 128 bytes, at most 8
//! filters per SUBSCRIBE and 50 subscriptions (a breach of these closes the connection, as AWS
//! does; a SUBSCRIBE asking for QoS 2 is granted QoS 1). Broker → client: at most 100
//! unacknowledged QoS 1 PUBLISHes in flight (AWS's published quota; brokers.md does not list
//! it); further ones wait for the client's PUBACKs.
//!
//! Packets are framed by their fixed header and forwarded byte for byte (except a QoS 2
//! SUBSCRIBE option, rewritten to QoS 1). Everything is bounded (packet size, queues, records);
//! the front and every connection stop when [`AwsFront`] is dropped.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

mod checks;
mod packet;
use checks::{on_connect, on_publish, on_subscribe, on_unsubscribe, Windows};
use packet::{parse_publish, read_packet, Cursor, ReadEnd};

/// What happens to a PUBLISH over the rate or throughput limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// Discard it (MQTT 5: answer PUBACK 0x97) and keep the connection.
    Drop,
    /// Close the connection.
    Disconnect,
}

/// The limits the front enforces ([`Limits::aws`] are AWS IoT Core's).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Client → broker PUBLISH packets per connection in any 1 s window.
    pub publish_per_sec: usize,
    /// Client → broker PUBLISH bytes (whole packets) per connection in any 1 s window.
    pub bytes_per_sec: usize,
    /// Largest PUBLISH payload.
    pub max_payload: usize,
    /// Longest topic name or filter, bytes.
    pub max_topic_bytes: usize,
    /// Most `/` in a topic name or filter.
    pub max_topic_slashes: usize,
    /// Longest client ID.
    pub max_client_id: usize,
    /// Most filters in one SUBSCRIBE.
    pub max_filters_per_subscribe: usize,
    /// Most subscriptions per connection.
    pub max_subscriptions: usize,
    /// Broker → client QoS 1 PUBLISHes without the client's PUBACK.
    pub inflight_to_client: usize,
    /// How long a full in-flight window may wait for a PUBACK before the front closes the
    /// connection (AWS keeps retrying for an hour; a test wants an answer).
    pub ack_timeout: Duration,
}

impl Limits {
    /// AWS IoT Core's published limits.
    pub fn aws() -> Self {
        Self {
            publish_per_sec: 100,
            bytes_per_sec: 512 * 1024,
            max_payload: 128 * 1024,
            max_topic_bytes: 256,
            max_topic_slashes: 7,
            max_client_id: 128,
            max_filters_per_subscribe: 8,
            max_subscriptions: 50,
            inflight_to_client: 100,
            ack_timeout: Duration::from_secs(30),
        }
    }
}

/// A broken limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// More than [`Limits::publish_per_sec`] PUBLISHes in 1 s.
    PublishRate,
    /// More than [`Limits::bytes_per_sec`] in 1 s.
    Throughput,
    /// A payload over [`Limits::max_payload`] (its length).
    PayloadTooLarge(usize),
    /// A topic over [`Limits::max_topic_bytes`] (its length).
    TopicTooLong(usize),
    /// A topic with more than [`Limits::max_topic_slashes`] slashes (their number).
    TooManySlashes(usize),
    /// A QoS 2 PUBLISH.
    Qos2Publish,
    /// A SUBSCRIBE asking for QoS 2 (granted QoS 1; the connection stays).
    Qos2Subscribe,
    /// A client ID over [`Limits::max_client_id`] (its length).
    ClientIdTooLong(usize),
    /// A SUBSCRIBE with more than [`Limits::max_filters_per_subscribe`] filters.
    TooManyFilters(usize),
    /// More than [`Limits::max_subscriptions`] subscriptions.
    TooManySubscriptions,
    /// The client left a full in-flight window unacknowledged for [`Limits::ack_timeout`].
    AckTimeout,
    /// Not MQTT (what was wrong).
    Malformed(&'static str),
}

/// What one client connection did.
#[derive(Clone, Debug, Default)]
pub struct ConnStats {
    /// Client ID from CONNECT.
    pub client_id: String,
    /// Protocol level from CONNECT (4 = MQTT 3.1.1, 5 = MQTT 5).
    pub protocol: u8,
    /// PUBLISH packets the client sent.
    pub publishes: u64,
    /// Of those, forwarded to the broker.
    pub forwarded: u64,
    /// Of those, throttled (dropped, or the one that closed the connection).
    pub throttled: u64,
    /// Most PUBLISHes the client sent in any 1 s window (forwarded or not).
    pub max_publish_per_sec: usize,
    /// Most PUBLISHes forwarded in any 1 s window.
    pub max_forwarded_per_sec: usize,
    /// Most PUBLISH bytes forwarded in any 1 s window.
    pub max_bytes_per_sec: usize,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes sent to the client.
    pub bytes_to_client: u64,
    /// Most broker → client QoS 1 PUBLISHes awaiting the client's PUBACK at once.
    pub max_inflight_to_client: usize,
    /// Broken limits, in order (at most [`MAX_VIOLATIONS`] kept).
    pub violations: Vec<Violation>,
    /// The violation the front closed the connection for.
    pub closed_for: Option<Violation>,
    /// Whether the connection is still open.
    pub open: bool,
    /// When the client's first and last PUBLISH arrived.
    pub publish_span: Option<(Instant, Instant)>,
}

/// Violations kept per connection.
pub const MAX_VIOLATIONS: usize = 64;
/// Connections recorded; further ones are refused.
pub const MAX_CONNECTIONS: usize = 4096;
/// Largest broker → client packet forwarded.
const MAX_DOWN_PACKET: usize = 16 << 20;

struct Shared {
    stats: Mutex<Vec<ConnStats>>,
    changed: Condvar,
}

impl Shared {
    fn update<T>(&self, idx: usize, f: impl FnOnce(&mut ConnStats) -> T) -> T {
        let mut all = self.stats.lock().unwrap();
        let out = f(&mut all[idx]);
        self.changed.notify_all();
        out
    }
}

/// The running front; stops (closing every connection) on drop.
pub struct AwsFront {
    /// Its port on 127.0.0.1.
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AwsFront {
    /// A front with AWS's limits before the broker on `127.0.0.1:broker_port`.
    pub fn start(broker_port: u16, mode: Throttle) -> Self {
        Self::with_limits(broker_port, mode, Limits::aws())
    }

    /// A front with `limits` before the broker on `127.0.0.1:broker_port`.
    pub fn with_limits(broker_port: u16, mode: Throttle, limits: Limits) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the front");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            stats: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        });
        let (stop, stopped) = oneshot::channel();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("awsfront-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let broker = SocketAddr::from(([127, 0, 0, 1], broker_port));
                    let cfg = Arc::new((limits, mode));
                    tokio::select! {
                        () = accept(listener, broker, s, cfg) => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .unwrap();
        Self {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A snapshot of every connection so far, in the order they were accepted.
    pub fn connections(&self) -> Vec<ConnStats> {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Most PUBLISHes any connection sent in any 1 s window.
    pub fn max_publish_per_sec(&self) -> usize {
        let all = self.connections();
        all.iter().map(|c| c.max_publish_per_sec).max().unwrap_or(0)
    }

    /// Waits until `done` holds for the connection records, at most `timeout`; whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[ConnStats]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut all = self.shared.stats.lock().unwrap();
        loop {
            if done(&all) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            all = self.shared.changed.wait_timeout(all, left).unwrap().0;
        }
    }
}

impl Drop for AwsFront {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    broker: SocketAddr,
    shared: Arc<Shared>,
    cfg: Arc<(Limits, Throttle)>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let idx = {
            let mut all = shared.stats.lock().unwrap();
            if all.len() >= MAX_CONNECTIONS {
                continue; // refused: dropping the socket closes it
            }
            all.push(ConnStats {
                open: true,
                ..ConnStats::default()
            });
            all.len() - 1
        };
        tokio::spawn(serve(
            client,
            broker,
            idx,
            Arc::clone(&shared),
            Arc::clone(&cfg),
        ));
    }
}

/// The task that ended a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Up,
    Down,
    Writer,
}

/// State both directions of one connection share.
struct Conn {
    idx: usize,
    shared: Arc<Shared>,
    limits: Limits,
    mode: Throttle,
    /// Broker → client QoS 1 packet ids awaiting the client's PUBACK.
    inflight: Mutex<HashSet<u16>>,
    acked: Notify,
    /// The connection is closing: nothing waits for the client any more.
    closing: AtomicBool,
    /// MQTT protocol level (4 until CONNECT says otherwise).
    protocol: Mutex<u8>,
}

async fn serve(
    client: TcpStream,
    broker: SocketAddr,
    idx: usize,
    shared: Arc<Shared>,
    cfg: Arc<(Limits, Throttle)>,
) {
    let broker =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(broker)).await {
            Ok(Ok(b)) => b,
            _ => {
                shared.update(idx, |s| s.open = false);
                return;
            }
        };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (br, bw) = broker.into_split();
    let conn = Arc::new(Conn {
        idx,
        shared: Arc::clone(&shared),
        limits: cfg.0.clone(),
        mode: cfg.1,
        inflight: Mutex::new(HashSet::new()),
        acked: Notify::new(),
        closing: AtomicBool::new(false),
        protocol: Mutex::new(4),
    });
    let (to_client, rx) = mpsc::channel::<Vec<u8>>(64);
    let (to_broker, brx) = mpsc::channel::<Vec<u8>>(64);
    let broker_writer = tokio::spawn(write_broker(bw, brx));
    let mut writer = tokio::spawn(write_client(cw, rx, Arc::clone(&conn)));
    let mut up = tokio::spawn(upstream(
        cr,
        to_broker,
        to_client.clone(),
        Arc::clone(&conn),
    ));
    let mut down = tokio::spawn(downstream(br, to_client, Arc::clone(&conn)));
    // Whichever direction ends first ends the connection.
    let (closed_for, ended) = tokio::select! {
        r = &mut up => (r.ok().and_then(Result::err), Side::Up),
        r = &mut down => (r.ok().and_then(Result::err), Side::Down),
        _ = &mut writer => (None, Side::Writer),
    };
    conn.closing.store(true, Ordering::SeqCst);
    conn.acked.notify_one();
    // The client side closes at once: awaiting the aborted tasks drops its socket halves.
    up.abort();
    writer.abort();
    if ended != Side::Up {
        let _ = up.await;
    }
    if ended != Side::Writer {
        let _ = writer.await;
    }
    // The broker side closes gracefully, as a real broker's own session would end: what was
    // accepted is written, then FIN, then the broker's last packets are read until it closes
    // (dropping a socket with unread data would reset it, and the broker would lose the
    // PUBLISHes still in its receive buffer).
    let _ = tokio::time::timeout(Duration::from_secs(5), broker_writer).await;
    if ended != Side::Down {
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut down).await;
        down.abort();
    }
    shared.update(idx, |s| {
        s.open = false;
        if let Some(v) = closed_for {
            push_violation(s, v.clone());
            s.closed_for = Some(v);
        }
    });
}

fn push_violation(s: &mut ConnStats, v: Violation) {
    if s.violations.len() < MAX_VIOLATIONS {
        s.violations.push(v);
    }
}

/// Client → broker: checks every packet, forwards what passes.
async fn upstream(
    cr: tokio::net::tcp::OwnedReadHalf,
    to_broker: mpsc::Sender<Vec<u8>>,
    to_client: mpsc::Sender<Vec<u8>>,
    conn: Arc<Conn>,
) -> Result<(), Violation> {
    let mut cr = BufReader::new(cr);
    let mut windows = Windows::default();
    let mut subscriptions: HashSet<Vec<u8>> = HashSet::new();
    // Over the payload limit by more than any header can explain: refuse without reading it.
    let max = conn.limits.max_payload + 65_536 + 16;
    loop {
        let mut p = match read_packet(&mut cr, max).await {
            Ok(p) => p,
            Err(ReadEnd::Closed) => return Ok(()),
            Err(ReadEnd::TooLarge(n)) => return Err(Violation::PayloadTooLarge(n)),
            Err(ReadEnd::Malformed) => return Err(Violation::Malformed("remaining length")),
        };
        let n = p.bytes.len() as u64;
        conn.shared.update(conn.idx, |s| s.bytes_from_client += n);
        let forward = match p.kind() {
            1 => on_connect(&p, &conn).map(|()| true)?,
            3 => on_publish(&p, &conn, &mut windows, &to_client).await?,
            4 => {
                let id = Cursor::new(p.body()).u16()?;
                conn.inflight.lock().unwrap().remove(&id);
                conn.acked.notify_one();
                true
            }
            8 => on_subscribe(&mut p, &conn, &mut subscriptions).map(|()| true)?,
            10 => on_unsubscribe(&p, &conn, &mut subscriptions).map(|()| true)?,
            _ => true,
        };
        if forward && to_broker.send(p.bytes).await.is_err() {
            return Ok(());
        }
    }
}

/// Broker → client: holds QoS 1 PUBLISHes while the client's in-flight window is full. Once the
/// client is gone it reads (and discards) until the broker closes.
async fn downstream(
    br: tokio::net::tcp::OwnedReadHalf,
    to_client: mpsc::Sender<Vec<u8>>,
    conn: Arc<Conn>,
) -> Result<(), Violation> {
    let mut br = BufReader::new(br);
    let mut client_gone = false;
    loop {
        let Ok(p) = read_packet(&mut br, MAX_DOWN_PACKET).await else {
            return Ok(());
        };
        client_gone = client_gone || conn.closing.load(Ordering::SeqCst);
        if client_gone {
            continue;
        }
        if p.kind() == 3 {
            let protocol = *conn.protocol.lock().unwrap();
            let publish = parse_publish(&p, protocol)?;
            if let (1, Some(id)) = (publish.qos, publish.packet_id) {
                wait_for_window(&conn).await?;
                let n = {
                    let mut inflight = conn.inflight.lock().unwrap();
                    inflight.insert(id);
                    inflight.len()
                };
                conn.shared.update(conn.idx, |s| {
                    s.max_inflight_to_client = s.max_inflight_to_client.max(n);
                });
            }
        }
        client_gone = to_client.send(p.bytes).await.is_err();
    }
}

async fn wait_for_window(conn: &Conn) -> Result<(), Violation> {
    let deadline = tokio::time::Instant::now() + conn.limits.ack_timeout;
    while conn.inflight.lock().unwrap().len() >= conn.limits.inflight_to_client
        && !conn.closing.load(Ordering::SeqCst)
    {
        // `notify_one` keeps a permit when nobody waits, so an ack between the check and this
        // await is not lost.
        if tokio::time::timeout_at(deadline, conn.acked.notified())
            .await
            .is_err()
        {
            return Err(Violation::AckTimeout);
        }
    }
    Ok(())
}

/// Writes what the client sent and the front let through; then FIN.
async fn write_broker(
    mut bw: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(bytes) = rx.recv().await {
        bw.write_all(&bytes).await?;
    }
    bw.shutdown().await
}

async fn write_client(
    mut cw: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    conn: Arc<Conn>,
) -> io::Result<()> {
    while let Some(bytes) = rx.recv().await {
        cw.write_all(&bytes).await?;
        let n = bytes.len() as u64;
        conn.shared.update(conn.idx, |s| s.bytes_to_client += n);
    }
    Ok(())
}
