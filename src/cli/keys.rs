//! `otactl keygen`, `getpub`, `getpubhash`: imgtool's key commands for every signing key type
//! (ECDSA P-256/P-384, Ed25519, RSA-2048/3072).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use otactl::fsutil::{self, Mode, Overwrite};
use otactl::sign::{self, HashEncoding, PubEncoding};
use otactl::KeyType;

use super::Ctx;

/// Generate a signing key (PKCS#8 PEM, mode 0600), ECDSA P-256 unless --type says otherwise.
///
/// Refuses to replace an existing file unless --force is given. The types are imgtool's:
/// ecdsa-p256 (Infineon's builds), ecdsa-p384 (SHA-384 images), ed25519, rsa-2048, rsa-3072
/// (RSA-PSS). The bootloader must be built for the same type.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl keygen -k keys/signing.pem && otactl getpub -k keys/signing.pem\n  otactl keygen -t ed25519 -k keys/ed25519.pem"
)]
pub struct KeygenCmd {
    /// Where to write the private key.
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Key type: ecdsa-p256 (default, what Infineon's builds verify), ecdsa-p384, ed25519,
    /// rsa-2048 or rsa-3072.
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = parse_key_type)]
    pub key_type: Option<KeyType>,
    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,
}

/// Print the public half of a signing key (pem, raw, lang-c, lang-rust).
///
/// Output is byte-identical to `imgtool getpub`.
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

fn parse_key_type(s: &str) -> Result<KeyType, String> {
    KeyType::ALL
        .into_iter()
        .find(|k| k.imgtool_name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = KeyType::ALL.iter().map(|k| k.imgtool_name()).collect();
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
        Some(p) => fsutil::write_atomic(p, data, Mode::Public, Overwrite::Allow),
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
        let kind = self.key_type.unwrap_or(KeyType::EcdsaP256);
        let key = sign::generate(kind);
        let pem = sign::private_key_pem(&key)?;
        fsutil::write_atomic(
            &path,
            pem.as_bytes(),
            Mode::Private,
            Overwrite::from_force(self.force),
        )?;
        if !ctx.quiet {
            eprintln!(
                "wrote {} key {} (mode 0600)",
                kind.display_name(),
                path.display()
            );
        }
        Ok(())
    }
}

impl GetpubCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let key = sign::load_key(&key_path(self.key)?)?.public_key();
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
        emit(
            self.output.as_ref(),
            &sign::encode_public(&key, enc, &suffix),
        )
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
