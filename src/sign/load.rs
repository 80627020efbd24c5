//! Reading key files as imgtool does: PKCS#8, SEC1 and PKCS#1 private keys, SubjectPublicKeyInfo
//! and PKCS#1 public keys (PEM), and public keys as `getpub` writes them (raw DER, C/Rust array).

use std::path::Path;

use ota_core::image::key::KeyError;
use ota_core::image::PublicKey;
use p256::pkcs8::der::Decode;
use p256::pkcs8::DecodePrivateKey;

use super::zeroize_shim::Zeroizing;
use super::{KeyFile, SignError, SigningKey};

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn describe_oid(oid: &str) -> String {
    match oid {
        OID_RSA => "an RSA key".into(),
        OID_ED25519 => "an Ed25519 key".into(),
        "1.3.101.110" => "an X25519 key (an encryption key)".into(),
        "1.3.101.111" => "an X448 key".into(),
        "1.3.101.113" => "an Ed448 key".into(),
        "1.3.132.0.35" => "an ECDSA P-521 key".into(),
        "1.3.132.0.10" => "an ECDSA secp256k1 key".into(),
        other => format!("a key of algorithm/curve {other}"),
    }
}

/// Reads a key file: a private key, or a public key (PEM, or as `getpub` writes it).
///
/// # Errors
/// [`SignError`] naming the file: unreadable, not PEM, encrypted, unsupported, malformed.
pub fn load_key(path: &Path) -> Result<KeyFile, SignError> {
    let text = std::fs::read(path).map_err(|source| SignError::Read {
        path: path.into(),
        source,
    })?;
    let text = Zeroizing::new(text);
    parse_key_pem(&text, path)
}

/// Reads a private key (for signing).
///
/// # Errors
/// As [`load_key`], plus [`SignError::PublicOnly`].
pub fn load_signing_key(path: &Path) -> Result<SigningKey, SignError> {
    match load_key(path)? {
        KeyFile::Private(k) => Ok(k),
        KeyFile::Public(_) => Err(SignError::PublicOnly { path: path.into() }),
    }
}

/// Parses key text; `path` only names the source in errors.
///
/// # Errors
/// See [`load_key`].
pub fn parse_key_pem(pem: &[u8], path: &Path) -> Result<KeyFile, SignError> {
    let invalid = |reason: String| SignError::Invalid {
        path: path.into(),
        reason,
    };
    let Ok((label, der)) = p256::pkcs8::der::pem::decode_vec(pem) else {
        return public_key_bytes(pem)
            .map(KeyFile::Public)
            .ok_or_else(|| SignError::NotPem { path: path.into() });
    };
    let der = Zeroizing::new(der);
    match label {
        "PRIVATE KEY" => pkcs8_private(&der, path).map(KeyFile::Private),
        "EC PRIVATE KEY" => sec1_private(&der, path).map(KeyFile::Private),
        "RSA PRIVATE KEY" => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let k = rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| invalid(e.to_string()))?;
            rsa_key(k, path).map(KeyFile::Private)
        }
        "PUBLIC KEY" => PublicKey::from_spki_der(&der)
            .map(KeyFile::Public)
            .map_err(|e| public_key_error(e, &der, path)),
        "RSA PUBLIC KEY" => PublicKey::from_pkcs1_der(&der)
            .map(KeyFile::Public)
            .map_err(|e| public_key_error(e, &der, path)),
        "ENCRYPTED PRIVATE KEY" => Err(SignError::Encrypted { path: path.into() }),
        other => Err(invalid(format!("unexpected PEM label \"{other}\""))),
    }
}

