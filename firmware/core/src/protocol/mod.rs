//! The Infineon `ota-update` MQTT protocol (see `spec/protocol.md`), shared by the device agent and
//! the publisher.
//!
//! Everything here is `no_std` and allocation-free: encoders write into caller buffers, decoders
//! borrow from the payload.
//!
//! | module | owns |
//! | --- | --- |
//! | [`topics`] | topic names and builders (`PFX/BRD/publish_notify`, unique topics, client IDs) |
//! | [`messages`] | message kinds, the device version triple, device identity templates |
//! | [`codec`] | encoders: byte-exact device requests (G1–G3, G6), job documents (G4), "no update" (G5) |
//! | [`job`] | the device's job-document rules (§4): parse + decide |
//! | [`request`] | the publisher's tolerant decoder of device requests (§2.10, §2.11) |
//! | [`chunk`] | the 32-byte chunk header (G7) and the device's acceptance checks (G8) |
//! | [`codes`] | stable numeric codes and snake_case reasons for everything a device can report |
//! | [`json`] | a small allocation-free JSON scanner used by the decoders |
//!
//! ## Who uses what
//!
//! - **Device** (OTA agent): [`topics::unique_topic`], [`topics::request_topic`],
//!   [`codec::encode_request`] / [`codec::encode_chunk_request`] / [`codec::encode_result`] to
//!   build requests, [`codec::JobDoc::parse`] + [`codec::JobDoc::evaluate`] to judge a job,
//!   [`chunk::accept_chunk`] to judge a chunk, [`codes::ErrorCode`] to report.
//! - **Publisher**: [`codec::decode_request`], [`codec::JobWriter`] / [`codec::encode_no_update`],
//!   [`chunk::ChunkHeader::for_chunk`].

pub mod chunk;
pub mod codec;
pub mod codes;
pub mod job;
pub mod json;
pub mod messages;
#[cfg(test)]
mod props;
pub mod request;
pub mod topics;

pub use chunk::{accept_chunk, ChunkHeader, ChunkReject, CHUNK_HEADER_SIZE, CHUNK_MAGIC};
pub use codes::ErrorCode;
pub use job::{DeviceContext, JobDoc, JobVerdict};
pub use messages::{AppVersion, DeviceIdentity, MessageKind, TEMPLATE_SERIAL};
pub use request::{decode_request, ChunkSize, Request, RequestError};

/// `CY_OTA_CHUNK_SIZE`: the data bytes per chunk the device asks for and the publisher sends.
pub const CHUNK_SIZE: usize = 4096;
/// The device's MQTT network buffer (`CY_OTA_CHUNK_SIZE + CY_OTA_CHUNK_HEADER_SIZE`): a whole
/// incoming PUBLISH packet must fit in it.
pub const DEVICE_NET_BUFFER: usize = 5120;
/// `CY_OTA_JSON_DOC_BUFF_SIZE`: the longest job document the device accepts (bytes).
pub const JOB_DOC_MAX: usize = 1024;

/// Largest chunk data length whose PUBLISH (QoS 1, 32-byte header) still fits the device's
/// 5120-byte buffer on a topic of `topic_len` bytes (spec §3.5: `5081 − topic_len`).
#[must_use]
pub const fn max_chunk_data(topic_len: usize) -> usize {
    // 1 type + 2 remaining length + 2 topic length + topic + 2 packet id + 32 header + data
    DEVICE_NET_BUFFER.saturating_sub(1 + 2 + 2 + 2 + CHUNK_HEADER_SIZE + topic_len)
}

/// A buffer was too small for an encoded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall;

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("output buffer too small")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BufferTooSmall {}

/// A `core::fmt::Write` into a byte slice that fails instead of truncating.
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
