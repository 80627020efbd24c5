//! The update server: serves MCUboot images to unmodified Infineon `ota-update` devices over
//! MQTT, speaking `firmware::protocol` (spec/protocol.md) exactly.
//!
//! - One MQTT connection for every device ([`transport`]); chunks go out at QoS 1 through
//!   rumqttc's bounded in-flight window (`inflight`), never stop-and-wait; `TCP_NODELAY` is set.
//! - "Update Availability" → the job document (from [`job::JobTemplate`]) when the image is
//!   newer than the device's version and not blocked for it, else "No Update Available" (G5).
//! - "Request Update" → every chunk to the device's unique topic; "Send Direct Update" → every
//!   chunk on `PFX/BRD/OTAImage`; "Request Data Chunk" → one chunk (`Size` `-1` = the rest).
//! - "Success"/"Failure" → "Result Received"; results and blocked versions persist ([`state`]).
//! - Anything malformed → one [`Event::Warning`]; the server keeps going.
//! - Lost broker → reconnect with exponential backoff (100 ms … 5 s), then resubscribe.
//! - `share_group` → MQTT 5 shared subscriptions (`$share/GROUP/…`): several publishers split
//!   the requests; any of them can serve any chunk.
//!
//! Call [`run`] with a [`PublishConfig`], a shutdown future and an [`EventSink`].

pub mod embedded;
pub mod events;
pub mod image;
pub mod job;
mod server;
pub mod state;
pub mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use firmware::protocol::topics;

pub use events::{Event, EventSink, Mode};
pub use image::{load_public_key, ServedImage};
pub use job::JobTemplate;
pub use state::State;
pub use transport::ClientOptions;

use server::Server;
use transport::{NetEvent, Tuning};

/// Default in-flight window (QoS 1 PUBLISHes awaiting PUBACK).
pub const DEFAULT_INFLIGHT: u16 = 64;
/// Default of [`PublishConfig::block_after`]: block a version at its first revert.
pub const DEFAULT_BLOCK_AFTER: u32 = 1;

/// Why the publisher could not start (it never stops because of device input).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// An image could not be loaded or does not verify.
    #[error("image {}: {reason}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is unusable.
    #[error("key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration problem (named).
    #[error("{0}")]
    Config(String),
    /// The state file is unusable.
    #[error(transparent)]
    State(#[from] anyhow::Error),
}

/// Everything [`run`] needs.
pub struct PublishConfig {
    /// Broker connection (URL, TLS, protocol version) — see [`crate::mqtt`].
    pub mqtt: ClientOptions,
    /// Company topic prefix (`COMPANY_TOPIC_PREPEND`).
    pub prefix: String,
    /// One image per board.
    pub images: Vec<Arc<ServedImage>>,
    /// Job document template.
    pub template: JobTemplate,
    /// Where results and blocked versions persist (`None`: memory only).
    pub state_file: Option<PathBuf>,
    /// MQTT 5 shared-subscription group.
    pub share_group: Option<String>,
    /// In-flight window.
    pub inflight: u16,
    /// How many times a device may come back on its old version after being sent a whole
    /// version before that version is blocked for it (1: at the first revert).
    pub block_after: u32,
}

impl PublishConfig {
    /// A configuration with defaults for everything but the broker and the images.
    #[must_use]
    pub fn new(mqtt: ClientOptions, images: Vec<Arc<ServedImage>>) -> Self {
        Self {
            mqtt,
            prefix: topics::PREFIX_APP.to_string(),
            images,
            template: JobTemplate::default(),
            state_file: None,
            share_group: None,
            inflight: DEFAULT_INFLIGHT,
            block_after: DEFAULT_BLOCK_AFTER,
        }
    }

    /// The topic filters to subscribe to.
    ///
    /// # Errors
    /// A bad prefix, board or group name.
    pub fn filters(&self) -> Result<Vec<String>, PublishError> {
        let mut out = Vec::new();
        for img in &self.images {
            let t = topics::request_topic(&self.prefix, &img.board)
                .map_err(|e| PublishError::Config(format!("prefix/board {:?}: {e}", img.board)))?;
            let f = match &self.share_group {
                Some(g) => topics::shared_filter(g, &t)
                    .map_err(|e| PublishError::Config(format!("share group {g:?}: {e}")))?
                    .to_string(),
                None => t.to_string(),
            };
            out.push(f);
        }
        Ok(out)
    }

