//! Public keys MCUboot verifies images with, and their signature TLVs.
//!
//! | key | feature | image hash | `KEYHASH` | signature TLV | signature |
//! | --- | --- | --- | --- | --- | --- |
//! | ECDSA P-256 | always | SHA-256 | SHA-256 of the SPKI | `ECDSA_SIG` 0x22 | DER `SEQUENCE { r, s }` over the digest |
//! | ECDSA P-384 | `p384` | SHA-384 | SHA-384 of the SPKI | `ECDSA_SIG` 0x22 | DER `SEQUENCE { r, s }` over the digest |
//! | Ed25519 | `ed25519` | SHA-256 | SHA-256 of the SPKI | `ED25519` 0x24 | 64 bytes, the 32-byte digest is the message |
//! | RSA-2048 | `rsa` | SHA-256 | SHA-256 of the PKCS#1 key | `RSA2048_PSS` 0x20 | PSS, SHA-256, MGF1-SHA-256, salt 32 |
//! | RSA-3072 | `rsa` | SHA-256 | SHA-256 of the PKCS#1 key | `RSA3072_PSS` 0x23 | as RSA-2048, 384 bytes |
//!
//! "The key's bytes" ([`PublicKey::public_bytes`]) are what imgtool embeds in the bootloader
//! (`getpub`) and what a `PUBKEY` TLV holds: the DER SubjectPublicKeyInfo for the elliptic-curve
//! keys, the PKCS#1 `RSAPublicKey` for RSA. Keys of a type whose feature is off are refused with
//! [`KeyError::Unsupported`]; the `rsa` feature needs a global allocator.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

use super::hash::{HashAlg, ImageHash};
use super::tlv::TlvKind;

/// DER prefix of a P-256 SubjectPublicKeyInfo (followed by the 65-byte uncompressed point).
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of a P-256 SubjectPublicKeyInfo in DER.
pub const P256_SPKI_LEN: usize = 91;
/// DER prefix of a P-384 SubjectPublicKeyInfo (followed by the 97-byte uncompressed point).
pub const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (followed by the 32-byte key).
pub const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER `AlgorithmIdentifier { rsaEncryption, NULL }`.
const RSA_ALGORITHM: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// DER `OID id-ecPublicKey`.
const EC_PUBLIC_KEY_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// Room for the longest key encoding: an RSA-3072 SubjectPublicKeyInfo with a 4-byte exponent.
pub const MAX_KEY_BYTES: usize = 424;
/// Largest RSA modulus MCUboot knows (3072 bits).
const MAX_RSA_BYTES: usize = 384;

/// The kinds of signing key MCUboot (and imgtool 2.5.0) support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 (`ecdsa-p256`).
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384 (`ecdsa-p384`).
    EcdsaP384,
    /// Ed25519 over the SHA-256 image digest (`ed25519`).
    Ed25519,
    /// RSA-2048, PSS with SHA-256 (`rsa-2048`).
    Rsa2048,
    /// RSA-3072, PSS with SHA-256 (`rsa-3072`).
    Rsa3072,
}

impl KeyType {
    /// Every type, in imgtool's `keygen -t` order.
    pub const ALL: [Self; 5] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Ed25519,
    ];

    /// The TLV the signature goes in.
    #[must_use]
    pub const fn sig_tlv(self) -> TlvKind {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => TlvKind::ECDSA_SIG,
            Self::Ed25519 => TlvKind::ED25519,
            Self::Rsa2048 => TlvKind::RSA2048_PSS,
            Self::Rsa3072 => TlvKind::RSA3072_PSS,
        }
    }

    /// The image hash an image signed with this key carries.
    #[must_use]
    pub const fn hash_alg(self) -> HashAlg {
        match self {
            Self::EcdsaP384 => HashAlg::Sha384,
            _ => HashAlg::Sha256,
        }
    }

    /// imgtool's name (`keygen -t`).
    #[must_use]
    pub const fn imgtool_name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
        }
    }

    /// A name for people ("ECDSA P-256", "RSA-3072", …).
    #[must_use]
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
            Self::Ed25519 => "Ed25519",
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
        }
    }

    /// imgtool's `shortname()`: the prefix of the C/Rust identifiers `getpub` writes.
    #[must_use]
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa",
            Self::EcdsaP384 => "ecdsap384",
            Self::Ed25519 => "ed25519",
            Self::Rsa2048 | Self::Rsa3072 => "rsa",
        }
    }
}

