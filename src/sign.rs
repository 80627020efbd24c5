//! ECDSA P-256 signing keys: generate, load (PKCS#8 or SEC1 PEM, public-key PEM), export the
//! public half in imgtool's `getpub` / `getpubhash` encodings, and sign an image digest.
//!
//! Private keys exist only in this module; the device side (`firmware::image`) sees public keys.
//! Signatures are deterministic (RFC 6979): the same key and image give the same bytes, which
//! MCUboot accepts exactly like imgtool's randomised ones.

use std::path::{Path, PathBuf};

use firmware::image::PublicKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::Decode;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use zeroize_shim::Zeroizing;

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
    #[error("{path} is not a key file: expected PEM (PRIVATE KEY, EC PRIVATE KEY or PUBLIC KEY), or a public key as `getpub` writes it (raw DER, C or Rust array)")]
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
    /// A key of another algorithm or curve.
    #[error(
        "{path} is {what}, not an ECDSA P-256 key (MCUboot's ECDSA_SIG TLV here is P-256 only)"
    )]
    NotP256 {
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
    /// A public key where a private key is needed.
    #[error("{path} holds only a public key; signing needs the private key")]
    PublicOnly {
        /// The key file.
        path: PathBuf,
    },
}

/// A key file's content: a key pair or only the public half.
#[derive(Clone, Debug)]
pub enum KeyFile {
    /// A private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    Private(SigningKey),
    /// A `PUBLIC KEY` (SubjectPublicKeyInfo).
    Public(VerifyingKey),
}

impl KeyFile {
    /// The public key, whichever half the file held.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Private(k) => PublicKey::from_verifying_key(*k.verifying_key()),
            Self::Public(k) => PublicKey::from_verifying_key(*k),
        }
    }
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

fn describe_oid(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.1" => "an RSA key".into(),
        "1.3.101.112" => "an Ed25519 key".into(),
        "1.3.101.110" => "an X25519 key".into(),
        "1.3.132.0.34" => "an ECDSA P-384 key".into(),
        "1.3.132.0.35" => "an ECDSA P-521 key".into(),
        "1.3.132.0.10" => "an ECDSA secp256k1 key".into(),
        other => format!("a key of algorithm/curve {other}"),
    }
}

/// Reads a key file: PKCS#8 or SEC1 private key, or a public key (all PEM).
///
/// # Errors
/// [`SignError`] naming the file: unreadable, not PEM, encrypted, not P-256, malformed.
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

/// Parses PEM key text; `path` only names the source in errors.
///
/// # Errors
/// See [`load_key`].
pub fn parse_key_pem(pem: &[u8], path: &Path) -> Result<KeyFile, SignError> {
    let invalid = |reason: String| SignError::Invalid {
        path: path.into(),
        reason,
    };
    let not_p256 = |what: String| SignError::NotP256 {
        path: path.into(),
        what,
    };
    let Ok((label, der)) = p256::pkcs8::der::pem::decode_vec(pem) else {
        return public_key_bytes(pem)
            .map(|k| KeyFile::Public(*k.verifying_key()))
            .ok_or_else(|| SignError::NotPem { path: path.into() });
    };
    let der = Zeroizing::new(der);
    match label {
        "PRIVATE KEY" => {
            let info =
                p256::pkcs8::PrivateKeyInfo::from_der(&der).map_err(|e| invalid(e.to_string()))?;
            check_algorithm(&info.algorithm).map_err(not_p256)?;
            SigningKey::from_pkcs8_der(&der)
                .map(KeyFile::Private)
                .map_err(|e| invalid(e.to_string()))
        }
        "EC PRIVATE KEY" => {
            // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] namedCurve OPTIONAL, … }
            if contains(&der, &P384_CURVE_DER) {
                return Err(not_p256("an ECDSA P-384 key".into()));
            }
            p256::SecretKey::from_sec1_der(&der)
                .map(|k| KeyFile::Private(SigningKey::from(k)))
                .map_err(|e| {
                    if contains(&der, &P256_CURVE_DER) {
                        invalid(e.to_string())
                    } else {
                        not_p256("an EC key on another curve".into())
                    }
                })
        }
        "PUBLIC KEY" => {
            let spki = p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&der)
                .map_err(|e| invalid(e.to_string()))?;
            let alg = p256::pkcs8::AlgorithmIdentifierRef {
                oid: spki.algorithm.oid,
                parameters: spki.algorithm.parameters,
            };
            check_algorithm(&alg).map_err(not_p256)?;
            VerifyingKey::from_public_key_der(&der)
                .map(KeyFile::Public)
                .map_err(|e| invalid(e.to_string()))
        }
        "ENCRYPTED PRIVATE KEY" => Err(SignError::Encrypted { path: path.into() }),
        "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => Err(not_p256("an RSA key".into())),
        other => Err(invalid(format!("unexpected PEM label \"{other}\""))),
    }
}

