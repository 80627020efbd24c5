//! Test images and an in-process publisher.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ota_core::image::tlv::{encode_entry_header, encode_info, TLV_INFO_MAGIC};
use ota_core::image::{ImageFlags, ImageHeader, PublicKey, TlvKind, Version};
use otactl::publish::{self, ClientOptions, Event, EventSink, PublishConfig, ServedImage};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

pub const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Payload bytes of a slot-filling PSoC 6 image (about 1.66 MiB with header and TLVs).
pub const SLOT_PAYLOAD: usize = 1_738_000;

/// A deterministic signing key for tests (never a real key).
pub fn test_key() -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(b"otactl publish tests")).unwrap()
}

/// Writes the key as PKCS#8 PEM into `dir`.
pub fn write_key(dir: &Path) -> PathBuf {
    let p = dir.join("signing.pem");
    std::fs::write(
        &p,
        test_key().to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    p
}

pub fn public_key() -> PublicKey {
    PublicKey::from_verifying_key(*test_key().verifying_key())
}

/// An MCUboot image signed like Infineon's PSoC 6 flow (`-H 0x400 --pad-header`, KEYHASH,
/// ECDSA-P256), with a pseudo-random payload of `payload_len` bytes.
pub fn signed_image(version: (u8, u8, u16), payload_len: usize, seed: u32) -> Vec<u8> {
    let header = ImageHeader {
        load_addr: 0,
        hdr_size: 0x400,
        protect_tlv_size: 0,
        img_size: payload_len as u32,
        flags: ImageFlags(0),
        version: Version::new(version.0, version.1, version.2),
    };
    let mut img = header.to_bytes().to_vec();
    img.resize(0x400, 0);
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    img.extend((0..payload_len).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 8) as u8
    }));
    let hash: [u8; 32] = Sha256::digest(&img).into();
    let sig: Signature = test_key().sign_prehash(&hash).unwrap();
    let der = sig.to_der();
    let key_hash = public_key().key_hash();
    let tot = 4 + (4 + 32) + (4 + 32) + (4 + der.as_bytes().len());
    img.extend(encode_info(TLV_INFO_MAGIC, tot as u16));
    img.extend(encode_entry_header(TlvKind::SHA256, 32));
    img.extend(hash);
    img.extend(encode_entry_header(TlvKind::KEYHASH, 32));
    img.extend(key_hash);
    img.extend(encode_entry_header(
        TlvKind::ECDSA_SIG,
        der.as_bytes().len() as u16,
    ));
    img.extend(der.as_bytes());
    img
}

/// Writes a slot-filling image of `version` into `dir`.
pub fn write_image(dir: &Path, name: &str, version: (u8, u8, u16)) -> (PathBuf, Vec<u8>) {
    let img = signed_image(version, SLOT_PAYLOAD, u32::from(version.2) + 7);
    let p = dir.join(name);
    std::fs::write(&p, &img).unwrap();
    (p, img)
}

pub fn served(board: &str, path: &Path) -> Arc<ServedImage> {
    Arc::new(ServedImage::load(board, path, &[public_key()]).unwrap())
}

/// Events seen so far plus a live feed.
#[derive(Clone)]
pub struct Events {
    pub all: Arc<Mutex<Vec<Event>>>,
    pub tx: broadcast::Sender<Event>,
}

