//! The 32-byte chunk header (`cy_ota_mqtt_chunk_payload_header_t`, spec §3) and the device's
//! acceptance checks (`cy_ota_mqtt_parse_chunk`).
//!
//! Layout, `#pragma pack(1)`, little-endian, data at `offset_to_data` (32):
//!
//! | off | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `OTAImage` (no NUL) |
//! | 8 | 2 | `offset_to_data` (32) |
//! | 10 | 2 | `ota_image_type` (0 = one file) |
//! | 12 | 2 | `update_version_major` |
//! | 14 | 2 | `update_version_minor` |
//! | 16 | 2 | `update_version_build` |
//! | 18 | 4 | `total_size` (image bytes) |
//! | 22 | 4 | `image_offset` (of this chunk's data) |
//! | 26 | 2 | `data_size` (≤ 4096) |
//! | 28 | 2 | `total_num_payloads` |
//! | 30 | 2 | `this_payload_index` (0-based) |

use super::codes::ErrorCode;
use super::messages::AppVersion;

/// Size of the header.
pub const CHUNK_HEADER_SIZE: usize = 32;
/// The header magic.
pub const CHUNK_MAGIC: [u8; 8] = *b"OTAImage";
/// `CY_OTA_MQTT_HEADER_TYPE_ONE_FILE`.
pub const IMAGE_TYPE_ONE_FILE: u16 = 0;

/// A decoded chunk header (fields as on the wire, see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "cy_ota_mqtt_chunk_payload_header_t")]
pub struct ChunkHeader {
    /// Where the data starts in the payload.
    pub offset_to_data: u16,
    /// 0 for a single-file image.
    pub image_type: u16,
    /// The offered version (checked by the device like a job's Version).
    pub version: AppVersion,
    /// Size of the whole image.
    pub total_size: u32,
    /// Offset of this chunk's data in the image.
    pub image_offset: u32,
    /// Bytes of data in this chunk.
    pub data_size: u16,
    /// Number of chunks the image is split into.
    pub total_payloads: u16,
    /// This chunk's index.
    pub payload_index: u16,
}

/// Why the device rejects a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkReject {
    /// Fails a header check (`NOT_A_HEADER`): magic, type, sizes, index, or shorter than 32 bytes.
    NotAHeader,
    /// The version is not newer than the running one (`INVALID_VERSION`; ends the session).
    InvalidVersion,
    /// The data runs past the end of the payload (the C device would read out of bounds).
    OutOfBounds,
}

impl ChunkReject {
    /// The error code the device reports.
    #[must_use]
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::NotAHeader => ErrorCode::NotAHeader,
            Self::InvalidVersion => ErrorCode::InvalidVersion,
            Self::OutOfBounds => ErrorCode::ChunkOutOfBounds,
        }
    }
}

impl core::fmt::Display for ChunkReject {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.code(), f)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ChunkHeader {
    /// The header the publisher sends for `data_size` bytes at `image_offset` of an image of
    /// `total_size` bytes split into `chunk_size` chunks: data at 32, type 0,
    /// `total_num_payloads = ceil(total / chunk_size)`, index `image_offset / chunk_size`.
    ///
    /// `None` if `chunk_size` is 0 or a count does not fit the u16 fields.
    #[must_use]
    pub fn for_chunk(
        version: AppVersion,
        total_size: u32,
        image_offset: u32,
        data_size: u16,
        chunk_size: u32,
    ) -> Option<Self> {
        if chunk_size == 0 {
            return None;
        }
        Some(Self {
            offset_to_data: CHUNK_HEADER_SIZE as u16,
            image_type: IMAGE_TYPE_ONE_FILE,
            version,
            total_size,
            image_offset,
            data_size,
            total_payloads: u16::try_from(total_size.div_ceil(chunk_size)).ok()?,
            payload_index: u16::try_from(image_offset / chunk_size).ok()?,
        })
    }

