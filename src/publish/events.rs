//! What the publisher reports while it runs: the CLI draws bars or prints lines from these,
//! `--json` prints one per line.

use serde::Serialize;

/// How a transfer is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// "Request Update": the whole image pushed to the device's unique topic.
    Push,
    /// "Send Direct Update": the whole image broadcast on `PFX/BRD/OTAImage`.
    Direct,
    /// "Request Data Chunk": one chunk per request.
    Pull,
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Connected to the broker and subscribed.
    Connected {
        /// The subscribed filters.
        filters: Vec<String>,
    },
    /// Lost the broker; reconnecting after `retry_ms`.
    Disconnected {
        /// Why.
        error: String,
        /// Backoff before the next attempt.
        retry_ms: u64,
    },
    /// A device asked whether there is an update and got the job document.
    Offered {
        /// Device key (`BOARD/SerialNumber`).
        device: String,
        /// Its running version.
        running: String,
        /// The offered version.
        version: String,
    },
    /// A device asked and got "No Update Available".
    NoUpdate {
        /// Device key.
        device: String,
        /// Its running version.
        running: String,
        /// Why: `not_newer`, `blocked`, `no_image_for_board`.
        reason: String,
    },
    /// A transfer started.
    Started {
        /// Device key (or `BOARD/*` for a direct broadcast).
        device: String,
        /// The reply topic.
        topic: String,
        /// Push, direct or pull.
        mode: Mode,
        /// Version being sent.
        version: String,
        /// Image size.
        total: u32,
    },
    /// Bytes handed to the broker for a transfer so far.
    Progress {
        /// Device key.
        device: String,
        /// The reply topic.
        topic: String,
        /// Bytes sent so far.
        bytes: u32,
        /// Image size.
        total: u32,
    },
    /// A whole image was handed to the broker (push/direct), or its last chunk (pull).
    Sent {
        /// Device key.
        device: String,
        /// The reply topic.
        topic: String,
        /// Version sent.
        version: String,
        /// Bytes sent.
        bytes: u32,
        /// Milliseconds from the first to the last chunk.
        millis: u64,
    },
    /// A result for a device: `success`, `failure`, `updated` (it reported the new version),
    /// `reverted` (it came back on the old version).
    Result {
        /// Device key.
        device: String,
        /// The version concerned.
        version: String,
        /// The result.
        result: String,
    },
    /// Another process (`otactl status --unblock`) cleared a blocked version while this
    /// publisher runs: it is offered again.
    Unblocked {
        /// Device key.
        device: String,
        /// The version.
        version: String,
    },
    /// Another publisher on the same database (a replica) blocked a version for a device (it
    /// saw a failure or a revert): this one does not offer it either.
    Blocked {
        /// Device key.
        device: String,
        /// The version.
        version: String,
    },
    /// Something an operator should know once (said once per board): e.g. why revert
    /// protection is off for a board's devices.
    Notice {
        /// The board concerned.
        board: String,
        /// In plain words.
        message: String,
    },
    /// Something a device sent was ignored; the publisher keeps serving.
    Warning {
        /// The topic it came on.
        topic: String,
        /// What was wrong.
        message: String,
    },
}

impl Event {
    /// The event as one JSON line (no newline).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Where events go: any `Fn(Event)`; called from publisher tasks, so it must be quick.
pub type EventSink = std::sync::Arc<dyn Fn(Event) + Send + Sync>;

/// A sink that logs each event with the `log` crate.
#[must_use]
pub fn log_sink() -> EventSink {
    std::sync::Arc::new(|e: Event| match e {
        Event::Warning { topic, message } => log::warn!("{topic}: {message}"),
        Event::Notice { message, .. } => log::warn!("{message}"),
        Event::Progress { .. } => {}
        other => log::info!("{}", other.to_json()),
    })
}
