//! The image hash: SHA-256 (the `SHA256` TLV, 0x10) or SHA-384 (the `SHA384` TLV, 0x11).
//!
//! imgtool picks the hash from the signing key: SHA-384 for ECDSA P-384 keys, SHA-256 for every
//! other key and for unsigned images. The same algorithm hashes the public key for `KEYHASH`
//! (MCUboot's `bootutil_find_key`), so a P-384 image carries a 48-byte `KEYHASH`.

use sha2::{Digest, Sha256, Sha384};

use super::tlv::TlvKind;

/// The longest digest an image carries (SHA-384).
pub const MAX_HASH_LEN: usize = 48;

/// The hash algorithm of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256, TLV `SHA256` (0x10): every key type but P-384, and unsigned images.
    Sha256,
    /// SHA-384, TLV `SHA384` (0x11): ECDSA P-384 images.
    Sha384,
}

impl HashAlg {
    /// The TLV that holds the image hash.
    #[must_use]
    pub const fn tlv(self) -> TlvKind {
        match self {
            Self::Sha256 => TlvKind::SHA256,
            Self::Sha384 => TlvKind::SHA384,
        }
    }

    /// The digest length in bytes (32 or 48).
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    /// The algorithm a hash TLV stands for (`None` for any other TLV, and for `SHA512`).
    #[must_use]
    pub const fn from_tlv(kind: TlvKind) -> Option<Self> {
        match kind {
            TlvKind::SHA256 => Some(Self::Sha256),
            TlvKind::SHA384 => Some(Self::Sha384),
            _ => None,
        }
    }

    /// The digest of `data`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> ImageHash {
        let mut h = ImageHasher::new(self);
        h.update(data);
        h.finalize()
    }
}

/// A digest together with its algorithm.
///
/// Compares equal to a `[u8; 32]` when it is a SHA-256 digest with those bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageHash {
    alg: HashAlg,
    /// The digest in the first `alg.digest_len()` bytes, zeros after.
    bytes: [u8; MAX_HASH_LEN],
}

impl ImageHash {
    /// A SHA-256 digest.
    #[must_use]
    pub fn sha256(digest: [u8; 32]) -> Self {
        let mut bytes = [0u8; MAX_HASH_LEN];
        bytes[..32].copy_from_slice(&digest);
        Self {
            alg: HashAlg::Sha256,
            bytes,
        }
    }

    /// A digest of `alg` from its bytes (`None` if the length is not `alg.digest_len()`).
    #[must_use]
    pub fn from_bytes(alg: HashAlg, digest: &[u8]) -> Option<Self> {
        if digest.len() != alg.digest_len() {
            return None;
        }
        let mut bytes = [0u8; MAX_HASH_LEN];
        bytes[..digest.len()].copy_from_slice(digest);
        Some(Self { alg, bytes })
    }

    /// The algorithm.
    #[must_use]
    pub const fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes (32 or 48).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.alg.digest_len()]
    }
}

impl core::ops::Deref for ImageHash {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for ImageHash {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<[u8; 32]> for ImageHash {
    fn eq(&self, other: &[u8; 32]) -> bool {
        self.alg == HashAlg::Sha256 && self.as_bytes() == other
    }
}

impl PartialEq<[u8]> for ImageHash {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

/// An incremental hasher for either algorithm.
#[derive(Clone, Debug)]
pub struct ImageHasher(Inner);

#[derive(Clone, Debug)]
enum Inner {
    Sha256(Sha256),
    Sha384(Sha384),
}

impl ImageHasher {
    /// A new hasher.
    #[must_use]
    pub fn new(alg: HashAlg) -> Self {
        Self(match alg {
            HashAlg::Sha256 => Inner::Sha256(Sha256::new()),
            HashAlg::Sha384 => Inner::Sha384(Sha384::new()),
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Sha256(h) => h.update(data),
            Inner::Sha384(h) => h.update(data),
        }
    }

    /// The digest.
    #[must_use]
    pub fn finalize(self) -> ImageHash {
        match self.0 {
            Inner::Sha256(h) => ImageHash::sha256(h.finalize().into()),
            Inner::Sha384(h) => {
                let d = h.finalize();
                ImageHash::from_bytes(HashAlg::Sha384, &d).expect("48 bytes")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_their_lengths_and_compare_with_arrays() {
        let a = HashAlg::Sha256.digest(b"abc");
        assert_eq!(a.len(), 32);
        let arr: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(a, arr);
        let b = HashAlg::Sha384.digest(b"abc");
        assert_eq!(b.len(), 48);
        assert_eq!(b.as_bytes(), &Sha384::digest(b"abc")[..]);
        assert_ne!(b, arr);
        assert_eq!(HashAlg::from_tlv(TlvKind::SHA384), Some(HashAlg::Sha384));
        assert_eq!(HashAlg::from_tlv(TlvKind::SHA512), None);
    }
}