/// Why key bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not a DER key of a known shape, or a point/modulus that is not valid.
    Malformed,
    /// A key of a kind MCUboot does not sign with, or whose feature is not built in.
    Unsupported,
    /// An RSA key of another size than 2048 or 3072 bits (the modulus size in bits).
    RsaSize(usize),
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed => f.write_str("not a valid public key"),
            Self::Unsupported => f.write_str(
                "not a supported signing key (ECDSA P-256/P-384, Ed25519, RSA-2048/3072)",
            ),
            Self::RsaSize(bits) => write!(
                f,
                "an RSA key of {bits} bits; MCUboot verifies RSA-2048 and RSA-3072 only"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyError {}

/// Encoded key bytes (at most [`MAX_KEY_BYTES`]), used as a byte slice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyBytes {
    buf: [u8; MAX_KEY_BYTES],
    len: usize,
}

impl KeyBytes {
    const fn new() -> Self {
        Self {
            buf: [0; MAX_KEY_BYTES],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A DER tag and definite length.
    fn header(&mut self, tag: u8, len: usize) {
        match len {
            0..=0x7f => self.push(&[tag, len as u8]),
            0x80..=0xff => self.push(&[tag, 0x81, len as u8]),
            _ => self.push(&[tag, 0x82, (len >> 8) as u8, len as u8]),
        }
    }
}

impl core::ops::Deref for KeyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyBytes({} bytes)", self.len)
    }
}

/// Size of a DER header for a content of `len` bytes.
const fn header_len(len: usize) -> usize {
    match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        _ => 4,
    }
}

/// Reads one DER element at `pos`: its tag and content range.
fn der_element(der: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *der.get(pos)?;
    let first = *der.get(pos + 1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), pos + 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 2 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*der.get(pos + 2 + i)?);
        }
        (len, pos + 2 + n)
    };
    let end = start.checked_add(len)?;
    (end <= der.len()).then_some((tag, start, end))
}

/// An RSA public key kept as its modulus and exponent (so [`PublicKey`] stays `Copy`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct RsaKey {
    n: [u8; MAX_RSA_BYTES],
    n_len: usize,
    e: u32,
}

impl core::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaKey({} bits, e = {})", self.n_len * 8, self.e)
    }
}

impl RsaKey {
    fn modulus(&self) -> &[u8] {
        &self.n[..self.n_len]
    }

    /// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
    fn pkcs1(&self) -> KeyBytes {
        let e = self.e.to_be_bytes();
        let e = &e[e.iter().position(|b| *b != 0).unwrap_or(3)..];
        let n_int = self.n_len + 1; // the modulus' top bit is set: a leading zero
        let e_int = e.len() + usize::from(e[0] & 0x80 != 0);
        let body = header_len(n_int) + n_int + header_len(e_int) + e_int;
        let mut out = KeyBytes::new();
        out.header(0x30, body);
        out.header(0x02, n_int);
        out.push(&[0]);
        out.push(self.modulus());
        out.header(0x02, e_int);
        if e_int > e.len() {
            out.push(&[0]);
        }
        out.push(e);
        out
    }

    fn key_type(&self) -> KeyType {
        if self.n_len == 256 {
            KeyType::Rsa2048
        } else {
            KeyType::Rsa3072
        }
    }
}

/// A DER INTEGER's magnitude without leading zeros; `None` for negative or zero integers.
fn unsigned_integer(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first().is_none_or(|b| *b & 0x80 != 0) {
        return None;
    }
    let start = bytes.iter().position(|b| *b != 0)?;
    Some(&bytes[start..])
}

