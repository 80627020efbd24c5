//! `otactl keygen`, `getpub`, `getpubhash`, `getpriv`: imgtool's key commands for every signing
//! key type (ECDSA P-256/P-384, Ed25519, RSA-2048/3072) and the encryption keys of encrypted
//! images (ECIES-P256, ECIES-X25519).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ota_core::image::enc::EncScheme;
use otactl::fsutil::{self, Mode, Overwrite};
use otactl::sign::{self, HashEncoding, PubEncoding};
use otactl::KeyType;

use super::Ctx;

/// Generate a signing or encryption key (PKCS#8 PEM, mode 0600), ECDSA P-256 unless --type
/// says otherwise.
///
/// Refuses to replace an existing file unless --force is given. The signing types are
/// imgtool's: ecdsa-p256 (Infineon's builds), ecdsa-p384 (SHA-384 images), ed25519, rsa-2048,
/// rsa-3072 (RSA-PSS). The bootloader must be built for the same type. enc-ec256 (a P-256 key,
/// MCUboot's MCUBOOT_ENCRYPT_EC256) and enc-x25519 (MCUBOOT_ENCRYPT_X25519) make the device's
/// key for encrypted images (sign -E): getpriv prints it for the bootloader, getpub its public
/// half for whoever signs.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl keygen -k keys/signing.pem && otactl getpub -k keys/signing.pem\n  otactl keygen -t ed25519 -k keys/ed25519.pem\n  otactl keygen -t enc-x25519 -k keys/enc.pem && otactl getpriv -k keys/enc.pem > enc_priv_key.c"
)]
pub struct KeygenCmd {
    /// Where to write the private key.
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Key type: ecdsa-p256 (default, what Infineon's builds verify), ecdsa-p384, ed25519,
    /// rsa-2048 or rsa-3072; or an encryption key: enc-ec256, enc-x25519.
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = parse_key_type)]
    pub key_type: Option<KeyKind>,
    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,
}

/// Print the public half of a signing or encryption key (pem, raw, lang-c, lang-rust).
///
/// Output is byte-identical to `imgtool getpub`. For an encryption key (enc-ec256,
/// enc-x25519) the public half is what `sign -E` needs: the private key stays with the
/// bootloader's build.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl getpub -k keys/signing.pem -e lang-c > signing_pub_key.c"
)]
pub struct GetpubCmd {
    /// Key file: private (PKCS#8/SEC1 PEM) or public (PEM).
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Encoding (default lang-c).
    #[arg(short, long, value_enum, value_name = "ENCODING")]
    pub encoding: Option<PubEnc>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Append this to the C/Rust identifiers ([A-Za-z0-9_]*).
    #[arg(long, value_name = "SUFFIX", value_parser = parse_suffix)]
    pub name_suffix: Option<String>,
}

/// Print the SHA-256 of the public key (the image's KEYHASH).
///
/// Output is byte-identical to `imgtool getpubhash`.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl getpubhash -k keys/signing.pem -e raw | xxd -p"
)]
pub struct GetpubhashCmd {
    /// Key file: private (PKCS#8/SEC1 PEM) or public (PEM).
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Encoding (default lang-c).
    #[arg(short, long, value_enum, value_name = "ENCODING")]
    pub encoding: Option<HashEnc>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Append this to the C identifiers ([A-Za-z0-9_]*).
    #[arg(long, value_name = "SUFFIX", value_parser = parse_suffix)]
    pub name_suffix: Option<String>,
}

/// `getpub -e`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PubEnc {
    /// A C array.
    LangC,
    /// A Rust slice.
    LangRust,
    /// SubjectPublicKeyInfo PEM.
    Pem,
    /// SubjectPublicKeyInfo DER bytes.
    Raw,
}

/// `getpubhash -e`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HashEnc {
    /// A C array.
    LangC,
    /// 32 raw bytes.
    Raw,
}

/// What `keygen -t` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A signing key.
    Sign(KeyType),
    /// An encryption key.
    Enc(EncScheme),
}

fn parse_key_type(s: &str) -> Result<KeyKind, String> {
    let sign = KeyType::ALL
        .into_iter()
        .find(|k| k.imgtool_name() == s)
        .map(KeyKind::Sign);
    let enc = EncScheme::ALL
        .into_iter()
        .find(|k| k.keygen_name() == s)
        .map(KeyKind::Enc);
    sign.or(enc).ok_or_else(|| {
        let names: Vec<&str> = KeyType::ALL
            .iter()
            .map(|k| k.imgtool_name())
            .chain(EncScheme::ALL.iter().map(|k| k.keygen_name()))
            .collect();
        format!("{s:?} is not a key type; use one of {}", names.join(", "))
    })
}

