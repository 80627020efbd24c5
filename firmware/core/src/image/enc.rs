//! Encrypted images (MCUboot's `MCUBOOT_ENC_IMAGES`, imgtool's `sign -E`), feature `enc`.
//!
//! An encrypted image differs from a plain one in three places:
//!
//! | where | what |
//! | --- | --- |
//! | header `ih_flags` | `ENCRYPTED_AES128` (0x4) |
//! | payload `[H, H + img_size)` | AES-128-CTR of the plaintext, zero-padded to a multiple of 16 bytes; the counter block is the payload offset / 16 as a 128-bit big-endian number (starting at 0) |
//! | unprotected TLVs | after the hash, key and signature TLVs: the key-exchange TLV below |
//!
//! The header, the protected TLVs and the hash stay as they are: the `SHA256`/`SHA384` TLV and
//! the signature are over the *plaintext* (header, padded plaintext payload, protected TLVs),
//! so the bootloader decrypts while it hashes the secondary slot, and the primary slot, which
//! holds the decrypted image with the flag still set, validates as a plain image.
//!
//! The key-exchange TLV carries the random AES key for one image, wrapped with ECIES:
//!
//! | scheme | TLV | value |
//! | --- | --- | --- |
//! | ECIES-P256 | `ENC_EC256` 0x32, 113 bytes | ephemeral public key (SEC1 uncompressed, 65) ‖ tag (32) ‖ wrapped key (16) |
//! | ECIES-X25519 | `ENC_X25519` 0x33, 80 bytes | ephemeral public key (32) ‖ tag (32) ‖ wrapped key (16) |
//!
//! Wrapping: `shared` = ECDH(ephemeral private, device public) (the x coordinate for P-256);
//! `okm` = HKDF-SHA256(salt: none, ikm: `shared`, info: `"MCUBoot_ECIES_v1"`, 48 bytes);
//! wrapped key = AES-128-CTR(key `okm[..16]`, counter 0) of the AES key; tag =
//! HMAC-SHA256(key `okm[16..]`) of the wrapped key. Unwrapping checks the tag first.
//!
//! The host ([`wrap_key`]) and the device ([`EncPrivateKey::unwrap`]) share these functions;
//! only the ECDH differs (the host's ephemeral key, the device's private key).

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::tlv::TlvKind;
use super::verify::ImageRead;
use super::ImageHeader;

/// Size of the AES-128 key an image is encrypted with.
pub const AES_KEY_LEN: usize = 16;
/// Size of the HMAC-SHA256 tag in the key-exchange TLV.
pub const TAG_LEN: usize = 32;
/// The HKDF `info` string of MCUboot's ECIES.
pub const HKDF_INFO: &[u8; 16] = b"MCUBoot_ECIES_v1";
/// The payload of an encrypted image is padded to a multiple of this (the AES block size).
pub const BLOCK: u32 = 16;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// A key-exchange scheme: how the AES key travels in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncScheme {
    /// ECIES over P-256 (`ENC_EC256`), MCUboot's `MCUBOOT_ENCRYPT_EC256`.
    EcP256,
    /// ECIES over X25519 (`ENC_X25519`), MCUboot's `MCUBOOT_ENCRYPT_X25519`.
    X25519,
}

impl EncScheme {
    /// Both schemes.
    pub const ALL: [Self; 2] = [Self::EcP256, Self::X25519];

    /// The TLV that carries the wrapped key.
    #[must_use]
    pub const fn tlv(self) -> TlvKind {
        match self {
            Self::EcP256 => TlvKind::ENC_EC256,
            Self::X25519 => TlvKind::ENC_X25519,
        }
    }

    /// The scheme a TLV stands for.
    #[must_use]
    pub const fn from_tlv(kind: TlvKind) -> Option<Self> {
        match kind {
            TlvKind::ENC_EC256 => Some(Self::EcP256),
            TlvKind::ENC_X25519 => Some(Self::X25519),
            _ => None,
        }
    }

    /// Length of the ephemeral public key at the start of the TLV.
    #[must_use]
    pub const fn pubkey_len(self) -> usize {
        match self {
            Self::EcP256 => 65,
            Self::X25519 => 32,
        }
    }

    /// Length of the TLV value (113 or 80).
    #[must_use]
    pub const fn tlv_len(self) -> usize {
        self.pubkey_len() + TAG_LEN + AES_KEY_LEN
    }

