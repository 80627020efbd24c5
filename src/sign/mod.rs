//! Signing keys of every type MCUboot verifies (ECDSA P-256/P-384, Ed25519, RSA-2048/3072):
//! generate, load (PEM, as imgtool reads them), export the public half in imgtool's `getpub` /
//! `getpubhash` encodings, and sign an image digest.
//!
//! Private keys exist only in this module; the device side (`ota_core::image`) sees public keys.
//! What each type signs, and with which TLV, is in [`ota_core::image::key`]. ECDSA and Ed25519
//! signatures are deterministic (RFC 6979, RFC 8032): the same key and image give the same bytes,
//! which MCUboot accepts exactly like imgtool's randomised ECDSA ones. RSA-PSS signatures carry a
//! random salt, as imgtool's do.

use std::path::PathBuf;

use ota_core::image::{HashAlg, ImageHash, KeyType, PublicKey};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::LineEnding;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize_shim::Zeroizing;

pub mod enc;
mod encode;
mod load;

pub use encode::{
    encode_key_bytes, encode_private_c, encode_public, encode_public_hash, public_key_pem,
    HashEncoding, PubEncoding,
};
pub use load::{load_key, load_signing_key, parse_key_pem};

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The file could not be read.
    #[error("cannot read key {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not PEM.
    #[error("{path} is not a key file: expected PEM (PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY or PUBLIC KEY), or a public key as `getpub` writes it (raw DER, C or Rust array)")]
    NotPem {
        /// The key file.
        path: PathBuf,
    },
    /// A password-protected key.
    #[error("{path} is an encrypted private key; decrypt it first (openssl pkcs8 -in {path} -nocrypt -topk8)")]
    Encrypted {
        /// The key file.
        path: PathBuf,
    },
    /// A key of an algorithm, curve or size MCUboot does not sign with.
    #[error("{path} is {what}, not a signing key MCUboot verifies (ECDSA P-256 or P-384, Ed25519, RSA-2048 or RSA-3072)")]
    Unsupported {
        /// The key file.
        path: PathBuf,
        /// What was found instead.
        what: String,
    },
    /// Malformed key data.
    #[error("{path} is not a valid key: {reason}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// A key that cannot encrypt images (`sign -E`).
    #[error("{path} is {what}, not an encryption key otactl supports: `sign -E` takes an ECIES-P256 key (a P-256 key, `keygen -t enc-ec256`) or an ECIES-X25519 key (`keygen -t enc-x25519`); RSA-OAEP encryption (imgtool's ENCRSA2048) is not supported")]
    NotEncryptionKey {
        /// The key file.
        path: PathBuf,
        /// What was found instead.
        what: String,
    },
    /// A public key where a private key is needed.
    #[error("{path} holds only a public key; signing needs the private key")]
    PublicOnly {
        /// The key file.
        path: PathBuf,
    },
    /// A key that cannot be written as PKCS#8 (not expected for a valid key).
    #[error("cannot encode the key")]
    Encode(#[source] p256::pkcs8::Error),
}

/// A private signing key of one of MCUboot's types.
#[derive(Clone)]
pub enum SigningKey {
    /// ECDSA P-256 (SHA-256 images, `ECDSA_SIG`).
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 (SHA-384 images, `ECDSA_SIG`).
    P384(p384::ecdsa::SigningKey),
    /// Ed25519 (SHA-256 images, `ED25519`).
    Ed25519(ed25519_dalek::SigningKey),
    /// RSA-2048 or RSA-3072 (SHA-256 images, PSS, `RSA2048_PSS` / `RSA3072_PSS`).
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_type().display_name())
    }
}

impl From<p256::ecdsa::SigningKey> for SigningKey {
    fn from(k: p256::ecdsa::SigningKey) -> Self {
        Self::P256(k)
    }
}

impl SigningKey {
    /// The key's type.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::P256(_) => KeyType::EcdsaP256,
            Self::P384(_) => KeyType::EcdsaP384,
            Self::Ed25519(_) => KeyType::Ed25519,
            Self::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                if k.size() == 256 {
                    KeyType::Rsa2048
                } else {
                    KeyType::Rsa3072
                }
            }
        }
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::P256(k) => PublicKey::from_verifying_key(*k.verifying_key()),
            Self::P384(k) => PublicKey::from_p384(*k.verifying_key()),
            Self::Ed25519(k) => PublicKey::from_ed25519(k.verifying_key()),
            Self::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let der = k
                    .to_public_key()
                    .to_pkcs1_der()
                    .expect("an RSA public key always encodes");
                PublicKey::from_pkcs1_der(der.as_bytes())
                    .expect("loaded RSA keys are 2048 or 3072 bits")
            }
        }
    }

    /// The hash algorithm of images signed with this key.
    #[must_use]
    pub fn hash_alg(&self) -> HashAlg {
        self.key_type().hash_alg()
    }

    /// Signs an image digest as imgtool does for this key type; returns the signature TLV's
    /// value (DER for ECDSA, 64 bytes for Ed25519, the modulus size for RSA).
    ///
    /// # Panics
    /// If `hash` is not of [`Self::hash_alg`] (a programming error: the image builder hashes
    /// with the key's algorithm).
    #[must_use]
    pub fn sign(&self, hash: &ImageHash) -> Vec<u8> {
        assert_eq!(hash.alg(), self.hash_alg(), "digest algorithm of the key");
        match self {
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(hash)
                    .expect("a 32-byte prehash is always accepted for P-256");
                sig.to_der().as_bytes().to_vec()
            }
            Self::P384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .sign_prehash(hash)
                    .expect("a 48-byte prehash is always accepted for P-384");
                sig.to_der().as_bytes().to_vec()
            }
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(hash).to_bytes().to_vec()
            }
            Self::Rsa(k) => k
                .sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha256>(32), hash)
                .expect("PSS signing of a 32-byte digest with a 2048/3072-bit key"),
        }
    }
}