/// A public key as `imgtool getpub` writes it without PEM: the 91 raw DER bytes (`-e raw`) or a
/// C/Rust array of them (`-e lang-c`, Infineon's `cypress-test-ec-p256.pub`).
fn public_key_bytes(data: &[u8]) -> Option<PublicKey> {
    if data.len() == firmware::image::verify::P256_SPKI_LEN {
        return PublicKey::from_spki_der(data).ok();
    }
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find(['{', '['])?;
    let bytes: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|t| t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")))
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    PublicKey::from_spki_der(&bytes).ok()
}

/// DER of the P-256 named-curve OID (1.2.840.10045.3.1.7).
const P256_CURVE_DER: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 named-curve OID (1.3.132.0.34).
const P384_CURVE_DER: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn check_algorithm(alg: &p256::pkcs8::AlgorithmIdentifierRef<'_>) -> Result<(), String> {
    let oid = alg.oid.to_string();
    if oid != OID_EC_PUBLIC_KEY {
        return Err(describe_oid(&oid));
    }
    let curve = alg
        .parameters
        .and_then(|p| p.decode_as::<p256::pkcs8::ObjectIdentifier>().ok())
        .map(|o| o.to_string())
        .unwrap_or_default();
    if curve != OID_P256 {
        return Err(describe_oid(&curve));
    }
    Ok(())
}

/// A new random P-256 key (OS random generator).
#[must_use]
pub fn generate() -> SigningKey {
    SigningKey::random(&mut rand_core::OsRng)
}

/// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `imgtool keygen` writes it.
///
/// # Errors
/// Encoding failures (not expected for a valid key).
pub fn private_key_pem(key: &SigningKey) -> anyhow::Result<Zeroizing<String>> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
    Ok(Zeroizing::new(pem.to_string()))
}

/// Signs a SHA-256 image digest; returns the DER `SEQUENCE { r, s }` (70–72 bytes).
#[must_use]
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Vec<u8> {
    let sig: Signature = key
        .sign_prehash(digest)
        .expect("a 32-byte prehash is always accepted for P-256");
    sig.to_der().as_bytes().to_vec()
}

/// `imgtool getpub -e …` encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PubEncoding {
    /// SubjectPublicKeyInfo PEM.
    Pem,
    /// The 91 DER bytes.
    Raw,
    /// A C array `ecdsa_pub_key[]` plus `ecdsa_pub_key_len`.
    LangC,
    /// A Rust `static ECDSA_PUB_KEY: &[u8]`.
    LangRust,
}

/// `imgtool getpubhash -e …` encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashEncoding {
    /// A C array `ecdsa_pub_key_hash[]` plus its length.
    LangC,
    /// The 32 raw bytes.
    Raw,
}

const AUTOGEN: &str = "/* Autogenerated by imgtool.py, do not edit. */\n";

/// Formats bytes as imgtool does: 8 per line, 4-space indent, `0x..,` separated by spaces.
fn byte_lines(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 6 + 16);
    for (i, b) in bytes.iter().enumerate() {
        s.push_str(if i % 8 == 0 { "\n    " } else { " " });
        s.push_str(&format!("0x{b:02x},"));
    }
    s.push('\n');
    s
}