/// Parses a PKCS#1 `RSAPublicKey`.
fn parse_pkcs1(der: &[u8]) -> Result<RsaKey, KeyError> {
    let (tag, start, end) = der_element(der, 0).ok_or(KeyError::Malformed)?;
    if tag != 0x30 || end != der.len() {
        return Err(KeyError::Malformed);
    }
    let (t1, n0, n1) = der_element(der, start).ok_or(KeyError::Malformed)?;
    let (t2, e0, e1) = der_element(der, n1).ok_or(KeyError::Malformed)?;
    if t1 != 0x02 || t2 != 0x02 || e1 != end {
        return Err(KeyError::Malformed);
    }
    let n = unsigned_integer(&der[n0..n1]).ok_or(KeyError::Malformed)?;
    let e = unsigned_integer(&der[e0..e1]).ok_or(KeyError::Malformed)?;
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if bits != 2048 && bits != 3072 {
        return Err(KeyError::RsaSize(bits));
    }
    if e.len() > 4 {
        return Err(KeyError::Malformed);
    }
    let e = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if e < 3 || e % 2 == 0 {
        return Err(KeyError::Malformed);
    }
    let mut key = RsaKey {
        n: [0; MAX_RSA_BYTES],
        n_len: n.len(),
        e,
    };
    key.n[..n.len()].copy_from_slice(n);
    Ok(key)
}

// The RSA variant is the largest (400 bytes) on purpose: the key stays `Copy` and heap-free.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    P256(p256::ecdsa::VerifyingKey),
    #[cfg(feature = "p384")]
    P384(p384::ecdsa::VerifyingKey),
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    #[cfg_attr(not(feature = "rsa"), allow(dead_code))]
    Rsa(RsaKey),
}

/// A public key as MCUboot knows it: ECDSA P-256, and with their features ECDSA P-384, Ed25519
/// and RSA-2048/3072.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: Inner,
}

impl PublicKey {
    /// Wraps a P-256 verifying key.
    #[must_use]
    pub const fn from_verifying_key(key: p256::ecdsa::VerifyingKey) -> Self {
        Self {
            inner: Inner::P256(key),
        }
    }

