//! A publisher that is not otactl: written here from spec/protocol.md's publisher rules only
//! (§2.3 job document, §2.4 "no update", §2.9 chunk requests, §3.1 chunk header), with its own
//! JSON handling and header packing, so the device is checked against the spec and not against
//! otactl's reading of it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

use super::{apps, expect, start, World, BOARD};

const PREFIX: &str = "MyUniqueTopic";
const CHUNK: usize = 4096;

/// How the spec publisher serves.
struct Serving {
    /// Answers "Request Data Chunk" (else only pushes on "Request Update").
    chunks: bool,
    /// The job's `Broker` and `Port` (empty: the same server).
    broker: String,
    port: String,
}

impl Default for Serving {
    fn default() -> Self {
        Self {
            chunks: true,
            broker: String::new(),
            port: String::new(),
        }
    }
}

/// The publisher thread; stops on drop.
pub struct SpecPublisher {
    client: Client,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// §3.1: `'<8s5H2I3H'`: magic, offset_to_data, type, version (3 × u16), total size, image
/// offset, data size, total payloads, payload index; data follows at byte 32.
fn chunk(image: &[u8], version: [u16; 3], offset: usize, size: usize) -> Vec<u8> {
    let end = (offset + size).min(image.len());
    let data = &image[offset..end];
    let mut p = Vec::with_capacity(32 + data.len());
    p.extend_from_slice(b"OTAImage");
    p.extend_from_slice(&32u16.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    for v in version {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&(image.len() as u32).to_le_bytes());
    p.extend_from_slice(&(offset as u32).to_le_bytes());
    p.extend_from_slice(&(data.len() as u16).to_le_bytes());
    p.extend_from_slice(&(image.len().div_ceil(CHUNK) as u16).to_le_bytes());
    p.extend_from_slice(&((offset / CHUNK) as u16).to_le_bytes());
    p.extend_from_slice(data);
    p
}

fn parse_version(s: &str) -> [u16; 3] {
    let mut v = [0u16; 3];
    for (i, part) in s.split('.').take(3).enumerate() {
        v[i] = part.trim().parse().unwrap_or(0);
    }
    v
}

/// Field as a string or number (the device sends strings; §2.9).
fn number(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.trim().parse().ok())
        .or_else(|| v.as_i64())
}

fn handle(
    client: &Client,
    req: &Value,
    image: &[u8],
    version: [u16; 3],
    delay: Duration,
    opts: &Serving,
) {
    let Some(topic) = req["UniqueTopicName"].as_str() else {
        return;
    };
    let send = |payload: Vec<u8>| {
        let _ = client.publish(topic, QoS::AtLeastOnce, false, payload);
    };
    match req["Message"].as_str() {
        Some("Update Availability") => {
            let running = parse_version(req["Version"].as_str().unwrap_or(""));
            let v = format!("{}.{}.{}", version[0], version[1], version[2]);
            let doc = if version > running {
                json!({"Message": "Update Available", "Manufacturer": "Infineon",
                    "ManufacturerId": "ABCD123", "Product": "EFGH456",
                    "SerialNumber": "ABC213450001", "Board": BOARD, "Version": v,
                    "Connection": "MQTT", "Broker": opts.broker, "Port": opts.port,
                    "UniqueTopicName": topic})
            } else {
                json!({"Message": "No Update Available", "UniqueTopicName": topic})
            };
            send(doc.to_string().into_bytes());
        }
        Some("Request Update") => {
            for off in (0..image.len()).step_by(CHUNK) {
                std::thread::sleep(delay);
                send(chunk(image, version, off, CHUNK));
            }
        }
        Some("Request Data Chunk") if opts.chunks => {
            let (Some(off), Some(size)) = (number(&req["Offset"]), number(&req["Size"])) else {
                return;
            };
            let off = usize::try_from(off).unwrap_or(usize::MAX);
            if off >= image.len() {
                return;
            }
            let size = if size < 0 {
                image.len() - off
            } else {
                size as usize
            };
            std::thread::sleep(delay);
            send(chunk(image, version, off, size.min(CHUNK)));
        }
        _ => {}
    }
}

impl SpecPublisher {
    /// Serves `image` as `version` on the broker at `port`, sleeping `delay` before each chunk.
    pub fn start(port: u16, image: Vec<u8>, version: &str, delay: Duration) -> Self {
        Self::serving(port, image, version, delay, Serving::default())
    }

    /// Like [`Self::start`], but it cannot serve "Request Data Chunk" (ignores it) and only
    /// pushes the whole image on "Request Update", as the example's publisher.py in practice.
    pub fn push_only(port: u16, image: Vec<u8>, version: &str, delay: Duration) -> Self {
        let opts = Serving {
            chunks: false,
            ..Serving::default()
        };
        Self::serving(port, image, version, delay, opts)
    }

    /// Like [`Self::start`], but its job documents name `host:port` as the server to download
    /// from (`Broker`/`Port`, spec §4.4: a redirect).
    pub fn redirecting(port: u16, image: Vec<u8>, version: &str, host: &str) -> Self {
        let opts = Serving {
            broker: host.to_string(),
            port: port.to_string(),
            ..Serving::default()
        };
        Self::serving(port, image, version, Duration::ZERO, opts)
    }

    fn serving(port: u16, image: Vec<u8>, version: &str, delay: Duration, how: Serving) -> Self {
        let mut opts = MqttOptions::new("spec-publisher", "127.0.0.1", port);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = Client::new(opts, 4096);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        conn.eventloop.set_network_options(net);
        client
            .subscribe(format!("{PREFIX}/{BOARD}/publish_notify"), QoS::AtLeastOnce)
            .unwrap();
        let version = parse_version(version);
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (client.clone(), Arc::clone(&stop));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for ev in conn.iter() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(req) = serde_json::from_slice::<Value>(&p.payload) {
                            handle(&c, &req, &image, version, delay, &how);
                        }
                    }
                    Ok(_) => {}
                    Err(_) if s.load(Ordering::Relaxed) => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the spec publisher subscribed");
        Self {
            client,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SpecPublisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn chunk_header_matches_golden_h2() {
    // spec §8 G7 H2: v2.0.0, total 10000, offset 0, size 4096, payloads 3, index 0.
    let image = vec![0u8; 10_000];
    let c = chunk(&image, [2, 0, 0], 0, 4096);
    let h2 = "4f 54 41 49 6d 61 67 65 20 00 00 00 02 00 00 00 00 00 10 27 00 00 00 00 00 00 00 10 03 00 00 00";
    let hex: String = c[..32].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, h2.replace(' ', ""));
}

#[test]
fn update_served_by_a_publisher_that_is_not_otactl() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let a = apps();
    let (v100, v110) = (w.sign(&a.v100, "1.0.0"), w.sign(&a.v110, "1.1.0"));
    let mut board = start(&w.board("board"), Some(&v100), "spec");
    expect(&mut board, "app: version 1.0.0 started");
    let _p = SpecPublisher::start(
        w.broker.port,
        std::fs::read(&v110).unwrap(),
        "1.1.0",
        Duration::ZERO,
    );
    expect(&mut board, "update accepted");
    expect(&mut board, "download 100%");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "image confirmed");
    // 1.1.0 is not newer than itself: the spec publisher answers "No Update Available".
    expect(&mut board, "no update: invalid_version");
}