/// The public key in one of `getpub`'s encodings, byte-identical to imgtool 2.5.0.
/// `name_suffix` is appended to the C/Rust identifiers (`--name-suffix`).
#[must_use]
pub fn encode_public(key: &PublicKey, encoding: PubEncoding, name_suffix: &str) -> Vec<u8> {
    let der = key.to_spki_der();
    match encoding {
        PubEncoding::Raw => der.to_vec(),
        PubEncoding::Pem => public_key_pem(key).into_bytes(),
        PubEncoding::LangC => format!(
            "{AUTOGEN}const unsigned char ecdsa_pub_key{name_suffix}[] = {{{}}};\nconst unsigned int ecdsa_pub_key{name_suffix}_len = {};\n",
            byte_lines(&der),
            der.len()
        )
        .into_bytes(),
        PubEncoding::LangRust => format!(
            "{AUTOGEN}static ECDSA_PUB_KEY{}: &[u8] = &[{}];\n",
            name_suffix.to_ascii_uppercase(),
            byte_lines(&der)
        )
        .into_bytes(),
    }
}

/// SubjectPublicKeyInfo PEM (64-character lines, LF), as `imgtool getpub -e pem`.
#[must_use]
pub fn public_key_pem(key: &PublicKey) -> String {
    let der = key.to_spki_der();
    p256::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &der)
        .expect("91 bytes always encode")
}

/// The key hash in one of `getpubhash`'s encodings, byte-identical to imgtool 2.5.0.
#[must_use]
pub fn encode_public_hash(key: &PublicKey, encoding: HashEncoding, name_suffix: &str) -> Vec<u8> {
    let hash = key.key_hash();
    match encoding {
        HashEncoding::Raw => hash.to_vec(),
        HashEncoding::LangC => format!(
            "{AUTOGEN}const unsigned char ecdsa_pub_key_hash{name_suffix}[] = {{{}}};\nconst unsigned int ecdsa_pub_key_hash{name_suffix}_len = {};\n",
            byte_lines(&hash),
            hash.len()
        )
        .into_bytes(),
    }
}

/// SHA-256 of arbitrary bytes (the image digest helper the assembler uses).
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
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pkcs8_pem() {
        let k = generate();
        let pem = private_key_pem(&k).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = parse_key_pem(pem.as_bytes(), Path::new("k.pem")).unwrap();
        assert_eq!(
            back.public_key(),
            PublicKey::from_verifying_key(*k.verifying_key())
        );
    }

    #[test]
    fn sec1_pem_loads() {
        let k = generate();
        let sec1 = p256::SecretKey::from(k.clone())
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        let back = parse_key_pem(sec1.as_bytes(), Path::new("k.pem")).unwrap();
        assert!(matches!(back, KeyFile::Private(_)));
        assert_eq!(
            back.public_key(),
            PublicKey::from_verifying_key(*k.verifying_key())
        );
    }

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let k = generate();
        let d = sha256(b"image");
        let a = sign_digest(&k, &d);
        assert_eq!(a, sign_digest(&k, &d));
        let pk = PublicKey::from_verifying_key(*k.verifying_key());
        assert!(pk.verify_digest(&d, &a));
    }

    #[test]
    fn c_array_and_raw_public_keys_load() {
        let k = generate();
        let pk = PublicKey::from_verifying_key(*k.verifying_key());
        for enc in [PubEncoding::LangC, PubEncoding::LangRust, PubEncoding::Raw] {
            let text = encode_public(&pk, enc, "");
            let back = parse_key_pem(&text, Path::new("k.pub")).unwrap();
            assert_eq!(back.public_key(), pk, "{enc:?}");
        }
    }

    #[test]
    fn garbage_is_not_pem() {
        let e = parse_key_pem(b"hello", Path::new("x.pem")).unwrap_err();
        assert!(matches!(e, SignError::NotPem { .. }), "{e}");
    }
}