    /// A P-256 key from a SEC1-encoded point (65-byte uncompressed or 33-byte compressed).
    ///
    /// # Errors
    /// [`KeyError::Malformed`] when the point is not on the curve.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map(Self::from_verifying_key)
            .map_err(|_| KeyError::Malformed)
    }

    /// Wraps a P-384 verifying key.
    #[cfg(feature = "p384")]
    #[must_use]
    pub const fn from_p384(key: p384::ecdsa::VerifyingKey) -> Self {
        Self {
            inner: Inner::P384(key),
        }
    }

    /// Wraps an Ed25519 verifying key.
    #[cfg(feature = "ed25519")]
    #[must_use]
    pub const fn from_ed25519(key: ed25519_dalek::VerifyingKey) -> Self {
        Self {
            inner: Inner::Ed25519(key),
        }
    }

    /// From a DER SubjectPublicKeyInfo of any supported type (`imgtool getpub -e raw` for the
    /// elliptic-curve keys, the body of a `PUBLIC KEY` PEM for all).
    ///
    /// # Errors
    /// [`KeyError`]: not a SubjectPublicKeyInfo, an unsupported algorithm, an invalid key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Some(point) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            return Self::from_sec1(point);
        }
        if let Some(_point) = der.strip_prefix(&P384_SPKI_PREFIX[..]) {
            #[cfg(feature = "p384")]
            return p384::ecdsa::VerifyingKey::from_sec1_bytes(_point)
                .map(Self::from_p384)
                .map_err(|_| KeyError::Malformed);
            #[cfg(not(feature = "p384"))]
            return Err(KeyError::Unsupported);
        }
        if let Some(_key) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            #[cfg(feature = "ed25519")]
            return <[u8; 32]>::try_from(_key)
                .ok()
                .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
                .map(Self::from_ed25519)
                .ok_or(KeyError::Malformed);
            #[cfg(not(feature = "ed25519"))]
            return Err(KeyError::Unsupported);
        }
        Self::from_other_spki(der)
    }

    /// A SubjectPublicKeyInfo that is not one of the fixed-prefix shapes: RSA, or a compressed
    /// or unknown key.
    fn from_other_spki(der: &[u8]) -> Result<Self, KeyError> {
        let (tag, start, end) = der_element(der, 0).ok_or(KeyError::Malformed)?;
        let (alg_tag, _, a1) = der_element(der, start).ok_or(KeyError::Malformed)?;
        let (bits_tag, b0, b1) = der_element(der, a1).ok_or(KeyError::Malformed)?;
        if tag != 0x30 || end != der.len() || alg_tag != 0x30 || bits_tag != 0x03 || b1 != end {
            return Err(KeyError::Malformed);
        }
        let alg = &der[start..a1];
        let bits = der.get(b0 + 1..b1).filter(|_| der[b0] == 0);
        let bits = bits.ok_or(KeyError::Malformed)?;
        if alg == RSA_ALGORITHM {
            return Self::from_pkcs1_der(bits);
        }
        if alg.get(2..11) == Some(&EC_PUBLIC_KEY_OID[..])
            && alg.ends_with(&P256_SPKI_PREFIX[13..23])
        {
            return Self::from_sec1(bits);
        }
        Err(KeyError::Unsupported)
    }

    /// From a PKCS#1 `RSAPublicKey` (`imgtool getpub -e raw` of an RSA key).
    ///
    /// # Errors
    /// [`KeyError`]: malformed, not 2048 or 3072 bits, or the `rsa` feature is off.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = parse_pkcs1(der)?;
        #[cfg(feature = "rsa")]
        {
            rsa_key(&key).ok_or(KeyError::Malformed)?;
            Ok(Self {
                inner: Inner::Rsa(key),
            })
        }
        #[cfg(not(feature = "rsa"))]
        {
            let _ = key;
            Err(KeyError::Unsupported)
        }
    }

    /// From the key's bytes as `imgtool getpub -e raw` writes them: a SubjectPublicKeyInfo, or
    /// a PKCS#1 `RSAPublicKey` for RSA.
    ///
    /// # Errors
    /// [`KeyError`] when it is neither.
    pub fn from_public_bytes(der: &[u8]) -> Result<Self, KeyError> {
        match Self::from_spki_der(der) {
            Err(KeyError::Malformed) => Self::from_pkcs1_der(der).map_err(|e| match e {
                KeyError::RsaSize(_) => e,
                _ => KeyError::Malformed,
            }),
            other => other,
        }
    }

    /// The key's type.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        match &self.inner {
            Inner::P256(_) => KeyType::EcdsaP256,
            #[cfg(feature = "p384")]
            Inner::P384(_) => KeyType::EcdsaP384,
            #[cfg(feature = "ed25519")]
            Inner::Ed25519(_) => KeyType::Ed25519,
            Inner::Rsa(k) => k.key_type(),
        }
    }

    /// The key's bytes as MCUboot holds them: the DER SubjectPublicKeyInfo (uncompressed point),
    /// or PKCS#1 for RSA. `PUBKEY` holds this, `getpub -e raw` prints it.
    #[must_use]
    pub fn public_bytes(&self) -> KeyBytes {
        match &self.inner {
            Inner::Rsa(k) => k.pkcs1(),
            _ => self.to_spki_der(),
        }
    }

    /// The DER SubjectPublicKeyInfo (what a `PUBLIC KEY` PEM holds).
    #[must_use]
    pub fn to_spki_der(&self) -> KeyBytes {
        let mut out = KeyBytes::new();
        match &self.inner {
            Inner::P256(k) => {
                out.push(&P256_SPKI_PREFIX);
                out.push(k.to_encoded_point(false).as_bytes());
            }
            #[cfg(feature = "p384")]
            Inner::P384(k) => {
                out.push(&P384_SPKI_PREFIX);
                out.push(k.to_encoded_point(false).as_bytes());
            }
            #[cfg(feature = "ed25519")]
            Inner::Ed25519(k) => {
                out.push(&ED25519_SPKI_PREFIX);
                out.push(k.as_bytes());
            }
            Inner::Rsa(k) => {
                let pkcs1 = k.pkcs1();
                let bits = 1 + pkcs1.len();
                let body = RSA_ALGORITHM.len() + header_len(bits) + bits;
                out.header(0x30, body);
                out.push(&RSA_ALGORITHM);
                out.header(0x03, bits);
                out.push(&[0]);
                out.push(&pkcs1);
            }
        }
        out
    }

    /// SHA-256 of [`Self::public_bytes`]: what `imgtool getpubhash` prints for every key type.
    #[must_use]
    pub fn key_hash(&self) -> [u8; 32] {
        Sha256::digest(&*self.public_bytes()).into()
    }

    /// The `KEYHASH` TLV value of images signed with this key: [`Self::public_bytes`] hashed
    /// with the image's hash algorithm (SHA-384 for P-384, so 48 bytes there).
    #[must_use]
    pub fn keyhash_tlv(&self) -> ImageHash {
        self.key_type().hash_alg().digest(&self.public_bytes())
    }

    /// Verifies `sig` (the signature TLV's value) over the image digest. `false` when the
    /// digest's algorithm is not this key type's.
    #[must_use]
    pub fn verify(&self, hash: &ImageHash, sig: &[u8]) -> bool {
        if hash.alg() != self.key_type().hash_alg() {
            return false;
        }
        match &self.inner {
            Inner::P256(k) => {
                signature_from_der(sig).is_some_and(|s| k.verify_prehash(hash, &s).is_ok())
            }
            #[cfg(feature = "p384")]
            Inner::P384(k) => unpadded_der(sig)
                .and_then(|d| p384::ecdsa::Signature::from_der(d).ok())
                .is_some_and(|s| k.verify_prehash(hash, &s).is_ok()),
            #[cfg(feature = "ed25519")]
            Inner::Ed25519(k) => <[u8; 64]>::try_from(sig).is_ok_and(|s| {
                k.verify_strict(hash, &ed25519_dalek::Signature::from_bytes(&s))
                    .is_ok()
            }),
            #[cfg(feature = "rsa")]
            Inner::Rsa(k) => rsa_key(k).is_some_and(|key| {
                key.verify(rsa::Pss::new_with_salt::<Sha256>(32), hash, sig)
                    .is_ok()
            }),
            #[cfg(not(feature = "rsa"))]
            Inner::Rsa(_) => false,
        }
    }

    /// Verifies a signature over a SHA-256 digest (every key type but P-384).
    #[must_use]
    pub fn verify_digest(&self, digest: &[u8; 32], sig: &[u8]) -> bool {
        self.verify(&ImageHash::sha256(*digest), sig)
    }
}

