//! TLV (type-length-value) areas that follow the payload.
//!
//! Each area starts with a 4-byte info header, then entries:
//!
//! ```text
//! info:  u16 it_magic (0x6908 protected / 0x6907 unprotected), u16 it_tlv_tot (incl. this header)
//! entry: u16 type, u16 len, len bytes of value
//! ```
//!
//! The protected area (if `ih_protect_tlv_size != 0`) is hashed and signed; the unprotected area
//! holds the hash, key hash and signature. No padding anywhere.

use super::ImageError;

/// `IMAGE_TLV_INFO_MAGIC`: unprotected TLV area.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// `IMAGE_TLV_PROT_INFO_MAGIC`: protected TLV area.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// Size of a TLV info header and of a TLV entry header.
pub const TLV_HEADER_SIZE: usize = 4;

/// A TLV type (`IMAGE_TLV_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlvKind(pub u16);

impl TlvKind {
    /// SHA-256 of the signing public key (SubjectPublicKeyInfo DER).
    pub const KEYHASH: Self = Self(0x01);
    /// The public key itself (`--public-key-format full`).
    pub const PUBKEY: Self = Self(0x02);
    /// SHA-256 of the image.
    pub const SHA256: Self = Self(0x10);
    /// SHA-384 of the image.
    pub const SHA384: Self = Self(0x11);
    /// SHA-512 of the image.
    pub const SHA512: Self = Self(0x12);
    /// RSA-2048 PSS signature.
    pub const RSA2048_PSS: Self = Self(0x20);
    /// ECDSA P-224 (obsolete).
    pub const ECDSA224: Self = Self(0x21);
    /// ECDSA P-256/P-384 signature (DER).
    pub const ECDSA_SIG: Self = Self(0x22);
    /// RSA-3072 PSS signature.
    pub const RSA3072_PSS: Self = Self(0x23);
    /// Ed25519 signature.
    pub const ED25519: Self = Self(0x24);
    /// Pure signature marker.
    pub const SIG_PURE: Self = Self(0x25);
    /// Encrypted with RSA-2048 OAEP.
    pub const ENC_RSA2048: Self = Self(0x30);
    /// Encrypted with AES key wrap.
    pub const ENC_KW: Self = Self(0x31);
    /// Encrypted with ECIES P-256.
    pub const ENC_EC256: Self = Self(0x32);
    /// Encrypted with ECIES X25519.
    pub const ENC_X25519: Self = Self(0x33);
    /// Encrypted with ECIES X25519 / SHA-512.
    pub const ENC_X25519_SHA512: Self = Self(0x34);
    /// Dependency on another image.
    pub const DEPENDENCY: Self = Self(0x40);
    /// Security counter (u32).
    pub const SEC_CNT: Self = Self(0x50);
    /// Boot record (CBOR).
    pub const BOOT_RECORD: Self = Self(0x60);
    /// Decompressed size.
    pub const DECOMP_SIZE: Self = Self(0x70);
    /// Decompressed image hash.
    pub const DECOMP_SHA: Self = Self(0x71);
    /// Decompressed image signature.
    pub const DECOMP_SIGNATURE: Self = Self(0x72);
    /// Compressed/decrypted size.
    pub const COMP_DEC_SIZE: Self = Self(0x73);
    /// Vendor UUID.
    pub const UUID_VID: Self = Self(0x74);
    /// Class UUID.
    pub const UUID_CID: Self = Self(0x75);

