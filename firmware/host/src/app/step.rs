//! What the OTA task reports, one [`Step`] at a time, to an [`Observer`].
//!
//! The device application prints each step as a transcript line (`ota: …`, the text of the
//! step's `Display`); `otactl device` prints them for a person or as JSON, and stops the task
//! when it has seen enough (the observer returns [`ControlFlow::Break`]).

use core::fmt;
use std::ops::ControlFlow;
use std::time::Duration;

use super::link::ConnectError;
use ota_core::protocol::ErrorCode;

/// One thing that happened in the OTA task.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step<'a> {
    /// The application runs a test image, which confirms itself once connected.
    TestImage,
    /// The bootloader reverted the last update (it never confirmed itself).
    Reverted,
    /// The flash failed while the agent looked at the slots at start.
    FlashAtStart(&'a str),
    /// A connection could not be made.
    ConnectFailed {
        /// Where to and why.
        error: &'a ConnectError,
        /// It was the server a job named: the task goes back to the home broker (else it
        /// retries after `retry`).
        home: bool,
        /// When the next attempt comes.
        retry: Duration,
    },
    /// Connected and subscribed.
    Connected {
        /// Broker host.
        host: &'a str,
        /// Broker port.
        port: u16,
        /// The session's MQTT client ID.
        client_id: &'a str,
        /// The topic the publisher replies on.
        unique: &'a str,
    },
    /// A subscribe or publish failed (the connection is dropped and made again).
    LinkFailed(&'a str),
    /// The connection was lost.
    ConnectionLost(&'a str),
    /// The running test image was confirmed (`image_ok` written).
    Confirmed,
    /// "Update Availability" sent.
    Asking,
    /// The check found nothing (why, when the agent knows).
    NoUpdate(Option<ErrorCode>),
    /// The job was accepted; the download starts, or resumes at a byte offset.
    Accepted {
        /// Where a resumed download continues.
        resumed_from: Option<u32>,
    },
    /// Download progress (every 10 %).
    Progress {
        /// Percent.
        pct: u32,
        /// Bytes received.
        received: u32,
        /// Image size.
        total: u32,
    },
    /// The whole image arrived, verified (hash, key, signature, version) and marked pending.
    Verified,
    /// The download was abandoned (the image was erased); the code says why.
    DownloadFailed(Option<ErrorCode>),
    /// Chunk requests went unanswered: the agent asks for the whole image again.
    FallBack,
    /// The job names another server to download from.
    Redirect {
        /// Its host.
        host: &'a str,
        /// Its port.
        port: u16,
    },
    /// The redirected download ended: back to the home broker.
    BackHome,
}

impl Step<'_> {
    /// A short stable name for the step (`otactl device --json`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::TestImage => "test_image",
            Self::Reverted => "reverted",
            Self::FlashAtStart(_) => "flash_error",
            Self::ConnectFailed { .. } => "connect_failed",
            Self::Connected { .. } => "connected",
            Self::LinkFailed(_) => "link_failed",
            Self::ConnectionLost(_) => "connection_lost",
            Self::Confirmed => "confirmed",
            Self::Asking => "asking",
            Self::NoUpdate(_) => "no_update",
            Self::Accepted { .. } => "accepted",
            Self::Progress { .. } => "progress",
            Self::Verified => "verified",
            Self::DownloadFailed(_) => "download_failed",
            Self::FallBack => "fall_back",
            Self::Redirect { .. } => "redirect",
            Self::BackHome => "back_home",
        }
    }
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TestImage => f.write_str(
                "running a test image: it confirms itself once the broker connection works",
            ),
            Self::Reverted => {
                f.write_str("the last update never confirmed itself: the bootloader reverted it")
            }
            Self::FlashAtStart(e) => write!(f, "flash error at start: {e}"),
            Self::ConnectFailed { error, home, .. } if *home => {
                write!(f, "{error}; back to the home broker")
            }
            Self::ConnectFailed { error, retry, .. } => {
                write!(f, "{error}; retrying in {} s", retry.as_secs())
            }
            Self::Connected {
                host,
                port,
                client_id,
                unique,
            } => write!(
                f,
                "connected to {host}:{port} as {client_id} (replies on {unique})"
            ),
            Self::LinkFailed(e) => f.write_str(e),
            Self::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            Self::Confirmed => {
                f.write_str("image confirmed (image_ok written): this version stays")
            }
            Self::Asking => f.write_str("asking the publisher for an update"),
            Self::NoUpdate(None) => f.write_str("no update (asking again every check interval)"),
            Self::NoUpdate(Some(c)) => {
                write!(f, "no update: {c} (asking again every check interval)")
            }
            Self::Accepted {
                resumed_from: Some(at),
            } if *at > 0 => write!(f, "update accepted; resuming the download at {at} bytes"),
            Self::Accepted { .. } => {
                f.write_str("update accepted; downloading into the secondary slot")
            }
            Self::Progress {
                pct,
                received,
                total,
            } => write!(f, "download {pct:>3}% ({received}/{total} bytes)"),
            Self::Verified => f.write_str("image verified and marked pending (test swap)"),
            Self::DownloadFailed(Some(c)) => write!(f, "download failed: {c}"),
            Self::DownloadFailed(None) => f.write_str("download stopped"),
            Self::FallBack => {
                f.write_str("no answer to the chunk requests: asking for the whole image again")
            }
            Self::Redirect { host, port } => write!(
                f,
                "the job names the server {host}:{port}: downloading from there"
            ),
            Self::BackHome => f.write_str("back to the home broker"),
        }
    }
}

/// Receives every [`Step`]; [`ControlFlow::Break`] stops the OTA task (see
/// [`super::ota::drive`]).
pub trait Observer {
    /// One step.
    fn step(&mut self, step: &Step<'_>) -> ControlFlow<()>;
}

impl<F: FnMut(&Step<'_>) -> ControlFlow<()>> Observer for F {
    fn step(&mut self, step: &Step<'_>) -> ControlFlow<()> {
        self(step)
    }
}