#[cfg(feature = "rsa")]
fn rsa_key(k: &RsaKey) -> Option<rsa::RsaPublicKey> {
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(k.modulus()),
        rsa::BigUint::from(k.e),
    )
    .ok()
}

/// The DER `SEQUENCE` of an ECDSA signature without the zero bytes imgtool's `--pad-sig`
/// appends (tolerated, as MCUboot's tinycrypt path does); the decoding itself is the `ecdsa`
/// crate's (no_std `der`).
fn unpadded_der(der: &[u8]) -> Option<&[u8]> {
    // A P-256 or P-384 signature's sequence length is in short form (at most 104 bytes).
    let end = 2 + usize::from(*der.get(1).filter(|len| **len < 0x80)?);
    if der.get(end..)?.iter().any(|b| *b != 0) {
        return None;
    }
    Some(&der[..end])
}

/// Decodes a DER ECDSA P-256 signature (see [`unpadded_der`] for the padding rule).
#[must_use]
pub fn signature_from_der(der: &[u8]) -> Option<p256::ecdsa::Signature> {
    p256::ecdsa::Signature::from_der(unpadded_der(der)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_spki_round_trips_and_hashes_with_sha256() {
        let k = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let pk = PublicKey::from_verifying_key(*k.verifying_key());
        let der = pk.to_spki_der();
        assert_eq!(der.len(), P256_SPKI_LEN);
        assert_eq!(PublicKey::from_spki_der(&der), Ok(pk));
        assert_eq!(pk.keyhash_tlv(), pk.key_hash());
        assert_eq!(pk.key_type(), KeyType::EcdsaP256);
    }

    #[test]
    fn garbage_is_malformed_and_unknown_algorithms_unsupported() {
        assert_eq!(PublicKey::from_spki_der(b"nope"), Err(KeyError::Malformed));
        // An X25519 SubjectPublicKeyInfo (OID 1.3.101.110).
        let mut x25519 = [0u8; 44];
        x25519[..12].copy_from_slice(&[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
        ]);
        assert_eq!(
            PublicKey::from_spki_der(&x25519),
            Err(KeyError::Unsupported)
        );
    }

    #[test]
    fn rsa_pkcs1_parses_and_reencodes() {
        let mut n = [0xc5u8; 256];
        n[255] = 0x01;
        let mut der = [0u8; 270];
        der[..9].copy_from_slice(&[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00]);
        der[9..265].copy_from_slice(&n);
        der[265..].copy_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let k = parse_pkcs1(&der).unwrap();
        assert_eq!(k.key_type(), KeyType::Rsa2048);
        assert_eq!(&*k.pkcs1(), &der[..]);
        der[9] = 0x45; // 2047 bits
        assert_eq!(parse_pkcs1(&der), Err(KeyError::RsaSize(2047)));
    }
}
