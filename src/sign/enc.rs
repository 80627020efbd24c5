//! Encryption keys for encrypted images (`keygen -t enc-ec256|enc-x25519`, `sign -E`,
//! `getpub`/`getpriv` of them): ECIES-P256 keys are P-256 keys (as imgtool's), ECIES-X25519 keys
//! X25519 keys, both PKCS#8 PEM on disk.
//!
//! The image side (AES key, key-exchange TLV, decryption) is [`ota_core::image::enc`]; this
//! module adds key files, key generation and the ephemeral half of the key exchange.

use std::path::Path;

use ota_core::image::enc::{wrap_key, EncPrivateKey, EncScheme, ImageKey};
use p256::pkcs8::der::Decode;
use p256::pkcs8::LineEnding;
use rand_core::{OsRng, RngCore};

use super::zeroize_shim::Zeroizing;
use super::SignError;

/// OID of X25519 keys (RFC 8410).
const OID_X25519: &str = "1.3.101.110";
/// PKCS#8 `PrivateKeyInfo` of an X25519 key up to the 32 key bytes (RFC 8410, as OpenSSL and
/// imgtool write it).
const X25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];
/// `SubjectPublicKeyInfo` of an X25519 key up to the 32 key bytes.
const X25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];

/// The public half of an encryption key: what `sign -E` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncPublicKey {
    /// ECIES-P256.
    EcP256(p256::PublicKey),
    /// ECIES-X25519.
    X25519(x25519_dalek::PublicKey),
}

/// An encryption key file: the device's private key, or only its public half.
#[derive(Clone, Debug)]
pub enum EncKeyFile {
    /// The private key (the bootloader's).
    Private(EncPrivateKey),
    /// The public key (enough to encrypt).
    Public(EncPublicKey),
}

impl EncKeyFile {
    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> EncPublicKey {
        match self {
            Self::Private(k) => public_of(k),
            Self::Public(k) => *k,
        }
    }
}

/// The public half of a private encryption key.
#[must_use]
pub fn public_of(key: &EncPrivateKey) -> EncPublicKey {
    match key {
        EncPrivateKey::EcP256(k) => EncPublicKey::EcP256(k.public_key()),
        EncPrivateKey::X25519(k) => EncPublicKey::X25519(x25519_dalek::PublicKey::from(k)),
    }
}

impl EncPublicKey {
    /// The key-exchange scheme.
    #[must_use]
    pub const fn scheme(&self) -> EncScheme {
        match self {
            Self::EcP256(_) => EncScheme::EcP256,
            Self::X25519(_) => EncScheme::X25519,
        }
    }

    /// imgtool's short name of the key type (the C/Rust identifiers of `getpub`).
    #[must_use]
    pub const fn short_name(&self) -> &'static str {
        match self {
            Self::EcP256(_) => "ecdsa",
            Self::X25519(_) => "x25519",
        }
    }

    /// `SubjectPublicKeyInfo` DER (what `getpub -e raw` prints).
    #[must_use]
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            Self::EcP256(k) => {
                use p256::pkcs8::EncodePublicKey;
                k.to_public_key_der()
                    .expect("a P-256 public key always encodes")
                    .into_vec()
            }
            Self::X25519(k) => [&X25519_SPKI_PREFIX[..], k.as_bytes()].concat(),
        }
    }

    /// `SubjectPublicKeyInfo` PEM.
    #[must_use]
    pub fn pem(&self) -> String {
        p256::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der())
            .expect("a SubjectPublicKeyInfo always encodes")
    }

    /// A fresh random AES-128 key for one image, and the key-exchange TLV value that carries
    /// it to the holder of the private key (a new ephemeral key pair each time).
    #[must_use]
    pub fn new_image_key(&self) -> (ImageKey, Vec<u8>) {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        let key = ImageKey::new(bytes);
        let (ephemeral_public, shared) = match self {
            Self::EcP256(pk) => {
                let eph = p256::ecdh::EphemeralSecret::random(&mut OsRng);
                let shared = eph.diffie_hellman(pk);
                let mut s = [0u8; 32];
                s.copy_from_slice(shared.raw_secret_bytes());
                let public = p256::EncodedPoint::from(eph.public_key());
                (public.as_bytes().to_vec(), Zeroizing::new(s))
            }
            Self::X25519(pk) => {
                let eph = x25519_dalek::StaticSecret::random_from_rng(OsRng);
                let public = x25519_dalek::PublicKey::from(&eph);
                let shared = eph.diffie_hellman(pk);
                (
                    public.as_bytes().to_vec(),
                    Zeroizing::new(shared.to_bytes()),
                )
            }
        };
        let (tag, wrapped) = wrap_key(&shared, &key);
        let mut tlv = ephemeral_public;
        tlv.extend_from_slice(&tag);
        tlv.extend_from_slice(&wrapped);
        debug_assert_eq!(tlv.len(), self.scheme().tlv_len());
        (key, tlv)
    }
}

/// A new random encryption key.
#[must_use]
pub fn generate(scheme: EncScheme) -> EncPrivateKey {
    match scheme {
        EncScheme::EcP256 => EncPrivateKey::EcP256(p256::SecretKey::random(&mut OsRng)),
        EncScheme::X25519 => {
            EncPrivateKey::X25519(x25519_dalek::StaticSecret::random_from_rng(OsRng))
        }
    }
}

