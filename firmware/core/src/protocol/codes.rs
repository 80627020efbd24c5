//! Stable numeric codes and snake_case reasons for everything a device can report.
//!
//! Ranges: `0` success, `1xxx` storage / flash, `2xxx` image, `3xxx` protocol, `4xxx` network
//! and agent. Codes never change meaning once released; new ones are appended. The reason strings
//! are what the publisher logs and stores, and what `otactl status` shows.
//!
//! The names follow Infineon's `cy_rslt_t` OTA results where one exists
//! (`CY_RSLT_OTA_ERROR_NOT_A_HEADER` → [`ErrorCode::NotAHeader`], …).

/// Everything a device can report, with a stable number ([`ErrorCode::code`]) and a snake_case
/// reason ([`ErrorCode::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The update (or step) succeeded.
    Success,
    /// Erasing the secondary slot failed (`STORAGE_OPEN`).
    StorageErase,
    /// Writing a chunk to the secondary slot failed.
    StorageWrite,
    /// Reading back the secondary slot failed.
    StorageRead,
    /// Marking the new image pending (test or permanent swap) failed.
    SetPending,
    /// Confirming the running image (`image_ok`) failed.
    Confirm,
    /// The image does not start with MCUboot's magic.
    ImageBadMagic,
    /// The image's header or TLV areas are malformed or truncated.
    ImageFormat,
    /// The image does not fit in the slot.
    ImageTooLarge,
    /// The SHA-256 TLV does not match the image.
    ImageHashMismatch,
    /// No key matches the image's KEYHASH.
    ImageUnknownKey,
    /// The ECDSA signature does not verify.
    ImageBadSignature,
    /// The image uses flags (encryption, compression, …) this device does not support.
    ImageUnsupported,
    /// The installed test image did not confirm itself and the bootloader reverted it.
    ImageReverted,
    /// A chunk fails the header checks (`CY_RSLT_OTA_ERROR_NOT_A_HEADER`).
    NotAHeader,
    /// The offered version is not newer than the running one (`INVALID_VERSION`).
    InvalidVersion,
    /// The job's `Board` differs from the device's board string (`WRONG_BOARD`).
    WrongBoard,
    /// The job document is not valid JSON or too long (`MALFORMED_JOB_DOC`).
    MalformedJobDoc,
    /// No reply to "Update Availability" within the job timeout (`NO_UPDATE_AVAILABLE`).
    NoUpdateAvailable,
    /// The job redirects the device to another broker (`CHANGING_SERVER`, not an error).
    ChangingServer,
    /// An empty or otherwise unusable payload (`BADARG`).
    BadArg,
    /// A chunk's data runs past the end of its payload (the C device reads out of bounds here).
    ChunkOutOfBounds,
    /// A chunk's `total_size` or offset disagrees with the download so far.
    ChunkInconsistent,
    /// The data download did not finish within the data timeout.
    DataTimeout,
    /// No chunk arrived within the packet timeout.
    PacketTimeout,
    /// All download attempts failed.
    TooManyRetries,
    /// The broker dropped the connection during a transfer (`SERVER_DROPPED`).
    ServerDropped,
    /// The job asks for a connection type this device does not support.
    UnsupportedConnection,
    /// An incoming PUBLISH does not fit the device's network buffer.
    PayloadTooLarge,
    /// Connecting to the broker failed.
    Connect,
    /// Subscribing failed.
    Subscribe,
    /// Publishing a request or result failed.
    Publish,
    /// The application stopped the session.
    AppStopped,
}