    /// The 32 header bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; CHUNK_HEADER_SIZE] {
        let mut b = [0u8; CHUNK_HEADER_SIZE];
        b[0..8].copy_from_slice(&CHUNK_MAGIC);
        b[8..10].copy_from_slice(&self.offset_to_data.to_le_bytes());
        b[10..12].copy_from_slice(&self.image_type.to_le_bytes());
        b[12..14].copy_from_slice(&self.version.major.to_le_bytes());
        b[14..16].copy_from_slice(&self.version.minor.to_le_bytes());
        b[16..18].copy_from_slice(&self.version.build.to_le_bytes());
        b[18..22].copy_from_slice(&self.total_size.to_le_bytes());
        b[22..26].copy_from_slice(&self.image_offset.to_le_bytes());
        b[26..28].copy_from_slice(&self.data_size.to_le_bytes());
        b[28..30].copy_from_slice(&self.total_payloads.to_le_bytes());
        b[30..32].copy_from_slice(&self.payload_index.to_le_bytes());
        b
    }

    /// Reads the fields of the first 32 bytes (the magic is not checked here).
    ///
    /// # Errors
    /// [`ChunkReject::NotAHeader`] for fewer than 32 bytes.
    pub fn parse(payload: &[u8]) -> Result<Self, ChunkReject> {
        let b = payload
            .get(..CHUNK_HEADER_SIZE)
            .ok_or(ChunkReject::NotAHeader)?;
        Ok(Self {
            offset_to_data: u16_at(b, 8),
            image_type: u16_at(b, 10),
            version: AppVersion::new(u16_at(b, 12), u16_at(b, 14), u16_at(b, 16)),
            total_size: u32_at(b, 18),
            image_offset: u32_at(b, 22),
            data_size: u16_at(b, 26),
            total_payloads: u16_at(b, 28),
            payload_index: u16_at(b, 30),
        })
    }
}

/// The device's header checks, in its order and with its quirks (spec §3.2, G8): only 7 magic
/// bytes compared; `offset_to_data ≤ payload length` (equal allowed); type 0;
/// `data_size ≤ total_size`; `index ≤ total` (equal allowed); then the version rule.
///
/// Unlike the C code, a payload shorter than 32 bytes is rejected instead of read past its end.
/// This function does **not** check that the data fits the payload; [`accept_chunk`] does.
///
/// # Errors
/// The device's verdict.
pub fn check_header(payload: &[u8], running: AppVersion) -> Result<ChunkHeader, ChunkReject> {
    let h = ChunkHeader::parse(payload)?;
    if payload[..7] != CHUNK_MAGIC[..7] {
        return Err(ChunkReject::NotAHeader);
    }
    if usize::from(h.offset_to_data) > payload.len()
        || h.image_type != IMAGE_TYPE_ONE_FILE
        || u32::from(h.data_size) > h.total_size
        || h.payload_index > h.total_payloads
    {
        return Err(ChunkReject::NotAHeader);
    }
    if !running.accepts(h.version) {
        return Err(ChunkReject::InvalidVersion);
    }
    Ok(h)
}