    /// Name for people ("ECIES-P256", "ECIES-X25519").
    #[must_use]
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::EcP256 => "ECIES-P256",
            Self::X25519 => "ECIES-X25519",
        }
    }

    /// `otactl keygen -t` name ("enc-ec256", "enc-x25519").
    #[must_use]
    pub const fn keygen_name(self) -> &'static str {
        match self {
            Self::EcP256 => "enc-ec256",
            Self::X25519 => "enc-x25519",
        }
    }
}

/// Why an image key could not be recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncError {
    /// The image has no key-exchange TLV of the key's scheme.
    NoKeyTlv,
    /// The key-exchange TLV has the wrong length (found).
    BadTlvLength(usize),
    /// The ephemeral public key in the TLV is not a valid point.
    BadEphemeralKey,
    /// The tag does not match: the image was encrypted for another key (or tampered with).
    WrongKey,
    /// Flags this decryptor does not handle (AES-256).
    Unsupported(u32),
}

impl core::fmt::Display for EncError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoKeyTlv => {
                f.write_str("the image carries no key-exchange TLV for this key's scheme")
            }
            Self::BadTlvLength(l) => write!(f, "the key-exchange TLV has {l} bytes"),
            Self::BadEphemeralKey => f.write_str("the key-exchange TLV's public key is not valid"),
            Self::WrongKey => f.write_str(
                "the image was encrypted for another key (the key-exchange tag does not match)",
            ),
            Self::Unsupported(fl) => write!(
                f,
                "encryption flags {fl:#x} are not supported (AES-128 only)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncError {}

/// The AES-128 key one image's payload is encrypted with.
#[derive(Clone)]
pub struct ImageKey([u8; AES_KEY_LEN]);

impl core::fmt::Debug for ImageKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ImageKey(..)")
    }
}

impl Drop for ImageKey {
    fn drop(&mut self) {
        use p256::elliptic_curve::zeroize::Zeroize;
        self.0.zeroize();
    }
}

impl ImageKey {
    /// A key from its bytes.
    #[must_use]
    pub const fn new(bytes: [u8; AES_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes (what MCUboot keeps in the trailer during a swap).
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; AES_KEY_LEN] {
        &self.0
    }

    /// Encrypts or decrypts (the same operation) `buf`, which sits at `payload_off` bytes from
    /// the start of the payload (any offset, any length).
    pub fn apply(&self, payload_off: u32, buf: &mut [u8]) {
        let mut c = Aes128Ctr::new(&self.0.into(), &[0u8; 16].into());
        c.seek(u64::from(payload_off));
        c.apply_keystream(buf);
    }
}

/// Derives the key-wrapping keys from an ECDH shared secret: (AES key, HMAC key).
fn derive(shared: &[u8; 32]) -> ([u8; AES_KEY_LEN], [u8; 32]) {
    let hk = hkdf::Hkdf::<Sha256>::new(None, shared);
    let mut okm = [0u8; AES_KEY_LEN + 32];
    hk.expand(HKDF_INFO, &mut okm)
        .expect("48 bytes is a valid HKDF-SHA256 length");
    let mut aes = [0u8; AES_KEY_LEN];
    let mut mac = [0u8; 32];
    aes.copy_from_slice(&okm[..AES_KEY_LEN]);
    mac.copy_from_slice(&okm[AES_KEY_LEN..]);
    use p256::elliptic_curve::zeroize::Zeroize;
    okm.zeroize();
    (aes, mac)
}

fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

/// Wraps `key` for the holder of the private key behind `shared` (the host side): returns
/// `(tag, wrapped key)`, the TLV's last 48 bytes.
#[must_use]
pub fn wrap_key(shared: &[u8; 32], key: &ImageKey) -> ([u8; TAG_LEN], [u8; AES_KEY_LEN]) {
    let (aes_key, mac_key) = derive(shared);
    let mut wrapped = key.0;
    ImageKey(aes_key).apply(0, &mut wrapped);
    let mut m = hmac(&mac_key);
    m.update(&wrapped);
    (m.finalize().into_bytes().into(), wrapped)
}

/// Unwraps the AES key from the TLV's tag and wrapped key, given the ECDH shared secret.
///
/// # Errors
/// [`EncError::WrongKey`] when the tag does not match (checked in constant time).
pub fn unwrap_key(
    shared: &[u8; 32],
    tag: &[u8],
    wrapped: &[u8; AES_KEY_LEN],
) -> Result<ImageKey, EncError> {
    let (aes_key, mac_key) = derive(shared);
    let mut m = hmac(&mac_key);
    m.update(wrapped);
    m.verify_slice(tag).map_err(|_| EncError::WrongKey)?;
    let mut key = *wrapped;
    ImageKey(aes_key).apply(0, &mut key);
    Ok(ImageKey(key))
}

/// A device's private decryption key (the bootloader's `enc_priv_key`).
#[derive(Clone)]
pub enum EncPrivateKey {
    /// ECIES-P256.
    EcP256(p256::SecretKey),
    /// ECIES-X25519.
    X25519(x25519_dalek::StaticSecret),
}

impl core::fmt::Debug for EncPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EncPrivateKey({})", self.scheme().display_name())
    }
}

