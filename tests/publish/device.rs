//! A test device written from spec/protocol.md's DEVICE rules (§1.4–§1.7, §2, §3.2–§3.4, §4),
//! independent of otactl's code: its own request templates, job parser and chunk checks.
#![allow(dead_code)]

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// How the device asks for data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Job flow, whole image per "Request Update" (the default build).
    Job,
    /// Job flow with `CY_MQTT_GET_ALL_DATA_WITH_ONE_CALL` removed: "Request Data Chunk".
    JobChunks,
    /// Direct flow: no job, "Request Update" straight away.
    Direct,
    /// Direct flow, asking with APP's "Send Direct Update" template (the image is broadcast on
    /// `PFX/BRD/OTAImage`, which the device subscribes to as its app filter).
    DirectBroadcast,
}

/// Device configuration.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub port: u16,
    pub prefix: String,
    pub board: String,
    pub running: (u16, u16, u16),
    pub serial: String,
    pub flow: Flow,
    /// Low 16 bits of the boot tick: unique topic number and client-ID suffix.
    pub tick: u16,
    pub job_timeout: Duration,
    pub data_timeout: Duration,
    pub send_result: bool,
    /// TLS (CA + device certificate), as a device built with them connects; `None`: plain MQTT.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// A device that reads (writes flash) at most this many bytes per second: after each
    /// message it stops reading its socket for the message's share of a second.
    pub read_rate: Option<u32>,
}

impl DeviceConfig {
    pub fn new(port: u16, board: &str, running: (u16, u16, u16), tick: u16) -> Self {
        Self {
            port,
            prefix: "MyUniqueTopic".into(),
            board: board.into(),
            running,
            serial: format!("SN{tick:05}"),
            flow: Flow::Job,
            tick,
            job_timeout: Duration::from_secs(5),
            data_timeout: Duration::from_secs(30),
            send_result: false,
            tls: None,
            read_rate: None,
        }
    }
    fn unique_topic(&self) -> String {
        format!("{}/{}/OTAImage/{}", self.prefix, self.board, self.tick)
    }
    fn filter_topic(&self) -> String {
        format!("{}/{}/OTAImage", self.prefix, self.board)
    }
    fn request_topic(&self) -> String {
        format!("{}/{}/publish_notify", self.prefix, self.board)
    }
    fn version(&self) -> String {
        format!("{}.{}.{}", self.running.0, self.running.1, self.running.2)
    }
    /// APP's request template (§2.2, §2.5): first key `:` without space, later keys `: `.
    fn request(&self, message: &str) -> String {
        format!(
            "{{\"Message\":\"{message}\", \"Manufacturer\": \"Infineon\", \"ManufacturerID\": \"ABCD123\", \"ProductID\": \"EFGH456\", \"SerialNumber\": \"{}\", \"BoardName\": \"CY8CPROTO_062_4343W\", \"Version\": \"{}\", \"UniqueTopicName\": \"{}\"}}",
            self.serial,
            self.version(),
            self.unique_topic()
        )
    }
    /// APP's `CY_OTA_DOWNLOAD_DIRECT_REQUEST` (§2.8): ends after Version with `" }"`.
    fn direct_request(&self) -> String {
        let full = self.request("Send Direct Update");
        let cut = full.find(", \"UniqueTopicName\"").unwrap();
        format!("{} }}", &full[..cut])
    }
    /// LIB's chunk request template (§2.9).
    fn chunk_request(&self, offset: u32, size: i64) -> String {
        let head = self.request("Request Data Chunk");
        let head = head.strip_suffix('}').unwrap();
        format!("{head}, \"Filename\": \"\", \"Offset\": \"{offset}\", \"Size\": \"{size}\"}}")
    }
}