/// [`check_header`] plus the bounds check the C device lacks: the data
/// (`offset_to_data .. + data_size`) must lie inside the payload. Returns the header and data.
///
/// # Errors
/// The verdict; [`ChunkReject::OutOfBounds`] where the C device would read out of bounds.
pub fn accept_chunk(
    payload: &[u8],
    running: AppVersion,
) -> Result<(ChunkHeader, &[u8]), ChunkReject> {
    let h = check_header(payload, running)?;
    let start = usize::from(h.offset_to_data);
    let data = payload
        .get(start..start + usize::from(h.data_size))
        .ok_or(ChunkReject::OutOfBounds)?;
    Ok((h, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(s.split(' ')) {
            *o = u8::from_str_radix(b, 16).unwrap();
        }
        out
    }

    #[test]
    fn g7_headers() {
        let v110 = AppVersion::new(1, 1, 0);
        let v200 = AppVersion::new(2, 0, 0);
        let cases = [
            (v110, 1_000_000, 4096, 4096, "4f 54 41 49 6d 61 67 65 20 00 00 00 01 00 01 00 00 00 40 42 0f 00 00 10 00 00 00 10 f5 00 01 00"),
            (v200, 10000, 0, 4096, "4f 54 41 49 6d 61 67 65 20 00 00 00 02 00 00 00 00 00 10 27 00 00 00 00 00 00 00 10 03 00 00 00"),
            (v200, 10000, 8192, 1808, "4f 54 41 49 6d 61 67 65 20 00 00 00 02 00 00 00 00 00 10 27 00 00 00 20 00 00 10 07 03 00 02 00"),
            (v110, 4096, 0, 4096, "4f 54 41 49 6d 61 67 65 20 00 00 00 01 00 01 00 00 00 00 10 00 00 00 00 00 00 00 10 01 00 00 00"),
        ];
        for (v, total, off, size, bytes) in cases {
            let h = ChunkHeader::for_chunk(v, total, off, size, 4096).unwrap();
            assert_eq!(h.to_bytes(), hex(bytes));
            assert_eq!(ChunkHeader::parse(&hex(bytes)).unwrap(), h);
        }
    }

    fn h4_payload() -> [u8; 32 + 4096] {
        let mut p = [0xA5u8; 32 + 4096];
        let h = ChunkHeader::for_chunk(AppVersion::new(1, 1, 0), 4096, 0, 4096, 4096).unwrap();
        p[..32].copy_from_slice(&h.to_bytes());
        p
    }

    fn with(f: impl Fn(&mut ChunkHeader)) -> [u8; 32 + 4096] {
        let mut p = h4_payload();
        let mut h = ChunkHeader::parse(&p).unwrap();
        f(&mut h);
        p[..32].copy_from_slice(&h.to_bytes());
        p
    }

    #[test]
    fn g8_acceptance() {
        let run = AppVersion::new(1, 0, 0);
        let ok = |p: &[u8]| check_header(p, run).map(|_| ());
        assert_eq!(ok(&h4_payload()), Ok(()));
        let mut p = h4_payload();
        p[7] = b'X';
        assert_eq!(ok(&p), Ok(()), "OTAImagX accepted (7-byte compare)");
        p[5] = b'b';
        assert_eq!(ok(&p), Err(ChunkReject::NotAHeader));
        assert_eq!(
            ok(&with(|h| h.image_type = 1)),
            Err(ChunkReject::NotAHeader)
        );
        assert_eq!(ok(&with(|h| h.payload_index = 1)), Ok(()), "index == total");
        assert_eq!(
            ok(&with(|h| h.payload_index = 2)),
            Err(ChunkReject::NotAHeader)
        );
        assert_eq!(
            ok(&with(|h| h.data_size = 4097)),
            Err(ChunkReject::NotAHeader)
        );
        assert_eq!(
            ok(&with(|h| h.offset_to_data = 4129)),
            Err(ChunkReject::NotAHeader)
        );
        let edge = with(|h| h.offset_to_data = 4128);
        assert_eq!(
            ok(&edge),
            Ok(()),
            "the C device accepts (and reads out of bounds)"
        );
        assert_eq!(
            accept_chunk(&edge, run).map(|_| ()),
            Err(ChunkReject::OutOfBounds)
        );
        for (v, verdict) in [
            ((1, 0, 0), Err(ChunkReject::InvalidVersion)),
            ((1, 0, 1), Ok(())),
            ((0, 9, 9), Err(ChunkReject::InvalidVersion)),
            ((2, 0, 0), Ok(())),
            ((1, 1, 0), Ok(())),
        ] {
            let p = with(|h| h.version = AppVersion::new(v.0, v.1, v.2));
            assert_eq!(ok(&p), verdict, "{v:?}");
        }
        assert_eq!(ok(&h4_payload()[..31]), Err(ChunkReject::NotAHeader));
        let p = h4_payload();
        let (h, data) = accept_chunk(&p, run).unwrap();
        assert_eq!((h.data_size, data.len()), (4096, 4096));
    }
}