    const NAMES: [(Self, &'static str); 26] = [
        (Self::KEYHASH, "KEYHASH"),
        (Self::PUBKEY, "PUBKEY"),
        (Self::SHA256, "SHA256"),
        (Self::SHA384, "SHA384"),
        (Self::SHA512, "SHA512"),
        (Self::RSA2048_PSS, "RSA2048"),
        (Self::ECDSA224, "ECDSA224"),
        (Self::ECDSA_SIG, "ECDSASIG"),
        (Self::RSA3072_PSS, "RSA3072"),
        (Self::ED25519, "ED25519"),
        (Self::SIG_PURE, "SIG_PURE"),
        (Self::ENC_RSA2048, "ENCRSA2048"),
        (Self::ENC_KW, "ENCKW"),
        (Self::ENC_EC256, "ENCEC256"),
        (Self::ENC_X25519, "ENCX25519"),
        (Self::ENC_X25519_SHA512, "ENCX25519_SHA512"),
        (Self::DEPENDENCY, "DEPENDENCY"),
        (Self::SEC_CNT, "SEC_CNT"),
        (Self::BOOT_RECORD, "BOOT_RECORD"),
        (Self::DECOMP_SIZE, "DECOMP_SIZE"),
        (Self::DECOMP_SHA, "DECOMP_SHA"),
        (Self::DECOMP_SIGNATURE, "DECOMP_SIGNATURE"),
        (Self::COMP_DEC_SIZE, "COMP_DEC_SIZE"),
        (Self::UUID_VID, "UUID_VID"),
        (Self::UUID_CID, "UUID_CID"),
        (Self(0xffff), "ANY"),
    ];

    /// imgtool's name for a known type, `None` for custom/vendor types.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
    }
}

/// Encodes a TLV info header (`struct image_tlv_info`: `u16 it_magic`, `u16 it_tlv_tot`).
#[doc(alias = "image_tlv_info")]
#[must_use]
pub fn encode_info(magic: u16, tlv_tot: u16) -> [u8; 4] {
    let m = magic.to_le_bytes();
    let t = tlv_tot.to_le_bytes();
    [m[0], m[1], t[0], t[1]]
}

/// Encodes a TLV entry header.
#[must_use]
pub fn encode_entry_header(kind: TlvKind, len: u16) -> [u8; 4] {
    encode_info(kind.0, len)
}

/// Bytes a TLV area with entries of these value lengths occupies (info header included).
#[must_use]
pub fn area_len(value_lens: impl IntoIterator<Item = usize>) -> usize {
    value_lens
        .into_iter()
        .fold(TLV_HEADER_SIZE, |acc, l| acc + TLV_HEADER_SIZE + l)
}

/// Writes a TLV area into a caller-provided buffer, without allocating.
///
/// ```
/// use ota_core::image::tlv::{TlvWriter, TlvKind, TLV_INFO_MAGIC};
/// let mut buf = [0u8; 40];
/// let mut w = TlvWriter::new(&mut buf, TLV_INFO_MAGIC).unwrap();
/// w.push(TlvKind::SHA256, &[0xab; 32]).unwrap();
/// let len = w.finish();
/// assert_eq!(len, 40);
/// assert_eq!(&buf[..4], &[0x07, 0x69, 40, 0]);
/// ```
#[derive(Debug)]
pub struct TlvWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TlvWriter<'a> {
    /// Starts an area with info magic `magic` ([`TLV_INFO_MAGIC`] or [`TLV_PROT_INFO_MAGIC`]).
    ///
    /// # Errors
    /// [`ImageError::BufferTooSmall`] when `buf` cannot hold the info header.
    pub fn new(buf: &'a mut [u8], magic: u16) -> Result<Self, ImageError> {
        let info = buf
            .get_mut(..TLV_HEADER_SIZE)
            .ok_or(ImageError::BufferTooSmall)?;
        info.copy_from_slice(&encode_info(magic, TLV_HEADER_SIZE as u16));
        Ok(Self {
            buf,
            len: TLV_HEADER_SIZE,
        })
    }

    /// Appends one entry.
    ///
    /// # Errors
    /// [`ImageError::BufferTooSmall`], or [`ImageError::TlvAreaTooLarge`] when the area would
    /// exceed the 65535 bytes its `u16` total can describe.
    pub fn push(&mut self, kind: TlvKind, value: &[u8]) -> Result<(), ImageError> {
        let end = self.len + TLV_HEADER_SIZE + value.len();
        if end > usize::from(u16::MAX) {
            return Err(ImageError::TlvAreaTooLarge);
        }
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(ImageError::BufferTooSmall)?;
        // value.len() < end ≤ u16::MAX
        dst[..TLV_HEADER_SIZE].copy_from_slice(&encode_entry_header(kind, value.len() as u16));
        dst[TLV_HEADER_SIZE..].copy_from_slice(value);
        self.len = end;
        Ok(())
    }

    /// Writes the area's total size into the info header and returns it.
    #[must_use]
    pub fn finish(self) -> usize {
        // len ≤ u16::MAX, checked in push.
        self.buf[2..4].copy_from_slice(&(self.len as u16).to_le_bytes());
        self.len
    }
}

