//! The images a publisher serves: loaded once, verified against the signing key at start-up,
//! with version and size taken from the MCUboot header, and pre-cut into chunks.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use ota_core::image::{verify, ImageHeader, PublicKey};
use ota_core::protocol::{AppVersion, ChunkHeader, CHUNK_HEADER_SIZE, CHUNK_SIZE};

use super::PublishError;

/// One board's image, ready to serve.
#[derive(Debug)]
pub struct ServedImage {
    /// The board string (`CY_TARGET_BOARD_STRING`) this image is for.
    pub board: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The MCUboot header.
    pub header: ImageHeader,
    /// The version devices see (`major.minor.revision` of the header).
    pub version: AppVersion,
    /// The file, exactly as it is sent.
    pub bytes: Bytes,
    /// Every chunk for a push (header + data), in order.
    pub chunks: Vec<Bytes>,
    /// Bytes the file holds after the signed image (header + payload + TLVs), which are not
    /// served: padding (`--pad`), a trailer, appended data.
    pub trailing: usize,
}

impl ServedImage {
    /// Loads `path` for `board` (a signed `.bin`, or the signed Intel HEX `otactl sign` writes,
    /// served as the bytes from the image header on: see [`crate::assemble::image_bytes`]), checks
    /// it with [`verify::validate`] against `keys` (at least one key is required; an encrypted
    /// image with [`verify::validate_encrypted_as_stored`]), and cuts it into 4096-byte chunks.
    ///
    /// # Errors
    /// [`PublishError::Image`] naming the file and what is wrong.
    pub fn load(board: &str, path: &Path, keys: &[PublicKey]) -> Result<Self, PublishError> {
        let err = |reason: String| PublishError::Image {
            path: path.to_path_buf(),
            reason,
        };
        let raw = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let data = crate::assemble::image_bytes(path, raw)
            .map_err(|e| err(format!("not valid Intel HEX: {e}")))?;
        Self::from_bytes(board, path, data, keys).map_err(err)
    }

    /// Like [`ServedImage::load`], from bytes in memory.
    ///
    /// # Errors
    /// Why the image is refused.
    pub fn from_bytes(
        board: &str,
        path: &Path,
        data: Vec<u8>,
        keys: &[PublicKey],
    ) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("no public key to verify it with".into());
        }
        ota_core::protocol::topics::check_level(board)
            .map_err(|e| format!("board {board:?}: {e}"))?;
        let total = u32::try_from(data.len()).map_err(|_| "larger than 4 GiB".to_string())?;
        if let Some(why) = crate::assemble::not_an_image(&data) {
            return Err(why);
        }
        // An encrypted image (`sign -E`) is hashed over its plaintext, which only the device can
        // see: its recorded hash must be signed by the key.
        let verified = match verify::validate(&mut data.as_slice(), total, keys) {
            Err(verify::VerifyError::HashMismatch) => {
                verify::validate_encrypted_as_stored(&mut data.as_slice(), total, keys)
            }
            r => r,
        }
        .map_err(|e| format!("does not verify with the given key: {e}"))?;
        let version = AppVersion::from_image(verified.header.version);
        // Serve exactly what the header and the TLV area define; nothing appended after it.
        let end = verified.end as usize;
        let trailing = data.len() - end;
        let mut data = data;
        data.truncate(end);
        let bytes = Bytes::from(data);
        let chunks =
            cut(&bytes, version).ok_or("too many 4096-byte chunks for the u16 chunk index")?;
        Ok(Self {
            board: board.to_string(),
            path: path.to_path_buf(),
            header: verified.header,
            version,
            bytes,
            chunks,
            trailing,
        })
    }

    /// The image size.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// Never true for a verified image.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One chunk: `len` bytes at `offset` (already bounded by the caller), with its header.
    #[must_use]
    pub fn chunk_at(&self, offset: u32, len: u16) -> Option<Bytes> {
        let h = ChunkHeader::for_chunk(self.version, self.len(), offset, len, CHUNK_SIZE as u32)?;
        let start = offset as usize;
        let data = self.bytes.get(start..start + usize::from(len))?;
        let mut b = BytesMut::with_capacity(CHUNK_HEADER_SIZE + data.len());
        b.put_slice(&h.to_bytes());
        b.put_slice(data);
        Some(b.freeze())
    }
}

fn cut(bytes: &Bytes, version: AppVersion) -> Option<Vec<Bytes>> {
    let total = bytes.len() as u32;
    let mut out = Vec::with_capacity(bytes.len().div_ceil(CHUNK_SIZE));
    for (i, data) in bytes.chunks(CHUNK_SIZE).enumerate() {
        let off = u32::try_from(i * CHUNK_SIZE).ok()?;
        let h = ChunkHeader::for_chunk(version, total, off, data.len() as u16, CHUNK_SIZE as u32)?;
        let mut b = BytesMut::with_capacity(CHUNK_HEADER_SIZE + data.len());
        b.put_slice(&h.to_bytes());
        b.put_slice(data);
        out.push(b.freeze());
    }
    Some(out)
}

/// Reads the public key from a PEM file holding either the signing key (PKCS#8 or SEC1) or
/// its public half (`PUBLIC KEY`), through [`crate::sign::load_key`].
///
/// # Errors
/// [`PublishError::Key`] naming the file.
pub fn load_public_key(path: &Path) -> Result<PublicKey, PublishError> {
    crate::sign::load_key(path)
        .map(|k| k.public_key())
        .map_err(|e| PublishError::Key {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
impl ServedImage {
    /// An image of `len` bytes for `board` at `version`, not signed (core unit tests).
    pub(crate) fn for_tests(board: &str, version: (u16, u16, u16), len: usize) -> Self {
        use ota_core::image::{ImageFlags, Version};
        let header = ImageHeader {
            load_addr: 0,
            hdr_size: 32,
            protect_tlv_size: 0,
            img_size: len.saturating_sub(32) as u32,
            flags: ImageFlags(0),
            version: Version::new(version.0 as u8, version.1 as u8, version.2),
        };
        let version = AppVersion::new(version.0, version.1, version.2);
        let bytes = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let chunks = cut(&bytes, version).expect("small image");
        Self {
            board: board.to_string(),
            path: PathBuf::from("test.bin"),
            header,
            version,
            bytes,
            chunks,
            trailing: 0,
        }
    }
}
