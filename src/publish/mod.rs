//! The update server: serves MCUboot images to unmodified Infineon `ota-update` devices over
//! MQTT, speaking `ota_core::protocol` (spec/protocol.md) exactly.
//!
//! - One MQTT connection for every device ([`transport`]); chunks go out at QoS 1 through a
//!   bounded window, never stop-and-wait; "sent" means acknowledged by the broker.
//! - "Update Availability" → the job document (from [`document::JobTemplate`]) when the image is
//!   newer than the device's version and not blocked for it, else "No Update Available" (G5).
//! - "Request Update" → every chunk to the device's unique topic; "Send Direct Update" → every
//!   chunk on `PFX/BRD/OTAImage`; "Request Data Chunk" → one chunk (`Size` `-1` = the rest).
//! - "Success"/"Failure" → "Result Received"; results and blocked versions persist ([`state`]).
//! - Identity, reply topics and work per request are decided in [`core`] (see its docs): what a
//!   device sends can never make the publisher publish elsewhere, block a fleet, or drop its
//!   connection. Anything malformed → one [`Event::Warning`]; the server keeps going.
//! - Lost broker → reconnect with exponential backoff (100 ms … 5 s), resubscribe, and resend
//!   what the broker had not acknowledged.
//! - `share_group` → MQTT 5 shared subscriptions (`$share/GROUP/…`): several publishers split
//!   the requests; any of them can serve any chunk.
//!
//! Every decision (what to answer, send, record, block) is made by the sans-IO [`core`]; the
//! tokio loop in `driver` only drives it.
//!
//! Call [`run`] with a [`PublishConfig`], a shutdown future and an [`EventSink`].

pub mod core;
pub mod document;
mod driver;
pub mod embedded;
pub mod events;
pub mod profile;
pub mod served;
pub mod state;
pub mod store;
pub mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ota_core::protocol::topics;

pub use document::JobTemplate;
pub use events::{Event, EventSink, Mode};
pub use served::{load_public_key, ServedImage};
pub use state::{State, StateError, StateLock};
pub use transport::ClientOptions;

pub use self::core::Limits;
use self::core::{Core, CoreConfig};
pub use profile::Profile;
use transport::Tuning;

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
    /// The broker cannot be reached as configured (certificates, authorisation, host name):
    /// retrying would not help.
    #[error("{0}")]
    Connect(String),
    /// The state file is unusable (or in use by another publisher).
    #[error(transparent)]
    State(#[from] StateError),
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
    /// Where results, blocked versions and history persist (`None`: memory only): the SQLite
    /// database for `--state PATH` (see [`store::database_path`]; a JSON state file is
    /// imported once), or a PostgreSQL database for `postgres://…` ([`store::open`]), which
    /// several publishers share.
    pub state_file: Option<PathBuf>,
    /// MQTT 5 shared-subscription group.
    pub share_group: Option<String>,
    /// In-flight window.
    pub inflight: u16,
    /// How many times a device may come back on its old version after being sent a whole
    /// version before that version is blocked for it (1: at the first revert).
    pub block_after: u32,
    /// Bounds on the work done for devices (`--max-transfers` …); the rates and the pace come
    /// from `profile`.
    pub limits: Limits,
    /// The broker's limits (`--broker-profile` and its overrides).
    pub profile: Profile,
    /// MQTT connections (`--connections`): transfers are spread over them, each pinned to one;
    /// the first subscribes to the requests.
    pub connections: usize,
    /// Cap on device records in the state (`--max-devices`).
    pub max_devices: usize,
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
            limits: Limits::default(),
            profile: Profile::GENERIC,
            connections: 1,
            max_devices: state::MAX_DEVICES,
        }
    }

    /// `PFX/+/publish_notify`: every board's requests, so that a device of a board this
    /// publisher does not serve is noticed (a wrong board string is the commonest mistake).
    /// `None` with a share group: the members of a group must subscribe to the same filters,
    /// and publishers serving other boards may share the broker.
    #[must_use]
    pub fn wide_filter(&self) -> Option<String> {
        if self.share_group.is_some() {
            return None;
        }
        topics::check_level(&self.prefix).ok()?;
        Some(format!("{}/+/{}", self.prefix, topics::LISTEN_LEVEL))
    }

    /// The topic filters to subscribe to: the request topic of every served board.
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
            let longest = topics::unique_topic(&self.prefix, &img.board, 0xFFFF)
                .map_err(|e| PublishError::Config(format!("prefix/board {:?}: {e}", img.board)))?;
            let chunk = img.chunks.iter().map(bytes::Bytes::len).max().unwrap_or(0);
            let id = self
                .mqtt
                .for_connection(self.connections.max(1) - 1)
                .client_id();
            self.profile
                .check(chunk, &longest, &id)
                .map_err(|e| PublishError::Config(e.to_string()))?;
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

/// Runs the publisher until `shutdown` completes. Reconnects by itself; returns only on
/// shutdown or a start-up error. With a state file, holds its lock for the whole run (a second
/// publisher on the same file is refused, naming this one; a PostgreSQL database is shared by
/// any number of publishers, each learning what the others write), opens and migrates the
/// database at start (importing a JSON state file once), and writes every change to it as it
/// happens; other processes may read it and unblock versions meanwhile.
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
    let wide = cfg.wide_filter();
    // One publisher per SQLite file; a PostgreSQL database is shared by design (replicas).
    let _lock = match &cfg.state_file {
        Some(p) if store::postgres_address(p).is_none() => Some(StateLock::acquire(
            &store::database_path(p),
            "otactl publish",
        )?),
        _ => None,
    };
    let (mut state, store) = match cfg.state_file.clone() {
        Some(p) => {
            // Blocking I/O (a database connection with its own runtime): off this runtime.
            let who = cfg.mqtt.client_id();
            let opened = tokio::task::spawn_blocking(move || {
                let (mut s, imported) = store::open(&p, &who)?;
                let state = s.load()?;
                Ok::<_, StateError>((s, imported, state))
            })
            .await
            .map_err(|e| PublishError::Config(format!("opening the state store: {e}")))?;
            let (s, imported, state) = opened?;
            if let Some(i) = imported {
                log::warn!("{i}");
            }
            (state, Some(s))
        }
        None => (State::new(), None),
    };
    state.max_devices = cfg.max_devices;
    // Twice rumqttc's in-flight window: the next PUBLISHes wait in its channel, so the wire never
    // idles while an acknowledgement travels back through this loop.
    let inflight = cfg.inflight.min(cfg.profile.inflight).max(1);
    let window = usize::from(inflight) * 2;
    let tuning = Tuning {
        inflight,
        request_capacity: window + filters.len() + 16,
        keep_alive: Duration::from_secs(30),
    };
    let core = Core::new(
        CoreConfig {
            prefix: cfg.prefix,
            template: cfg.template,
            block_after: cfg.block_after,
            persisting: cfg.state_file.is_some(),
            limits: Limits {
                window,
                publish_rate: cfg.profile.publish_rate,
                bytes_rate: cfg.profile.bytes_rate,
                burst: cfg.profile.burst(),
                device_rate: cfg.profile.device_rate,
                ..cfg.limits
            },
            connections: cfg.connections.max(1),
        },
        images,
        state,
    );
    let options = (0..cfg.connections.max(1))
        .map(|n| cfg.mqtt.for_connection(n))
        .collect();
    let driver = driver::Driver {
        options,
        tuning,
        wide,
        filters,
        events,
        store,
    };
    let (_core, fatal) = driver.run(core, shutdown).await;
    match fatal {
        Some(why) => Err(PublishError::Connect(why)),
        None => Ok(()),
    }
}