/// Every code, in numeric order (for tables and round-trip tests).
pub const ALL: [ErrorCode; 33] = [
    ErrorCode::Success,
    ErrorCode::StorageErase,
    ErrorCode::StorageWrite,
    ErrorCode::StorageRead,
    ErrorCode::SetPending,
    ErrorCode::Confirm,
    ErrorCode::ImageBadMagic,
    ErrorCode::ImageFormat,
    ErrorCode::ImageTooLarge,
    ErrorCode::ImageHashMismatch,
    ErrorCode::ImageUnknownKey,
    ErrorCode::ImageBadSignature,
    ErrorCode::ImageUnsupported,
    ErrorCode::ImageReverted,
    ErrorCode::NotAHeader,
    ErrorCode::InvalidVersion,
    ErrorCode::WrongBoard,
    ErrorCode::MalformedJobDoc,
    ErrorCode::NoUpdateAvailable,
    ErrorCode::ChangingServer,
    ErrorCode::BadArg,
    ErrorCode::ChunkOutOfBounds,
    ErrorCode::ChunkInconsistent,
    ErrorCode::DataTimeout,
    ErrorCode::PacketTimeout,
    ErrorCode::TooManyRetries,
    ErrorCode::ServerDropped,
    ErrorCode::UnsupportedConnection,
    ErrorCode::PayloadTooLarge,
    ErrorCode::Connect,
    ErrorCode::Subscribe,
    ErrorCode::Publish,
    ErrorCode::AppStopped,
];

impl ErrorCode {
    /// The stable number, and the snake_case reason.
    const fn entry(self) -> (u16, &'static str) {
        match self {
            Self::Success => (0, "success"),
            Self::StorageErase => (1001, "storage_erase"),
            Self::StorageWrite => (1002, "storage_write"),
            Self::StorageRead => (1003, "storage_read"),
            Self::SetPending => (1004, "set_pending"),
            Self::Confirm => (1005, "confirm"),
            Self::ImageBadMagic => (2001, "image_bad_magic"),
            Self::ImageFormat => (2002, "image_format"),
            Self::ImageTooLarge => (2003, "image_too_large"),
            Self::ImageHashMismatch => (2004, "image_hash_mismatch"),
            Self::ImageUnknownKey => (2005, "image_unknown_key"),
            Self::ImageBadSignature => (2006, "image_bad_signature"),
            Self::ImageUnsupported => (2007, "image_unsupported"),
            Self::ImageReverted => (2008, "image_reverted"),
            Self::NotAHeader => (3001, "not_a_header"),
            Self::InvalidVersion => (3002, "invalid_version"),
            Self::WrongBoard => (3003, "wrong_board"),
            Self::MalformedJobDoc => (3004, "malformed_job_doc"),
            Self::NoUpdateAvailable => (3005, "no_update_available"),
            Self::ChangingServer => (3006, "changing_server"),
            Self::BadArg => (3007, "bad_arg"),
            Self::ChunkOutOfBounds => (3008, "chunk_out_of_bounds"),
            Self::ChunkInconsistent => (3009, "chunk_inconsistent"),
            Self::DataTimeout => (3010, "data_timeout"),
            Self::PacketTimeout => (3011, "packet_timeout"),
            Self::TooManyRetries => (3012, "too_many_retries"),
            Self::ServerDropped => (3013, "server_dropped"),
            Self::UnsupportedConnection => (3014, "unsupported_connection"),
            Self::PayloadTooLarge => (3015, "payload_too_large"),
            Self::Connect => (4001, "connect"),
            Self::Subscribe => (4002, "subscribe"),
            Self::Publish => (4003, "publish"),
            Self::AppStopped => (4004, "app_stopped"),
        }
    }

    /// The stable numeric code.
    #[must_use]
    pub const fn code(self) -> u16 {
        self.entry().0
    }

    /// The stable snake_case reason.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        self.entry().1
    }

    /// The code with this number.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        ALL.iter().copied().find(|c| c.code() == code)
    }

    /// The code with this reason.
    #[must_use]
    pub fn from_reason(reason: &str) -> Option<Self> {
        ALL.iter().copied().find(|c| c.reason() == reason)
    }

    /// Whether this is success (or the non-error redirect).
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::Success | Self::ChangingServer)
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_are_unique_and_round_trip() {
        for (i, a) in ALL.iter().enumerate() {
            assert_eq!(ErrorCode::from_code(a.code()), Some(*a));
            assert_eq!(ErrorCode::from_reason(a.reason()), Some(*a));
            assert!(a
                .reason()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            for b in &ALL[i + 1..] {
                assert!(a.code() < b.code(), "{a:?} {b:?} out of order or duplicate");
            }
        }
    }
}