/// One TLV entry borrowed from an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Its type.
    pub kind: TlvKind,
    /// Absolute offset of the entry header in the image.
    pub offset: u32,
    /// Its value.
    pub value: &'a [u8],
    /// Whether it sits in the protected (hashed) area.
    pub protected: bool,
}

/// A located TLV area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvArea<'a> {
    /// Absolute offset of its info header.
    pub offset: u32,
    /// Whether this is the protected area.
    pub protected: bool,
    /// The whole area including the info header (`it_tlv_tot` bytes).
    pub bytes: &'a [u8],
}

impl<'a> TlvArea<'a> {
    /// Reads the area whose info header starts at `offset` in `image`, expecting `magic`.
    ///
    /// # Errors
    /// Truncation, a wrong magic or a `tlv_tot` smaller than the info header.
    pub fn locate(image: &'a [u8], offset: u64, protected: bool) -> Result<Self, ImageError> {
        let magic = if protected {
            TLV_PROT_INFO_MAGIC
        } else {
            TLV_INFO_MAGIC
        };
        let off = usize::try_from(offset).map_err(|_| truncated(offset + 4, image.len()))?;
        let info = image
            .get(off..off.saturating_add(TLV_HEADER_SIZE))
            .ok_or_else(|| truncated(offset + 4, image.len()))?;
        let found = u16::from_le_bytes([info[0], info[1]]);
        let tot = u16::from_le_bytes([info[2], info[3]]);
        let off32 = u32::try_from(offset).map_err(|_| truncated(offset + 4, image.len()))?;
        if found != magic {
            return Err(ImageError::BadTlvMagic {
                offset: off32,
                found,
            });
        }
        if usize::from(tot) < TLV_HEADER_SIZE {
            return Err(ImageError::TlvAreaTooSmall(off32));
        }
        let bytes = image
            .get(off..off + usize::from(tot))
            .ok_or_else(|| truncated(offset + u64::from(tot), image.len()))?;
        Ok(Self {
            offset: off32,
            protected,
            bytes,
        })
    }

    /// Iterates the entries of this area.
    #[must_use]
    pub fn iter(&self) -> TlvIter<'a> {
        TlvIter {
            area: *self,
            pos: TLV_HEADER_SIZE,
            failed: false,
        }
    }
}

fn truncated(needed: u64, available: usize) -> ImageError {
    ImageError::Truncated {
        needed,
        available: available as u64,
    }
}

/// Iterator over the entries of a [`TlvArea`]; yields an error once and stops if an entry
/// runs past the end of the area.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    area: TlvArea<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.area.bytes.len() {
            return None;
        }
        let entry_off = self.area.offset.saturating_add(self.pos as u32);
        let Some(h) = self.area.bytes.get(self.pos..self.pos + TLV_HEADER_SIZE) else {
            self.failed = true;
            return Some(Err(ImageError::TlvOverrun(entry_off)));
        };
        let kind = TlvKind(u16::from_le_bytes([h[0], h[1]]));
        let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
        let start = self.pos + TLV_HEADER_SIZE;
        let Some(value) = self.area.bytes.get(start..start + len) else {
            self.failed = true;
            return Some(Err(ImageError::TlvOverrun(entry_off)));
        };
        self.pos = start + len;
        Some(Ok(Tlv {
            kind,
            offset: entry_off,
            value,
            protected: self.area.protected,
        }))
    }
}