    fn check(&self) -> Result<HashMap<String, Arc<ServedImage>>, PublishError> {
        if self.images.is_empty() {
            return Err(PublishError::Config("no image to serve (--image)".into()));
        }
        if self.share_group.is_some() && !self.mqtt.is_v5() {
            return Err(PublishError::Config(
                "--share-group needs MQTT 5 shared subscriptions".into(),
            ));
        }
        let mut map = HashMap::new();
        for img in &self.images {
            if map.insert(img.board.clone(), Arc::clone(img)).is_some() {
                return Err(PublishError::Config(format!(
                    "two images for board {}",
                    img.board
                )));
            }
        }
        Ok(map)
    }
}

/// Saves the state after changes, coalescing bursts, and reports how many changes each save
/// covered (replies that announce an outcome wait for that).
async fn write_state(server: Arc<Server>, path: PathBuf) {
    loop {
        server.dirty.notified().await;
        // Every change is made before it is counted, so this snapshot holds at least `upto`.
        let upto = server.changes.load(std::sync::atomic::Ordering::Acquire);
        let snapshot = server.snapshot();
        if let Some(snapshot) = snapshot {
            let p = path.clone();
            let r = tokio::task::spawn_blocking(move || snapshot.save(&p)).await;
            if let Ok(Err(e)) = r {
                log::error!("cannot save state: {e:#}");
            }
        }
        // Also after a failed save (logged above): a broken disk must not hold up devices.
        server.saved.send_replace(upto);
    }
}

/// Runs the publisher until `shutdown` completes. Reconnects by itself; returns only on
/// shutdown or a start-up error.
///
/// # Errors
/// [`PublishError`] for configuration and state-file problems found at start.
pub async fn run(
    cfg: PublishConfig,
    shutdown: impl Future<Output = ()>,
    events: EventSink,
) -> Result<(), PublishError> {
    let images = cfg.check()?;
    let filters = cfg.filters()?;
    let state = match &cfg.state_file {
        Some(p) => State::load(p)?,
        None => State::default(),
    };
    let tuning = Tuning {
        inflight: cfg.inflight,
        request_capacity: usize::from(cfg.inflight).max(16),
        keep_alive: Duration::from_secs(30),
    };
    let (client, mut lp) = transport::connect(cfg.mqtt, tuning);
    let server = Arc::new(Server::new(
        cfg.prefix,
        images,
        cfg.template,
        client.clone(),
        events,
        state,
        server::StatePolicy {
            persisting: cfg.state_file.is_some(),
            block_after: cfg.block_after,
        },
    ));
    let writer = cfg
        .state_file
        .clone()
        .map(|p| tokio::spawn(write_state(Arc::clone(&server), p)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, bytes::Bytes, u64)>(4096);
    let dispatcher = {
        let s = Arc::clone(&server);
        tokio::spawn(async move {
            while let Some((topic, payload, epoch)) = rx.recv().await {
                s.handle(&topic, &payload, epoch);
            }
        })
    };
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(100);
    let mut pending_acks = 0usize;
    loop {
        let ev = tokio::select! {
            () = &mut shutdown => break,
            ev = lp.poll() => ev,
        };
        match ev {
            Ok(NetEvent::Connected) => {
                backoff = Duration::from_millis(100);
                pending_acks = filters.len();
                for f in filters.clone() {
                    let c = client.clone();
                    tokio::spawn(async move { c.subscribe(&f).await });
                }
            }
            Ok(NetEvent::Subscribed) => {
                pending_acks = pending_acks.saturating_sub(1);
                if pending_acks == 0 {
                    (server.events)(Event::Connected {
                        filters: filters.clone(),
                    });
                }
            }
            Ok(NetEvent::Message { topic, payload }) => {
                if tx
                    .try_send((topic.clone(), payload, server.epoch()))
                    .is_err()
                {
                    (server.events)(Event::Warning {
                        topic,
                        message: "publisher overloaded; message dropped".into(),
                    });
                }
            }
            Ok(NetEvent::PubAck) => server.on_puback(),
            Ok(NetEvent::Other) => {}
            Err(error) => {
                server.on_disconnect();
                (server.events)(Event::Disconnected {
                    error,
                    retry_ms: backoff.as_millis() as u64,
                });
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    server.abort_all();
    dispatcher.abort();
    if let Some(w) = writer {
        w.abort();
    }
    if let Some(p) = &cfg.state_file {
        if let Some(s) = server.snapshot() {
            s.save(p)?;
        }
    }
    client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while lp.poll().await.is_ok() {}
    })
    .await;
    Ok(())
}