impl EncPrivateKey {
    /// The key's scheme.
    #[must_use]
    pub const fn scheme(&self) -> EncScheme {
        match self {
            Self::EcP256(_) => EncScheme::EcP256,
            Self::X25519(_) => EncScheme::X25519,
        }
    }

    /// The ECDH shared secret with an ephemeral public key (SEC1 uncompressed for P-256, 32
    /// bytes for X25519).
    ///
    /// # Errors
    /// [`EncError::BadEphemeralKey`] for a point that is not on the curve, or an X25519 key
    /// that gives an all-zero secret.
    pub fn shared_secret(&self, ephemeral: &[u8]) -> Result<[u8; 32], EncError> {
        match self {
            Self::EcP256(k) => {
                let pk = p256::PublicKey::from_sec1_bytes(ephemeral)
                    .map_err(|_| EncError::BadEphemeralKey)?;
                let s = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), pk.as_affine());
                let mut out = [0u8; 32];
                out.copy_from_slice(s.raw_secret_bytes());
                Ok(out)
            }
            Self::X25519(k) => {
                let pk: [u8; 32] = ephemeral
                    .try_into()
                    .map_err(|_| EncError::BadEphemeralKey)?;
                let s = k.diffie_hellman(&x25519_dalek::PublicKey::from(pk));
                if !s.was_contributory() {
                    return Err(EncError::BadEphemeralKey);
                }
                Ok(s.to_bytes())
            }
        }
    }

    /// Recovers the image key from a key-exchange TLV value of this key's scheme.
    ///
    /// # Errors
    /// [`EncError`]: wrong length, bad point, or a tag that does not match (another key).
    pub fn unwrap(&self, tlv: &[u8]) -> Result<ImageKey, EncError> {
        let scheme = self.scheme();
        if tlv.len() != scheme.tlv_len() {
            return Err(EncError::BadTlvLength(tlv.len()));
        }
        let (eph, rest) = tlv.split_at(scheme.pubkey_len());
        let (tag, wrapped) = rest.split_at(TAG_LEN);
        let mut w = [0u8; AES_KEY_LEN];
        w.copy_from_slice(wrapped);
        unwrap_key(&self.shared_secret(eph)?, tag, &w)
    }

    /// Reads the key-exchange TLV of the image at the start of `r` and recovers its key.
    ///
    /// # Errors
    /// `Err(Err(_))` for read errors, `Err(Ok(_))` for [`EncError`]s (no TLV, another key) and
    /// an image that does not parse.
    pub fn image_key<R: ImageRead>(
        &self,
        r: &mut R,
        header: &ImageHeader,
    ) -> Result<ImageKey, Result<EncError, R::Error>> {
        let flags = header.flags.0 & super::ImageFlags::ENCRYPTED_AES256;
        if flags != 0 {
            return Err(Ok(EncError::Unsupported(flags)));
        }
        let scheme = self.scheme();
        let mut val = [0u8; 113];
        let len = find_tlv(r, header, scheme.tlv(), &mut val)?.ok_or(Ok(EncError::NoKeyTlv))?;
        self.unwrap(&val[..len]).map_err(Ok)
    }
}