/// A PKCS#8 `PRIVATE KEY` of any supported type.
fn pkcs8_private(der: &[u8], path: &Path) -> Result<SigningKey, SignError> {
    let invalid = |reason: String| SignError::Invalid {
        path: path.into(),
        reason,
    };
    let info = p256::pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| invalid(e.to_string()))?;
    let oid = info.algorithm.oid.to_string();
    let curve = info
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<p256::pkcs8::ObjectIdentifier>().ok())
        .map(|o| o.to_string())
        .unwrap_or_default();
    match (oid.as_str(), curve.as_str()) {
        (OID_EC_PUBLIC_KEY, OID_P256) => p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(SigningKey::P256)
            .map_err(|e| invalid(e.to_string())),
        (OID_EC_PUBLIC_KEY, OID_P384) => p384::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(SigningKey::P384)
            .map_err(|e| invalid(e.to_string())),
        (OID_ED25519, _) => ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map(SigningKey::Ed25519)
            .map_err(|e| invalid(e.to_string())),
        (OID_RSA, _) => {
            let k = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| invalid(e.to_string()))?;
            rsa_key(k, path)
        }
        (OID_EC_PUBLIC_KEY, c) => Err(unsupported(path, describe_oid(c))),
        (o, _) => Err(unsupported(path, describe_oid(o))),
    }
}

/// A SEC1 `EC PRIVATE KEY` (P-256 or P-384, by the curve it names).
fn sec1_private(der: &[u8], path: &Path) -> Result<SigningKey, SignError> {
    let invalid = |reason: String| SignError::Invalid {
        path: path.into(),
        reason,
    };
    // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] namedCurve OPTIONAL, … }
    if contains(der, &P384_CURVE_DER) {
        return p384::SecretKey::from_sec1_der(der)
            .map(|k| SigningKey::P384(k.into()))
            .map_err(|e| invalid(e.to_string()));
    }
    p256::SecretKey::from_sec1_der(der)
        .map(|k| SigningKey::P256(k.into()))
        .map_err(|e| {
            if contains(der, &P256_CURVE_DER) {
                invalid(e.to_string())
            } else {
                unsupported(path, "an EC key on another curve".into())
            }
        })
}

/// An RSA private key, if it is one of MCUboot's sizes.
fn rsa_key(k: rsa::RsaPrivateKey, path: &Path) -> Result<SigningKey, SignError> {
    use rsa::traits::PublicKeyParts;
    match k.n().bits() {
        2048 | 3072 => Ok(SigningKey::Rsa(Box::new(k))),
        bits => Err(unsupported(path, format!("an RSA-{bits} key"))),
    }
}

fn unsupported(path: &Path, what: String) -> SignError {
    SignError::Unsupported {
        path: path.into(),
        what,
    }
}

/// Turns a refused public key into the error a person can act on.
fn public_key_error(e: KeyError, der: &[u8], path: &Path) -> SignError {
    match e {
        KeyError::RsaSize(bits) => unsupported(path, format!("an RSA-{bits} key")),
        KeyError::Unsupported => {
            let what = p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der)
                .map(|s| {
                    let curve = s
                        .algorithm
                        .parameters
                        .and_then(|p| p.decode_as::<p256::pkcs8::ObjectIdentifier>().ok());
                    match curve {
                        Some(c) if s.algorithm.oid.to_string() == OID_EC_PUBLIC_KEY => {
                            describe_oid(&c.to_string())
                        }
                        _ => describe_oid(&s.algorithm.oid.to_string()),
                    }
                })
                .unwrap_or_else(|_| "an unknown key".into());
            unsupported(path, what)
        }
        KeyError::Malformed => SignError::Invalid {
            path: path.into(),
            reason: e.to_string(),
        },
    }
}

/// A public key as `imgtool getpub` writes it without PEM: the raw DER bytes (`-e raw`:
/// SubjectPublicKeyInfo, or PKCS#1 for RSA) or a C/Rust array of them (`-e lang-c`, Infineon's
/// `cypress-test-ec-p256.pub`).
fn public_key_bytes(data: &[u8]) -> Option<PublicKey> {
    if let Ok(k) = PublicKey::from_public_bytes(data) {
        return Some(k);
    }
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find(['{', '['])?;
    let bytes: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|t| t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")))
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    PublicKey::from_public_bytes(&bytes).ok()
}

/// DER of the P-256 named-curve OID (1.2.840.10045.3.1.7).
const P256_CURVE_DER: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 named-curve OID (1.3.132.0.34).
const P384_CURVE_DER: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