/// How a session ended.
#[derive(Debug)]
pub enum Outcome {
    /// Downloaded: the secondary slot's bytes `[0, total_size)` and the header version.
    Updated {
        image: Vec<u8>,
        version: (u16, u16, u16),
    },
    /// Ended without an update: `invalid_version`, `wrong_board`, `no_update_available`,
    /// `malformed_job_doc`, `server_dropped`, `connect`, `data_timeout`.
    NoUpdate(&'static str),
}

enum Net {
    ConnAck,
    SubAck,
    Msg(String, Vec<u8>),
    Down,
}

struct Conn {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Net>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    /// CONNECT with a fresh client ID (§1.5), clean session, the will (§1.6); then subscribe
    /// the app filter and (optionally) the unique topic.
    async fn open(cfg: &DeviceConfig, suffix: u16, unique: bool) -> Result<Self, &'static str> {
        let mut o = MqttOptions::new(format!("CY_IOT_DEVICE{suffix}"), "127.0.0.1", cfg.port);
        o.set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true);
        if let Some(tls) = &cfg.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls.clone()),
            ));
        }
        o.set_last_will(rumqttc::LastWill::new(
            "cy_ota_device/will",
            "MQTT demo unexpectedly disconnected.",
            QoS::AtLeastOnce,
            false,
        ));
        o.set_max_packet_size(5120, 5120);
        let (client, mut el) = AsyncClient::new(o, 64);
        // Nagle on the device's socket would add a delayed-ACK stall (~40 ms) to every chunk
        // round trip; lwIP devices can set TCP_NODELAY too.
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        el.set_network_options(net);
        let (tx, rx) = mpsc::unbounded_channel();
        let read_rate = cfg.read_rate;
        let task = tokio::spawn(async move {
            loop {
                let m = match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Net::ConnAck,
                    Ok(Event::Incoming(Packet::SubAck(_))) => Net::SubAck,
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(rate) = read_rate {
                            // The device's flash write: the socket is not read meanwhile.
                            let busy = p.payload.len() as f64 / f64::from(rate.max(1));
                            tokio::time::sleep(Duration::from_secs_f64(busy)).await;
                        }
                        Net::Msg(p.topic, p.payload.to_vec())
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        let _ = tx.send(Net::Down);
                        return;
                    }
                };
                if tx.send(m).is_err() {
                    return;
                }
            }
        });
        let mut c = Self { client, rx, task };
        c.expect(|n| matches!(n, Net::ConnAck), "connect").await?;
        let mut topics = vec![cfg.filter_topic()];
        if unique {
            topics.push(cfg.unique_topic());
        }
        for t in &topics {
            c.client
                .subscribe(t.clone(), QoS::AtLeastOnce)
                .await
                .map_err(|_| "connect")?;
        }
        for _ in &topics {
            c.expect(|n| matches!(n, Net::SubAck), "connect").await?;
        }
        Ok(c)
    }

    async fn expect(
        &mut self,
        want: impl Fn(&Net) -> bool,
        err: &'static str,
    ) -> Result<(), &'static str> {
        loop {
            match timeout(Duration::from_secs(10), self.rx.recv()).await {
                Ok(Some(n)) if want(&n) => return Ok(()),
                Ok(Some(Net::Down) | None) | Err(_) => return Err(err),
                Ok(Some(_)) => {}
            }
        }
    }

    async fn publish(&self, topic: String, payload: String) -> Result<(), &'static str> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
            .await
            .map_err(|_| "server_dropped")
    }

    /// Next PUBLISH before `deadline`: Ok(None) on timeout, Err on a dropped connection.
    async fn next(&mut self, deadline: Instant) -> Result<Option<(String, Vec<u8>)>, &'static str> {
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return Ok(None),
                Ok(Some(Net::Msg(t, p))) => return Ok(Some((t, p))),
                Ok(Some(Net::Down) | None) => return Err("server_dropped"),
                Ok(Some(_)) => {}
            }
        }
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

/// C `atoi`, truncated to u16.
fn atoi(s: &str) -> u16 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: u32 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
    }
    (if neg { v.wrapping_neg() } else { v }) as u16
}

/// §4.2: every string member at any depth, key matched case-insensitively.
fn job_strings(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if let serde_json::Value::String(s) = v {
                    out.push((k.to_ascii_lowercase(), s.clone()));
                }
                job_strings(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| job_strings(v, out)),
        _ => {}
    }
}

/// §4.4 steps 1–3 (same server assumed for MQTT jobs without Broker/Port).
fn judge_job(cfg: &DeviceConfig, doc: &[u8]) -> Result<(), &'static str> {
    if doc.is_empty() {
        return Err("bad_arg");
    }
    if doc.len() > 1024 {
        return Err("malformed_job_doc");
    }
    let v: serde_json::Value = serde_json::from_slice(doc).map_err(|_| "malformed_job_doc")?;
    let mut fields = Vec::new();
    job_strings(&v, &mut fields);
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut parts = get("version")
        .unwrap_or_default()
        .split('.')
        .map(atoi)
        .collect::<Vec<_>>();
    parts.resize(3, 0);
    let offered = (parts[0], parts[1], parts[2]);
    if offered <= cfg.running {
        return Err("invalid_version");
    }
    if get("board").as_deref() != Some(cfg.board.as_str()) {
        return Err("wrong_board");
    }
    if get("broker").is_some_and(|b| !b.is_empty()) || get("port").is_some_and(|p| atoi(&p) != 0) {
        return Err("changing_server");
    }
    Ok(())
}

/// The job phase (§1.7 step 1): the first PUBLISH on any subscribed topic is the job.
async fn job_phase(cfg: &DeviceConfig) -> Result<(), &'static str> {
    let mut c = Conn::open(cfg, cfg.tick, true).await?;
    c.publish(cfg.request_topic(), cfg.request("Update Availability"))
        .await?;
    let got = c.next(Instant::now() + cfg.job_timeout).await?;
    c.close().await;
    match got {
        None => Err("no_update_available"),
        Some((_, doc)) => judge_job(cfg, &doc),
    }
}

/// One download attempt's bookkeeping (§3.4).
struct Download {
    slot: Vec<u8>,
    total: u32,
    written: u32,
    seen: Vec<bool>,
    version: (u16, u16, u16),
}

enum ChunkVerdict {
    Ok,
    NotAHeader,
    InvalidVersion,
}

impl Download {
    fn new() -> Self {
        Self {
            slot: Vec::new(),
            total: 0,
            written: 0,
            seen: vec![false; 2048],
            version: (0, 0, 0),
        }
    }

