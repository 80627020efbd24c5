//! MCUboot image format: what a signed image looks like in a slot, and how to check one.
//!
//! A slot holding an image (offsets from the slot start, see MCUboot `docs/design.md`,
//! "Image Format"):
//!
//! ```text
//! [0, H)                  ImageHeader (32 bytes) + header padding   ┐
//! [H, H + img_size)       payload (the application)                 │ hashed and signed
//! [P, P + prot_size)      protected TLV area (optional, 0x6908)     ┘
//! [U, U + tlv_tot)        unprotected TLV area (0x6907): SHA256, KEYHASH/PUBKEY, ECDSA_SIG
//! ...                     erased
//! [S - trailer, S)        trailer: swap status, swap_size, swap_info, copy_done, image_ok, magic
//! ```
//!
//! with `P = H + img_size` and `U = P + prot_size`.
//!
//! - [`header`]: the 32-byte [`ImageHeader`] and [`Version`].
//! - [`tlv`]: TLV types, area headers and a total (never panicking) iterator.
//! - [`trailer`]: [`TrailerLayout`] (offsets per write alignment), magic and flag decoding.
//! - [`hash`]: [`ImageHash`], the SHA-256 or SHA-384 digest an image carries.
//! - [`key`]: [`PublicKey`] of every [`KeyType`] MCUboot signs with, and its signature TLV.
//! - [`verify`]: hashing and [`verify::validate`] over any [`ImageRead`].
//! - `enc` (feature `enc`): encrypted images: the key-exchange TLVs, unwrapping the AES key
//!   with the device's private key, and a decrypting [`ImageRead`].
//!
//! Parsing is total: every function here returns an error for malformed input and never panics.

#[cfg(feature = "enc")]
pub mod enc;
pub mod hash;
pub mod header;
pub mod key;
mod parsed;
pub mod tlv;
pub mod trailer;
pub mod verify;

pub use hash::{HashAlg, ImageHash};
pub use header::{ImageFlags, ImageHeader, Version, VersionError, IMAGE_HEADER_SIZE, IMAGE_MAGIC};
pub use key::{KeyType, PublicKey};
pub use tlv::{Tlv, TlvArea, TlvIter, TlvKind, TlvWriter};
pub use trailer::{FlagState, MagicState, SwapType, TrailerLayout};
pub use verify::{ImageRead, ParsedImage, VerifiedImage, VerifyError};

/// Why bytes could not be read as an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer than 32 bytes: no header.
    TooShortForHeader,
    /// The first 4 bytes are not `IMAGE_MAGIC` (`0x96f3b83d`).
    BadMagic(u32),
    /// `ih_hdr_size` is smaller than the 32-byte header.
    HeaderSizeTooSmall(u16),
    /// Header + payload + TLVs run past the end of the data (needed, available).
    Truncated {
        /// Bytes the header and TLV areas say the image occupies.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A TLV area header has the wrong magic (offset, found magic).
    BadTlvMagic {
        /// Offset of the TLV info header.
        offset: u32,
        /// The magic found there.
        found: u16,
    },
    /// The protected TLV area's size disagrees with `ih_protect_tlv_size`.
    ProtectedSizeMismatch {
        /// `ih_protect_tlv_size` from the header.
        header: u16,
        /// `it_tlv_tot` of the protected TLV info.
        area: u16,
    },
    /// A TLV entry runs past the end of its area (offset of the entry).
    TlvOverrun(u32),
    /// A TLV area is smaller than its own 4-byte info header.
    TlvAreaTooSmall(u32),
    /// An output buffer is too small for what is being encoded.
    BufferTooSmall,
    /// A TLV area would be larger than the 65535 bytes its `u16` size field can hold.
    TlvAreaTooLarge,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShortForHeader => write!(f, "shorter than the 32-byte image header"),
            Self::BadMagic(m) => write!(
                f,
                "bad image magic {m:#010x} (expected {IMAGE_MAGIC:#010x})"
            ),
            Self::HeaderSizeTooSmall(h) => write!(f, "header size {h:#x} is smaller than 32 bytes"),
            Self::Truncated { needed, available } => {
                write!(
                    f,
                    "image is truncated: needs {needed} bytes, has {available}"
                )
            }
            Self::BadTlvMagic { offset, found } => {
                write!(f, "bad TLV area magic {found:#06x} at offset {offset:#x}")
            }
            Self::ProtectedSizeMismatch { header, area } => write!(
                f,
                "protected TLV area size {area:#x} does not match header's {header:#x}"
            ),
            Self::TlvOverrun(off) => write!(f, "TLV entry at offset {off:#x} runs past its area"),
            Self::TlvAreaTooSmall(off) => write!(f, "TLV area at offset {off:#x} is too small"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
            Self::TlvAreaTooLarge => f.write_str("TLV area larger than 65535 bytes"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ImageError {}

/// Rounds `v` up to a multiple of `align` (a power of two, or any non-zero value).
#[must_use]
pub const fn align_up(v: u32, align: u32) -> u32 {
    if align <= 1 {
        return v;
    }
    v.div_ceil(align) * align
}

/// Rounds `v` down to a multiple of `align`.
#[must_use]
pub const fn align_down(v: u32, align: u32) -> u32 {
    if align <= 1 {
        return v;
    }
    (v / align) * align
}