impl Events {
    pub fn new() -> Self {
        Self {
            all: Arc::default(),
            tx: broadcast::channel(65536).0,
        }
    }
    pub fn sink(&self) -> EventSink {
        let me = self.clone();
        Arc::new(move |e: Event| {
            if let Event::Disconnected { error, .. } = &e {
                eprintln!("publisher disconnected: {error}");
            }
            if let Event::Warning { topic, message } = &e {
                eprintln!("publisher warning: {topic}: {message}");
            }
            if !matches!(e, Event::Progress { .. }) {
                me.all.lock().unwrap().push(e.clone());
            }
            let _ = me.tx.send(e);
        })
    }
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.all.lock().unwrap().iter().filter(|e| f(e)).count()
    }
    /// Waits (bounded) until at least `n` events matching `f` have been seen; returns the count.
    pub async fn wait_count(&self, f: impl Fn(&Event) -> bool, n: usize, limit: Duration) -> usize {
        let mut rx = self.tx.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while self.count(&f) < n {
                let _ = rx.recv().await;
            }
        })
        .await;
        self.count(&f)
    }

    /// Waits (bounded) until an event matching `f` has been seen.
    pub async fn wait_for(&self, f: impl Fn(&Event) -> bool, limit: Duration) -> bool {
        let mut rx = self.tx.subscribe();
        if self.count(&f) > 0 {
            return true;
        }
        tokio::time::timeout(limit, async {
            loop {
                match rx.recv().await {
                    Ok(e) if f(&e) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    _ => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

/// A publisher running in this process; dropped → shut down.
pub struct Running {
    pub events: Events,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), publish::PublishError>>,
}

impl Running {
    pub async fn start(cfg: PublishConfig) -> Self {
        let events = Events::new();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let sink = events.sink();
        let task = tokio::spawn(publish::run(
            cfg,
            async {
                let _ = rx.await;
            },
            sink,
        ));
        let r = Self {
            events,
            stop: Some(stop),
            task,
        };
        assert!(
            r.events
                .wait_for(
                    |e| matches!(e, Event::Connected { .. }),
                    Duration::from_secs(15)
                )
                .await,
            "publisher did not connect and subscribe within 15 s"
        );
        r
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let t = &mut self.task;
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("publisher stops")
            .unwrap()
            .unwrap();
    }
}

pub fn config(port: u16, images: Vec<Arc<ServedImage>>) -> PublishConfig {
    PublishConfig::new(
        ClientOptions::plain(&format!("otactl-test-{port}"), "127.0.0.1", port, false),
        images,
    )
}

/// A client subscribed to `#` that records every message the broker routes (topic, size).
pub struct Spy {
    pub seen: Arc<Mutex<Vec<(String, usize)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Spy {
    /// Connects and subscribes; returns once the broker confirmed the subscription.
    pub async fn start(port: u16) -> Self {
        let mut o = rumqttc::MqttOptions::new(format!("spy-{port}"), "127.0.0.1", port);
        o.set_max_packet_size(4 << 20, 1 << 20);
        let (c, mut el) = rumqttc::AsyncClient::new(o, 64);
        c.subscribe("#", rumqttc::QoS::AtMostOnce).await.unwrap();
        let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let _keep = c;
            let mut ready = Some(ready_tx);
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        s.lock().unwrap().push((p.topic.clone(), p.payload.len()));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("spy: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("spy subscribed")
            .unwrap();
        Self { seen, task }
    }

    /// Waits (bounded) until at least `n` messages matching `f` were seen; returns (count, bytes).
    pub async fn wait_on(
        &self,
        f: impl Fn(&str) -> bool,
        n: usize,
        limit: Duration,
    ) -> (usize, usize) {
        let end = std::time::Instant::now() + limit;
        loop {
            let got = self.on(&f);
            if got.0 >= n || std::time::Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages seen on topics matching `f`: (count, bytes).
    pub fn on(&self, f: impl Fn(&str) -> bool) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(t, _)| f(t))
            .fold((0, 0), |(n, b), (_, len)| (n + 1, b + len))
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain MQTT client that publishes what a hostile (or buggy) device would.
pub struct Attacker {
    pub client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Attacker {
    pub fn start(port: u16, id: &str) -> Self {
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_max_packet_size(4 << 20, 4 << 20);
        o.set_inflight(200);
        let (client, mut el) = rumqttc::AsyncClient::new(o, 1024);
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = el.poll().await {
                    eprintln!("attacker: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { client, task }
    }

    /// Returns once the publisher has handled everything this client sent before: a last,
    /// valid request on the same topic (delivered in order) must have been answered.
    pub async fn sync(&self, p: &Running, n: u32) {
        let serial = format!("SENTINEL-{n}");
        let doc = format!(
            r#"{{"Message":"Update Availability", "SerialNumber": "{serial}", "Version": "1.0.0", "UniqueTopicName": "MyUniqueTopic/{BOARD}/OTAImage/{}"}}"#,
            60_000 + n
        );
        self.send(BOARD, doc).await;
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Offered { device, .. } | Event::NoUpdate { device, .. } if device.ends_with(&serial)),
                    Duration::from_secs(30)
                )
                .await,
            "the publisher never answered the sentinel request"
        );
    }

    /// Publishes `payload` on the request topic of `board` (QoS 1).
    pub async fn send(&self, board: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(
                format!("MyUniqueTopic/{board}/publish_notify"),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.into(),
            )
            .await
            .unwrap();
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
