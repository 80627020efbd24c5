//! `otactl verify`: check an image's hash, key hash and signature as MCUboot does.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use otactl::assemble::{hex_string, read_image_file, verify_image_with};
use otactl::Rejected;

use super::Ctx;

/// Check an image's hash, key hash and signature.
///
/// Exit 0 when valid; exit 1 with the reason (hash mismatch, unknown key, bad signature,
/// truncated or malformed image) when not. Without -k only the hash is checked, like
/// `imgtool verify`.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl verify -k keys/signing.pem app.bin"
)]
pub struct Cmd {
    /// Key(s) the image may be signed with: private or public PEM, or a public key as `getpub`
    /// writes it (raw DER, or a C array like Infineon's `cypress-test-ec-p256.pub`). Repeatable.
    #[arg(short, long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
    /// The device's private encryption key (enc-ec256 or enc-x25519): an encrypted image is
    /// checked through it, as the bootloader checks the secondary slot (the hash is over the
    /// plaintext).
    #[arg(long, value_name = "FILE")]
    pub enc_key: Option<PathBuf>,
    /// The image (.bin, or .hex).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let keys = self
            .key
            .iter()
            .map(|k| otactl::sign::load_key(k).map(|f| f.public_key()))
            .collect::<Result<Vec<_>, _>>()?;
        let enc = match &self.enc_key {
            Some(p) => match otactl::sign::enc::load_enc_key(p)? {
                otactl::sign::enc::EncKeyFile::Private(k) => Some(k),
                otactl::sign::enc::EncKeyFile::Public(_) => anyhow::bail!(
                    "--enc-key {}: decrypting needs the private key; this is its public half",
                    p.display()
                ),
            },
            None => None,
        };
        let bytes = read_image_file(&self.image)?;
        let v = verify_image_with(&bytes, &keys, enc.as_ref())
            .map_err(|reason| Rejected(format!("{}: {reason}", self.image.display())))?;
        if !ctx.quiet {
            outln!("Image was correctly validated");
            outln!("Image version: {}", v.header.version);
            outln!("Image digest: {}", hex_string(&v.hash));
            if let Some(i) = v.key_index {
                outln!("Signed by: {}", self.key[i].display());
            } else {
                outln!("Not checked: signature (no -k given)");
            }
        }
        Ok(())
    }
}