fn parse_suffix(s: &str) -> Result<String, String> {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} must contain only [A-Za-z0-9_]"))
    }
}

fn key_path(key: Option<PathBuf>) -> Result<PathBuf> {
    key.context("missing -k/--key FILE")
}

fn emit(output: Option<&PathBuf>, data: &[u8]) -> Result<()> {
    match output {
        Some(p) => Ok(fsutil::write_atomic(
            p,
            data,
            Mode::Public,
            Overwrite::Allow,
        )?),
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(data).and_then(|()| out.flush()) {
                super::exit_on_stdout_error(&e);
            }
            Ok(())
        }
    }
}

impl KeygenCmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let path = key_path(self.key)?;
        fsutil::check_overwrite(&path, Overwrite::from_force(self.force))?;
        let (pem, name) = match self.key_type.unwrap_or(KeyKind::Sign(KeyType::EcdsaP256)) {
            KeyKind::Sign(kind) => (
                sign::private_key_pem(&sign::generate(kind))?,
                kind.display_name().to_string(),
            ),
            KeyKind::Enc(scheme) => (
                sign::enc::private_key_pem(&sign::enc::generate(scheme)),
                format!("{} encryption", scheme.display_name()),
            ),
        };
        fsutil::write_atomic(
            &path,
            pem.as_bytes(),
            Mode::Private,
            Overwrite::from_force(self.force),
        )?;
        if !ctx.quiet {
            eprintln!("wrote {name} key {} (mode 0600)", path.display());
        }
        Ok(())
    }
}

impl GetpubCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let path = key_path(self.key)?;
        let suffix = self.name_suffix.unwrap_or_default();
        let enc = match self.encoding.unwrap_or(PubEnc::LangC) {
            PubEnc::LangC => PubEncoding::LangC,
            PubEnc::LangRust => PubEncoding::LangRust,
            PubEnc::Pem => PubEncoding::Pem,
            PubEnc::Raw => PubEncoding::Raw,
        };
        if !suffix.is_empty() && matches!(enc, PubEncoding::Pem | PubEncoding::Raw) {
            anyhow::bail!("--name-suffix is only meaningful for lang-c / lang-rust");
        }
        let text = match sign::load_key(&path) {
            Ok(k) => sign::encode_public(&k.public_key(), enc, &suffix),
            // An X25519 encryption key (a P-256 one loads as a signing key: the same bytes).
            Err(e) => match sign::enc::load_enc_key(&path) {
                Ok(k) => {
                    let k = k.public_key();
                    match enc {
                        PubEncoding::Pem => k.pem().into_bytes(),
                        e => sign::encode_key_bytes(k.short_name(), &k.spki_der(), e, &suffix),
                    }
                }
                Err(_) => return Err(e.into()),
            },
        };
        emit(self.output.as_ref(), &text)
    }
}

/// Print an encryption key's private half as the C array MCUboot's decryption links against
/// (`enc_priv_key[]`, PKCS#8 DER), byte-identical to `imgtool getpriv`.
///
/// Only for the bootloader's build: whoever signs needs only `getpub`'s public half.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl getpriv -k keys/enc.pem -o enc_priv_key.c"
)]
pub struct GetprivCmd {
    /// Encryption key file (enc-ec256 or enc-x25519, PKCS#8 PEM).
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Write to this file (mode 0600) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl GetprivCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let path = key_path(self.key)?;
        let key = match sign::enc::load_enc_key(&path)? {
            sign::enc::EncKeyFile::Private(k) => k,
            sign::enc::EncKeyFile::Public(_) => {
                anyhow::bail!("{} holds only a public key", path.display())
            }
        };
        let text = sign::encode_private_c(&sign::enc::private_key_der(&key));
        match self.output {
            Some(p) => Ok(fsutil::write_atomic(
                &p,
                &text,
                Mode::Private,
                Overwrite::Allow,
            )?),
            None => emit(None, &text),
        }
    }
}

impl GetpubhashCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let key = sign::load_key(&key_path(self.key)?)?.public_key();
        let suffix = self.name_suffix.unwrap_or_default();
        let enc = match self.encoding.unwrap_or(HashEnc::LangC) {
            HashEnc::LangC => HashEncoding::LangC,
            HashEnc::Raw => HashEncoding::Raw,
        };
        if !suffix.is_empty() && enc == HashEncoding::Raw {
            anyhow::bail!("--name-suffix is only meaningful for lang-c");
        }
        emit(
            self.output.as_ref(),
            &sign::encode_public_hash(&key, enc, &suffix),
        )
    }
}