/// Finds the first unprotected TLV of `kind` and copies its value into `out`; `Ok(None)` if
/// there is none (or the TLV area does not parse), `Ok(Some(len))` with the value's length.
/// A value longer than `out` reads as [`EncError::BadTlvLength`].
fn find_tlv<R: ImageRead>(
    r: &mut R,
    header: &ImageHeader,
    kind: TlvKind,
    out: &mut [u8],
) -> Result<Option<usize>, Result<EncError, R::Error>> {
    let cap = u64::from(r.capacity());
    let u = header.unprotected_tlv_offset();
    if u + 4 > cap {
        return Ok(None);
    }
    let mut info = [0u8; 4];
    r.read(u as u32, &mut info).map_err(Err)?;
    if u16::from_le_bytes([info[0], info[1]]) != super::tlv::TLV_INFO_MAGIC {
        return Ok(None);
    }
    let end = (u + u64::from(u16::from_le_bytes([info[2], info[3]]))).min(cap);
    let mut pos = u + 4;
    while pos + 4 <= end {
        let mut th = [0u8; 4];
        r.read(pos as u32, &mut th).map_err(Err)?;
        let k = TlvKind(u16::from_le_bytes([th[0], th[1]]));
        let len = usize::from(u16::from_le_bytes([th[2], th[3]]));
        if pos + 4 + len as u64 > end {
            return Ok(None);
        }
        if k == kind {
            if len > out.len() {
                return Err(Ok(EncError::BadTlvLength(len)));
            }
            r.read(pos as u32 + 4, &mut out[..len]).map_err(Err)?;
            return Ok(Some(len));
        }
        pos += 4 + len as u64;
    }
    Ok(None)
}

/// An encrypted image seen through its key: reads of the payload `[H, H + img_size)` come back
/// decrypted, everything else as stored. What MCUboot's `bootutil_img_hash` and
/// `boot_copy_region` do for the secondary slot.
#[derive(Debug)]
pub struct Decrypting<'k, R> {
    inner: R,
    key: &'k ImageKey,
    start: u32,
    end: u32,
}

impl<'k, R: ImageRead> Decrypting<'k, R> {
    /// Wraps `inner`, whose image has `header`.
    pub fn new(inner: R, key: &'k ImageKey, header: &ImageHeader) -> Self {
        let start = u32::from(header.hdr_size);
        Self {
            inner,
            key,
            start,
            end: start.saturating_add(header.img_size),
        }
    }
}

/// Applies `key`'s keystream to the part of `buf` (read at slot offset `off`) that lies in the
/// payload `[start, end)`.
pub fn apply_to_payload(key: &ImageKey, start: u32, end: u32, off: u32, buf: &mut [u8]) {
    let buf_end = off.saturating_add(buf.len() as u32);
    let from = off.max(start);
    let to = buf_end.min(end);
    if from < to {
        let a = (from - off) as usize;
        let b = (to - off) as usize;
        key.apply(from - start, &mut buf[a..b]);
    }
}

impl<R: ImageRead> ImageRead for Decrypting<'_, R> {
    type Error = R::Error;

    fn capacity(&self) -> u32 {
        self.inner.capacity()
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), R::Error> {
        self.inner.read(offset, buf)?;
        apply_to_payload(self.key, self.start, self.end, offset, buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystream_at_any_offset_equals_the_whole_stream() {
        let key = ImageKey::new([7; 16]);
        let mut whole = [0u8; 100];
        key.apply(0, &mut whole);
        for off in [0usize, 1, 15, 16, 17, 40] {
            let mut part = [0u8; 30];
            key.apply(off as u32, &mut part);
            assert_eq!(part[..], whole[off..off + 30], "offset {off}");
        }
    }

    #[test]
    fn wrap_then_unwrap_returns_the_key_and_another_secret_is_refused() {
        let key = ImageKey::new(*b"0123456789abcdef");
        let (tag, wrapped) = wrap_key(&[1; 32], &key);
        assert_eq!(unwrap_key(&[1; 32], &tag, &wrapped).unwrap().0, key.0);
        assert_eq!(
            unwrap_key(&[2; 32], &tag, &wrapped).unwrap_err(),
            EncError::WrongKey
        );
    }

    #[test]
    fn decrypting_reader_touches_only_the_payload() {
        let header = ImageHeader {
            hdr_size: 32,
            img_size: 32,
            ..ImageHeader::default()
        };
        let key = ImageKey::new([3; 16]);
        let plain = [0xaa_u8; 80];
        let mut stored = plain;
        key.apply(0, &mut stored[32..64]);
        let mut r = Decrypting::new(&stored[..], &key, &header);
        for (off, len) in [(0, 80), (10, 30), (40, 5), (60, 20)] {
            let mut buf = [0u8; 80];
            r.read(off, &mut buf[..len]).unwrap();
            assert_eq!(buf[..len], plain[off as usize..off as usize + len]);
        }
    }
}