/// A key file's content: a key pair or only the public half.
#[derive(Clone, Debug)]
pub enum KeyFile {
    /// A private key.
    Private(SigningKey),
    /// A public key.
    Public(PublicKey),
}

impl KeyFile {
    /// The public key, whichever half the file held.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Private(k) => k.public_key(),
            Self::Public(k) => *k,
        }
    }
}

/// A new random key of `kind` (OS random generator).
///
/// # Panics
/// Never in practice: RSA key generation fails only if the OS random generator does.
#[must_use]
pub fn generate(kind: KeyType) -> SigningKey {
    match kind {
        KeyType::EcdsaP256 => SigningKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        KeyType::EcdsaP384 => SigningKey::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
        KeyType::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        KeyType::Rsa2048 | KeyType::Rsa3072 => {
            let bits = if kind == KeyType::Rsa2048 { 2048 } else { 3072 };
            let k = rsa::RsaPrivateKey::new(&mut OsRng, bits).expect("RSA key generation");
            SigningKey::Rsa(Box::new(k))
        }
    }
}

/// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `imgtool keygen` writes it (for
/// Ed25519 the version-1 form without the public key, as OpenSSL writes it).
///
/// # Errors
/// Encoding failures (not expected for a valid key).
pub fn private_key_pem(key: &SigningKey) -> Result<Zeroizing<String>, SignError> {
    use p256::pkcs8::EncodePrivateKey;
    let pem = match key {
        SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
        SigningKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
        SigningKey::Ed25519(k) => {
            let kp = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            };
            kp.to_pkcs8_pem(LineEnding::LF)
        }
        SigningKey::Rsa(k) => rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&**k, LineEnding::LF),
    }
    .map_err(SignError::Encode)?;
    Ok(Zeroizing::new(pem.to_string()))
}

/// SHA-256 of arbitrary bytes.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

mod zeroize_shim {
    //! `Zeroizing` from the `zeroize` crate that p256 already depends on.
    pub use p256::elliptic_curve::zeroize::Zeroizing;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_type_round_trips_through_pkcs8_pem_and_signs_verifiably() {
        for kind in KeyType::ALL {
            let k = generate(kind);
            assert_eq!(k.key_type(), kind);
            let pem = private_key_pem(&k).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{kind:?}");
            let back = parse_key_pem(pem.as_bytes(), Path::new("k.pem")).unwrap();
            assert_eq!(back.public_key(), k.public_key(), "{kind:?}");
            let d = k.hash_alg().digest(b"image");
            let sig = k.sign(&d);
            assert!(k.public_key().verify(&d, &sig), "{kind:?}");
            let other = k.hash_alg().digest(b"imagE");
            assert!(!k.public_key().verify(&other, &sig), "{kind:?}");
        }
    }

    #[test]
    fn sec1_pem_loads() {
        let k = p256::ecdsa::SigningKey::random(&mut OsRng);
        let sec1 = p256::SecretKey::from(k.clone())
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        let back = parse_key_pem(sec1.as_bytes(), Path::new("k.pem")).unwrap();
        assert!(matches!(back, KeyFile::Private(SigningKey::P256(_))));
        assert_eq!(
            back.public_key(),
            PublicKey::from_verifying_key(*k.verifying_key())
        );
    }

    #[test]
    fn ecdsa_and_ed25519_signatures_are_deterministic() {
        for kind in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Ed25519] {
            let k = generate(kind);
            let d = k.hash_alg().digest(b"image");
            assert_eq!(k.sign(&d), k.sign(&d), "{kind:?}");
        }
    }

    #[test]
    fn c_array_and_raw_public_keys_load() {
        for kind in [KeyType::EcdsaP256, KeyType::Ed25519, KeyType::Rsa2048] {
            let pk = generate(kind).public_key();
            for enc in [PubEncoding::LangC, PubEncoding::LangRust, PubEncoding::Raw] {
                let text = encode_public(&pk, enc, "");
                let back = parse_key_pem(&text, Path::new("k.pub")).unwrap();
                assert_eq!(back.public_key(), pk, "{kind:?} {enc:?}");
            }
        }
    }

    #[test]
    fn garbage_is_not_pem() {
        let e = parse_key_pem(b"hello", Path::new("x.pem")).unwrap_err();
        assert!(matches!(e, SignError::NotPem { .. }), "{e}");
    }
}