    /// §3.2 checks in order, then §3.4's write and dedup.
    fn accept(&mut self, running: (u16, u16, u16), p: &[u8]) -> ChunkVerdict {
        if p.len() < 32 || &p[..7] != b"OTAImag" {
            return ChunkVerdict::NotAHeader;
        }
        let u16_at = |o: usize| u16::from_le_bytes([p[o], p[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
        let (off_data, kind) = (u16_at(8), u16_at(10));
        let version = (u16_at(12), u16_at(14), u16_at(16));
        let (total, image_offset, size) = (u32_at(18), u32_at(22), u16_at(26));
        let (count, index) = (u16_at(28), u16_at(30));
        if usize::from(off_data) > p.len() || kind != 0 || u32::from(size) > total || index > count
        {
            return ChunkVerdict::NotAHeader;
        }
        if version <= running {
            return ChunkVerdict::InvalidVersion;
        }
        let start = usize::from(off_data);
        let Some(data) = p.get(start..start + usize::from(size)) else {
            return ChunkVerdict::NotAHeader; // the C device would read out of bounds here
        };
        if self.total == 0 {
            self.total = total;
            self.version = version;
        }
        let i = usize::from(index);
        if i < self.seen.len() {
            if self.seen[i] {
                return ChunkVerdict::Ok;
            }
            self.seen[i] = true;
        }
        let end = image_offset as usize + data.len();
        if self.slot.len() < end {
            self.slot.resize(end, 0xFF);
        }
        self.slot[image_offset as usize..end].copy_from_slice(data);
        self.written += u32::from(size);
        ChunkVerdict::Ok
    }

    fn done(&self) -> bool {
        self.total != 0 && self.written >= self.total
    }
}

/// The data phase (§1.7 step 2, §5.2 override (b)): up to 3 attempts on one connection.
async fn data_phase(cfg: &DeviceConfig) -> Result<Download, &'static str> {
    let mut c = Conn::open(cfg, cfg.tick.wrapping_add(1), true).await?;
    for _attempt in 0..3 {
        let mut d = Download::new();
        let chunked = cfg.flow == Flow::JobChunks;
        if chunked {
            c.publish(cfg.request_topic(), cfg.chunk_request(0, 4096))
                .await?;
        } else if cfg.flow == Flow::DirectBroadcast {
            c.publish(cfg.request_topic(), cfg.direct_request()).await?;
        } else {
            c.publish(cfg.request_topic(), cfg.request("Request Update"))
                .await?;
        }
        let deadline = Instant::now() + cfg.data_timeout;
        let mut failed = false;
        while !d.done() {
            let Some((_, p)) = c.next(deadline).await? else {
                failed = true;
                break;
            };
            match d.accept(cfg.running, &p) {
                ChunkVerdict::Ok => {}
                ChunkVerdict::NotAHeader => {
                    failed = true;
                    break;
                }
                ChunkVerdict::InvalidVersion => return Err("invalid_version"),
            }
            if chunked {
                let left = d.total.saturating_sub(d.written);
                let size = if left >= 4096 { 4096 } else { -1 };
                c.publish(cfg.request_topic(), cfg.chunk_request(d.written, size))
                    .await?;
            }
        }
        if !failed {
            c.close().await;
            d.slot.truncate(d.total as usize);
            return Ok(d);
        }
    }
    c.close().await;
    Err("data_timeout")
}

/// One session (§5.3): job (unless direct), data, optional result.
pub async fn session(cfg: &DeviceConfig) -> Outcome {
    if !matches!(cfg.flow, Flow::Direct | Flow::DirectBroadcast) {
        if let Err(e) = job_phase(cfg).await {
            return Outcome::NoUpdate(e);
        }
    }
    let d = match data_phase(cfg).await {
        Ok(d) => d,
        Err(e) => return Outcome::NoUpdate(e),
    };
    if cfg.send_result {
        if let Ok(c) = Conn::open(cfg, cfg.tick.wrapping_add(2), false).await {
            let r = format!(
                "{{\"Message\":\"Success\", \"UniqueTopicName\": \"{}\"}}",
                cfg.unique_topic()
            );
            let _ = c.publish(cfg.request_topic(), r).await;
            c.close().await;
        }
    }
    Outcome::Updated {
        image: d.slot,
        version: d.version,
    }
}

/// Sessions until an update arrives or `limit` passes; each new session gets a new tick
/// (the device's retry after a dropped or failed session, §5.4).
pub async fn until_updated(mut cfg: DeviceConfig, limit: Duration) -> Outcome {
    let end = Instant::now() + limit;
    let mut last = Outcome::NoUpdate("connect");
    while Instant::now() < end {
        match timeout(end - Instant::now(), session(&cfg)).await {
            Ok(o @ Outcome::Updated { .. }) => return o,
            Ok(o) => last = o,
            Err(_) => break,
        }
        cfg.tick = cfg.tick.wrapping_add(7);
        tokio::time::sleep(Duration::from_millis(200)).await; // RETRY_INTERVAL, scaled down
    }
    last
}
