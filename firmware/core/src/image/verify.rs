//! Image validation: SHA-256 or SHA-384 over the hashed region, key selection by KEYHASH (or
//! PUBKEY), and signature verification (ECDSA P-256/P-384, Ed25519, RSA-PSS; see [`PublicKey`]),
//! with public keys only.
//!
//! This mirrors MCUboot's `bootutil_img_validate`:
//!
//! 1. hash bytes `[0, U)`: header (with padding), payload and the whole protected TLV area;
//!    with the algorithm of the first hash TLV (`SHA256` or `SHA384`);
//! 2. walk the unprotected TLVs: the hash TLV must have the digest's length and equal it;
//!    `KEYHASH` selects the key whose bytes hash to it (`PUBKEY` selects the key equal to it);
//!    the following signature TLV of that key's type (`ECDSA_SIG`, `ED25519`, `RSA2048_PSS`,
//!    `RSA3072_PSS`) is verified with that key over the digest;
//! 3. valid iff the hash matched and, when keys are given, one signature verified.
//!
//! [`validate`] reads through [`ImageRead`], so the bootloader runs it directly on flash with a
//! 512-byte buffer and no heap; the host runs it on a byte slice.

use super::hash::{HashAlg, ImageHash, ImageHasher};
use super::header::{ImageFlags, ImageHeader, IMAGE_HEADER_SIZE};
use super::tlv::{TlvKind, TLV_HEADER_SIZE, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use super::ImageError;

pub use super::key::{
    signature_from_der, KeyBytes, KeyError, KeyType, PublicKey, ED25519_SPKI_PREFIX, MAX_KEY_BYTES,
    P256_SPKI_LEN, P256_SPKI_PREFIX, P384_SPKI_PREFIX,
};

/// Largest signature TLV value read: an RSA-3072 signature (ECDSA DER signatures are at most
/// 104 bytes, Ed25519 64).
pub const MAX_SIG_LEN: usize = 384;

/// Random-access reads of an image, from a byte slice or from a flash slot.
pub trait ImageRead {
    /// The read error.
    type Error;
    /// Bytes available (slot size or slice length).
    fn capacity(&self) -> u32;
    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// Whatever the underlying storage reports.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// A read past the end of a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

impl ImageRead for &[u8] {
    type Error = OutOfBounds;

    fn capacity(&self) -> u32 {
        u32::try_from(self.len()).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let start = offset as usize;
        let src = self
            .get(start..start.saturating_add(buf.len()))
            .ok_or(OutOfBounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Why an image failed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyError<E> {
    /// Reading the storage failed.
    Read(E),
    /// The header or TLV structure is malformed.
    Format(ImageError),
    /// The image (up to the end of its TLVs) does not fit in the usable size (end, limit).
    TooLarge {
        /// End of the image's TLV area.
        end: u64,
        /// The usable size.
        limit: u32,
    },
    /// `IMAGE_F_NON_BOOTABLE`, encryption or compression flags that this validator does not support.
    UnsupportedFlags(u32),
    /// No SHA256 (or SHA384) TLV.
    NoHash,
    /// The hash TLV is not 32 (SHA256) or 48 (SHA384) bytes.
    BadHashLength(u16),
    /// The computed hash differs from the SHA256 TLV.
    HashMismatch,
    /// Keys were given but the image carries no signature.
    Unsigned,
    /// The image's KEYHASH/PUBKEY matches none of the given keys.
    UnknownKey,
    /// The signature does not verify with the selected key (or is not valid DER).
    BadSignature,
    /// The payload is encrypted and this reader cannot decrypt it: no decryption key, a key
    /// exchange for another key (or scheme), or an upgrade mode that does not decrypt.
    Encrypted,
}

impl<E: core::fmt::Debug> core::fmt::Display for VerifyError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Read(e) => write!(f, "read error: {e:?}"),
            Self::Format(e) => write!(f, "malformed image: {e}"),
            Self::TooLarge { end, limit } => {
                write!(
                    f,
                    "image ends at {end:#x}, past the usable slot size {limit:#x}"
                )
            }
            Self::UnsupportedFlags(fl) => write!(f, "unsupported image flags {fl:#x}"),
            Self::NoHash => f.write_str("no SHA256 or SHA384 TLV"),
            Self::BadHashLength(l) => write!(f, "hash TLV has length {l}, expected 32 or 48"),
            Self::HashMismatch => {
                f.write_str("hash mismatch: header, payload or protected TLVs were modified")
            }
            Self::Unsigned => f.write_str("image is not signed (no signature TLV)"),
            Self::UnknownKey => {
                f.write_str("image was signed with a different key (key hash does not match)")
            }
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::Encrypted => f.write_str(
                "the payload is encrypted for a key this device does not have (or it cannot decrypt here)",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl<E: core::fmt::Debug> std::error::Error for VerifyError<E> {}

impl<E> From<ImageError> for VerifyError<E> {
    fn from(e: ImageError) -> Self {
        Self::Format(e)
    }
}

/// What [`validate`] learned about a valid image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedImage {
    /// The header.
    pub header: ImageHeader,
    /// SHA-256 (or SHA-384) of `[0, U)`.
    pub hash: ImageHash,
    /// Index into the key list of the key that verified the signature (`None` if no keys given).
    pub key_index: Option<usize>,
    /// The protected SEC_CNT value, if present.
    pub security_counter: Option<u32>,
    /// End of the unprotected TLV area: the image's total size.
    pub end: u32,
}

/// Flags that make an image unbootable here. `ENCRYPTED_AES128` is not among them: the hash is
/// over the plaintext, so a decrypted image (the primary slot) validates as it is, and an
/// encrypted one validates when read through its key (`enc::Decrypting`); read as stored it
/// fails the hash, as in MCUboot.
const UNSUPPORTED_FLAGS: u32 = ImageFlags::NON_BOOTABLE
    | ImageFlags::ENCRYPTED_AES256
    | ImageFlags::PIC
    | ImageFlags::COMPRESSED_LZMA1
    | ImageFlags::COMPRESSED_LZMA2
    | ImageFlags::COMPRESSED_ARM_THUMB;

fn read_info<R: ImageRead>(r: &mut R, off: u64, magic: u16) -> Result<u16, VerifyError<R::Error>> {
    let cap = u64::from(r.capacity());
    if off + TLV_HEADER_SIZE as u64 > cap {
        return Err(ImageError::Truncated {
            needed: off + 4,
            available: cap,
        }
        .into());
    }
    let mut info = [0u8; 4];
    r.read(off as u32, &mut info).map_err(VerifyError::Read)?;
    let found = u16::from_le_bytes([info[0], info[1]]);
    let tot = u16::from_le_bytes([info[2], info[3]]);
    if found != magic {
        return Err(ImageError::BadTlvMagic {
            offset: off as u32,
            found,
        }
        .into());
    }
    if usize::from(tot) < TLV_HEADER_SIZE {
        return Err(ImageError::TlvAreaTooSmall(off as u32).into());
    }
    Ok(tot)
}

/// Hashes `[0, len)` of `r` with `alg`.
///
/// # Errors
/// Storage read errors.
pub fn hash_region<R: ImageRead>(r: &mut R, len: u32, alg: HashAlg) -> Result<ImageHash, R::Error> {
    let mut hasher = ImageHasher::new(alg);
    let mut buf = [0u8; 512];
    let mut off = 0u32;
    while off < len {
        let n = (len - off).min(buf.len() as u32) as usize;
        r.read(off, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        off += n as u32;
    }
    Ok(hasher.finalize())
}

/// Validates the image at the start of `r`, as MCUboot does before a swap or a boot.
///
/// `limit` is the usable size (slot size minus trailer); pass `r.capacity()` for none.
/// With an empty `keys`, only the hash is checked (an unsigned image, like `imgtool verify`
/// without `-k`).
///
/// # Errors
/// The first [`VerifyError`] found, in MCUboot's order: format, size, hash, key, signature.
pub fn validate<R: ImageRead>(
    r: &mut R,
    limit: u32,
    keys: &[PublicKey],
) -> Result<VerifiedImage, VerifyError<R::Error>> {
    let (header, u, end) = read_layout(r, limit)?;
    // From here on every offset is < end ≤ capacity ≤ u32::MAX.
    let alg = hash_alg(r, u, end)?;
    let hash = hash_region(r, u, alg).map_err(VerifyError::Read)?;
    check_tlvs(r, header, u, end, hash, keys)
}

/// The TLV checks of [`validate`] once the image's `hash` is known.
fn check_tlvs<R: ImageRead>(
    r: &mut R,
    header: ImageHeader,
    u: u32,
    end: u32,
    hash: ImageHash,
    keys: &[PublicKey],
) -> Result<VerifiedImage, VerifyError<R::Error>> {
    let security_counter = find_sec_cnt(r, &header)?;
    let key_index = check_unprotected(r, u, end, &hash, keys)?;
    Ok(VerifiedImage {
        header,
        hash,
        key_index,
        security_counter,
        end,
    })
}

/// What can be checked of an image whose payload is encrypted (`ENCRYPTED_AES128`) without its
/// decryption key: its structure and size, and, with `keys`, that its hash TLV (the plaintext's
/// digest, as recorded) is signed by one of them. Whether the payload matches that digest only
/// the holder of the decryption key can tell (the bootloader, through `enc::Decrypting`).
///
/// # Errors
/// As [`validate`], except that the payload is never hashed; [`VerifyError::HashMismatch`] for
/// an image without the encryption flag (its hash can be checked: use [`validate`]).
pub fn validate_encrypted_as_stored<R: ImageRead>(
    r: &mut R,
    limit: u32,
    keys: &[PublicKey],
) -> Result<VerifiedImage, VerifyError<R::Error>> {
    let (header, u, end) = read_layout(r, limit)?;
    if !header.flags.contains(ImageFlags::ENCRYPTED_AES128) {
        return Err(VerifyError::HashMismatch);
    }
    let alg = hash_alg(r, u, end)?;
    let hash = recorded_hash(r, u, end, alg)?;
    check_tlvs(r, header, u, end, hash, keys)
}

/// The value of the first hash TLV of `alg`.
fn recorded_hash<R: ImageRead>(
    r: &mut R,
    u: u32,
    end: u32,
    alg: HashAlg,
) -> Result<ImageHash, VerifyError<R::Error>> {
    let mut pos = u + TLV_HEADER_SIZE as u32;
    while pos < end {
        let (kind, len) = read_tlv_header(r, pos, end)?;
        if kind == alg.tlv() {
            let mut val = [0u8; super::hash::MAX_HASH_LEN];
            let l = usize::from(len);
            if l != alg.digest_len() {
                return Err(VerifyError::BadHashLength(len));
            }
            r.read(pos + 4, &mut val[..l]).map_err(VerifyError::Read)?;
            return ImageHash::from_bytes(alg, &val[..l]).ok_or(VerifyError::BadHashLength(len));
        }
        pos += 4 + u32::from(len);
    }
    Err(VerifyError::NoHash)
}

/// Reads the header and both TLV infos; returns the header, `U` and the image end.
fn read_layout<R: ImageRead>(
    r: &mut R,
    limit: u32,
) -> Result<(ImageHeader, u32, u32), VerifyError<R::Error>> {
    let cap = u64::from(r.capacity());
    let mut hb = [0u8; IMAGE_HEADER_SIZE];
    if cap < IMAGE_HEADER_SIZE as u64 {
        return Err(ImageError::TooShortForHeader.into());
    }
    r.read(0, &mut hb).map_err(VerifyError::Read)?;
    let header = ImageHeader::parse(&hb)?;
    if header.flags.0 & UNSUPPORTED_FLAGS != 0 {
        return Err(VerifyError::UnsupportedFlags(header.flags.0));
    }
    let u = header.unprotected_tlv_offset();
    if header.protect_tlv_size != 0 {
        let tot = read_info(r, header.tlv_offset(), TLV_PROT_INFO_MAGIC)?;
        if tot != header.protect_tlv_size {
            return Err(ImageError::ProtectedSizeMismatch {
                header: header.protect_tlv_size,
                area: tot,
            }
            .into());
        }
    }
    let tot = read_info(r, u, TLV_INFO_MAGIC)?;
    let end = u + u64::from(tot);
    if end > cap {
        return Err(ImageError::Truncated {
            needed: end,
            available: cap,
        }
        .into());
    }
    if end > u64::from(limit) {
        return Err(VerifyError::TooLarge { end, limit });
    }
    // u < end ≤ cap ≤ u32::MAX
    Ok((header, u as u32, end as u32))
}

/// The algorithm of the first hash TLV (`SHA256` or `SHA384`) among the unprotected TLVs.
fn hash_alg<R: ImageRead>(r: &mut R, u: u32, end: u32) -> Result<HashAlg, VerifyError<R::Error>> {
    let mut pos = u + TLV_HEADER_SIZE as u32;
    while pos < end {
        let (kind, len) = read_tlv_header(r, pos, end)?;
        if let Some(alg) = HashAlg::from_tlv(kind) {
            return Ok(alg);
        }
        pos += 4 + u32::from(len);
    }
    Err(VerifyError::NoHash)
}

/// Whether `kind` is one of the signature TLVs.
const fn is_signature(kind: TlvKind) -> bool {
    matches!(
        kind,
        TlvKind::ECDSA_SIG | TlvKind::ED25519 | TlvKind::RSA2048_PSS | TlvKind::RSA3072_PSS
    )
}

/// Walks the unprotected TLVs `[u + 4, end)`: the hash must match; with `keys`, a
/// KEYHASH/PUBKEY must select one of them and the following signature TLV of that key's type
/// must verify. Returns the index of the key that verified.
fn check_unprotected<R: ImageRead>(
    r: &mut R,
    u: u32,
    end: u32,
    hash: &ImageHash,
    keys: &[PublicKey],
) -> Result<Option<usize>, VerifyError<R::Error>> {
    let mut hash_ok = false;
    let mut key: Option<usize> = None;
    let mut key_tlv_seen = false;
    let mut sig_ok = false;
    let mut sig_seen = false;
    let mut pos = u + TLV_HEADER_SIZE as u32;
    let mut val = [0u8; MAX_KEY_BYTES];
    while pos < end {
        let (kind, len) = read_tlv_header(r, pos, end)?;
        let vpos = pos + 4;
        let l = usize::from(len);
        if kind == hash.alg().tlv() {
            if l != hash.len() {
                return Err(VerifyError::BadHashLength(len));
            }
            r.read(vpos, &mut val[..l]).map_err(VerifyError::Read)?;
            if val[..l] != hash[..] {
                return Err(VerifyError::HashMismatch);
            }
            hash_ok = true;
        } else if kind == TlvKind::KEYHASH && l == hash.len() {
            key_tlv_seen = true;
            r.read(vpos, &mut val[..l]).map_err(VerifyError::Read)?;
            key = keys
                .iter()
                .position(|k| k.key_type().hash_alg() == hash.alg() && k.keyhash_tlv() == val[..l]);
        } else if kind == TlvKind::PUBKEY && l <= MAX_KEY_BYTES {
            key_tlv_seen = true;
            r.read(vpos, &mut val[..l]).map_err(VerifyError::Read)?;
            key = keys.iter().position(|k| *k.public_bytes() == val[..l]);
        } else if is_signature(kind) {
            sig_seen = true;
            if !hash_ok {
                return Err(VerifyError::NoHash);
            }
            if let Some(k) = key.filter(|k| keys[*k].key_type().sig_tlv() == kind) {
                verify_sig_tlv(r, vpos, l, &keys[k], hash)?;
                sig_ok = true;
            }
        }
        pos = vpos + u32::from(len);
    }
    if !hash_ok {
        return Err(VerifyError::NoHash);
    }
    if keys.is_empty() {
        return Ok(None);
    }
    if !sig_ok {
        return Err(if !sig_seen {
            VerifyError::Unsigned
        } else if key_tlv_seen && key.is_none() {
            VerifyError::UnknownKey
        } else {
            VerifyError::BadSignature
        });
    }
    Ok(key)
}

/// Reads the TLV entry header at `pos`, checking that header and value end by `end`.
fn read_tlv_header<R: ImageRead>(
    r: &mut R,
    pos: u32,
    end: u32,
) -> Result<(TlvKind, u16), VerifyError<R::Error>> {
    if u64::from(pos) + 4 > u64::from(end) {
        return Err(ImageError::TlvOverrun(pos).into());
    }
    let mut th = [0u8; 4];
    r.read(pos, &mut th).map_err(VerifyError::Read)?;
    let kind = TlvKind(u16::from_le_bytes([th[0], th[1]]));
    let len = u16::from_le_bytes([th[2], th[3]]);
    if u64::from(pos) + 4 + u64::from(len) > u64::from(end) {
        return Err(ImageError::TlvOverrun(pos).into());
    }
    Ok((kind, len))
}

fn verify_sig_tlv<R: ImageRead>(
    r: &mut R,
    vpos: u32,
    len: usize,
    key: &PublicKey,
    hash: &ImageHash,
) -> Result<(), VerifyError<R::Error>> {
    if len > MAX_SIG_LEN {
        return Err(VerifyError::BadSignature);
    }
    let mut sig = [0u8; MAX_SIG_LEN];
    r.read(vpos, &mut sig[..len]).map_err(VerifyError::Read)?;
    if key.verify(hash, &sig[..len]) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

fn find_sec_cnt<R: ImageRead>(
    r: &mut R,
    header: &ImageHeader,
) -> Result<Option<u32>, VerifyError<R::Error>> {
    if header.protect_tlv_size == 0 {
        return Ok(None);
    }
    // Only called after read_layout: the protected area lies within the image.
    let start = header.tlv_offset() as u32;
    let end = start + u32::from(header.protect_tlv_size);
    let mut pos = start + TLV_HEADER_SIZE as u32;
    while pos < end {
        let (kind, len) = read_tlv_header(r, pos, end)?;
        if kind == TlvKind::SEC_CNT && len == 4 {
            let mut v = [0u8; 4];
            r.read(pos + 4, &mut v).map_err(VerifyError::Read)?;
            return Ok(Some(u32::from_le_bytes(v)));
        }
        pos += 4 + u32::from(len);
    }
    Ok(None)
}

pub use super::parsed::ParsedImage;