/// PKCS#8 DER of a private encryption key, as imgtool writes it (`getpriv`'s bytes).
///
/// # Panics
/// Never: both key types always encode.
#[must_use]
pub fn private_key_der(key: &EncPrivateKey) -> Zeroizing<Vec<u8>> {
    match key {
        EncPrivateKey::EcP256(k) => {
            use p256::pkcs8::EncodePrivateKey;
            Zeroizing::new(
                k.to_pkcs8_der()
                    .expect("a P-256 key always encodes")
                    .as_bytes()
                    .to_vec(),
            )
        }
        EncPrivateKey::X25519(k) => {
            Zeroizing::new([&X25519_PKCS8_PREFIX[..], k.as_bytes()].concat())
        }
    }
}

/// PKCS#8 PEM of a private encryption key (`keygen -t enc-…`).
#[must_use]
pub fn private_key_pem(key: &EncPrivateKey) -> Zeroizing<String> {
    let der = private_key_der(key);
    Zeroizing::new(
        p256::pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
            .expect("PKCS#8 always encodes"),
    )
}

/// Reads an encryption key file (PEM: a P-256 or X25519 private or public key).
///
/// # Errors
/// [`SignError`] naming the file; [`SignError::NotEncryptionKey`] for a key of another type,
/// saying which schemes work (RSA-OAEP is not one of them).
pub fn load_enc_key(path: &Path) -> Result<EncKeyFile, SignError> {
    let text = std::fs::read(path).map_err(|source| SignError::Read {
        path: path.into(),
        source,
    })?;
    parse_enc_key(&Zeroizing::new(text), path)
}

/// Parses encryption key text; `path` only names the source in errors.
///
/// # Errors
/// See [`load_enc_key`].
pub fn parse_enc_key(pem: &[u8], path: &Path) -> Result<EncKeyFile, SignError> {
    let invalid = |reason: String| SignError::Invalid {
        path: path.into(),
        reason,
    };
    if let Ok((label, der)) = p256::pkcs8::der::pem::decode_vec(pem) {
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => {
                let info = p256::pkcs8::PrivateKeyInfo::from_der(&der)
                    .map_err(|e| invalid(e.to_string()))?;
                if info.algorithm.oid.to_string() == OID_X25519 {
                    let raw = info.private_key;
                    let bytes: [u8; 32] = raw
                        .strip_prefix(&[0x04, 0x20][..])
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| invalid("an X25519 private key of the wrong size".into()))?;
                    return Ok(EncKeyFile::Private(EncPrivateKey::X25519(
                        x25519_dalek::StaticSecret::from(bytes),
                    )));
                }
            }
            "PUBLIC KEY" => {
                let spki = p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&der)
                    .map_err(|e| invalid(e.to_string()))?;
                if spki.algorithm.oid.to_string() == OID_X25519 {
                    let bytes: [u8; 32] = spki
                        .subject_public_key
                        .raw_bytes()
                        .try_into()
                        .map_err(|_| invalid("an X25519 public key of the wrong size".into()))?;
                    return Ok(EncKeyFile::Public(EncPublicKey::X25519(
                        x25519_dalek::PublicKey::from(bytes),
                    )));
                }
            }
            _ => {}
        }
    }
    // Everything else: as a signing key file, of which only P-256 keys encrypt (ECIES-P256).
    match super::parse_key_pem(pem, path) {
        Ok(super::KeyFile::Private(super::SigningKey::P256(k))) => {
            Ok(EncKeyFile::Private(EncPrivateKey::EcP256(k.into())))
        }
        Ok(kf) => {
            let pk = kf.public_key();
            if pk.key_type() == ota_core::image::KeyType::EcdsaP256 {
                use p256::pkcs8::DecodePublicKey;
                let point = p256::PublicKey::from_public_key_der(&pk.to_spki_der())
                    .map_err(|e| invalid(e.to_string()))?;
                return Ok(EncKeyFile::Public(EncPublicKey::EcP256(point)));
            }
            Err(SignError::NotEncryptionKey {
                path: path.into(),
                what: pk.key_type().display_name().to_string(),
            })
        }
        Err(SignError::Unsupported { what, .. }) => Err(SignError::NotEncryptionKey {
            path: path.into(),
            what,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_round_trip_through_pem_and_unwrap_their_own_tlv_only() {
        for scheme in EncScheme::ALL {
            let k = generate(scheme);
            let pem = private_key_pem(&k);
            let back = match parse_enc_key(pem.as_bytes(), Path::new("k.pem")).unwrap() {
                EncKeyFile::Private(b) => b,
                EncKeyFile::Public(_) => panic!("{scheme:?}: read as public"),
            };
            let public = public_of(&k);
            assert_eq!(public_of(&back), public, "{scheme:?}");
            let from_pub = parse_enc_key(public.pem().as_bytes(), Path::new("k.pub")).unwrap();
            assert_eq!(from_pub.public_key(), public, "{scheme:?}");
            let (key, tlv) = public.new_image_key();
            assert_eq!(tlv.len(), scheme.tlv_len());
            assert_eq!(back.unwrap(&tlv).unwrap().as_bytes(), key.as_bytes());
            let other = generate(scheme);
            assert!(other.unwrap(&tlv).is_err(), "{scheme:?}");
        }
    }

    #[test]
    fn signing_keys_other_than_p256_are_not_encryption_keys() {
        for kind in [
            ota_core::image::KeyType::Ed25519,
            ota_core::image::KeyType::EcdsaP384,
        ] {
            let pem = super::super::private_key_pem(&super::super::generate(kind)).unwrap();
            let e = parse_enc_key(pem.as_bytes(), Path::new("s.pem")).unwrap_err();
            assert!(matches!(e, SignError::NotEncryptionKey { .. }), "{e}");
        }
    }
}
