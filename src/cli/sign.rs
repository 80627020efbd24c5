//! `otactl sign`: imgtool's `sign` options and meaning, plus `--flashmap`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ota_core::image::{KeyType, Version};
use otactl::assemble::{
    self, parse_custom_tlv, parse_dependencies, parse_int, FileFormat, Payload, PublicKeyFormat,
    Recipe, SecurityCounter, SignOptions, Signer,
};
use otactl::fsutil;

use super::Ctx;

/// Sign an image for MCUboot, with imgtool's `sign` options.
///
/// Input and output are Intel HEX when the file name ends in `.hex`, raw binary otherwise (a HEX
/// input keeps its address; with --pad-header the header goes in front of it). Nothing is written
/// unless the whole image (header + payload + TLVs + trailer) fits in the slot.
#[derive(Debug, Args)]
#[command(
    disable_version_flag = true,
    args_override_self = true,
    verbatim_doc_comment,
    after_help = EXAMPLES
)]
pub struct Cmd {
    #[command(flatten)]
    args: Box<SignArgs>,
}

const EXAMPLES: &str = "\
Examples:
  # Infineon PSoC 6, external-flash swap: imgtool's flags
  otactl sign -e little --pad-header --align 8 -H 0x400 -M 3584 -v 1.1.0 -L 0x028000 \\
    -S 0x1c0000 -k cypress-test-ec-p256.pem app.unsigned.hex app.hex
  # the same, with the flash map deciding -S/-L/-M/-R/-H
  otactl sign --flashmap psoc62_2m_ext_swap_single.json -v 1.1.0 -k key.pem \\
    app.unsigned.hex app.hex
  # Infineon XMC7000: the map picks cysecuretools' recipe; -x for the update's address
  otactl sign --flashmap xmc7200_int_overwrite_single.json -v 1.1.0 -k key.pem app.bin app.hex
  otactl sign --flashmap xmc7200_int_overwrite_single.json -x 0x103f8000 -v 1.1.0 -k key.pem \\
    app.bin app_upgrade.hex";

/// The options of `otactl sign` (boxed: there are many).
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key to sign with (PEM: ECDSA P-256 or P-384, Ed25519, RSA-2048/3072). The key
    /// picks the hash and signature TLVs as imgtool does (SHA384 for P-384). Without it (and
    /// without --fix-sig) the image carries only its SHA256 hash.
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Image version: MAJOR[.MINOR[.REVISION[+BUILD]]], e.g. 1.2.3+4.
    #[arg(short = 'v', long = "version", value_name = "VERSION")]
    pub image_version: Option<String>,
    /// Header size (-H): the payload's offset in the slot, at least 0x20. Infineon uses 0x400.
    #[arg(short = 'H', long, value_name = "SIZE", value_parser = parse_int)]
    pub header_size: Option<u32>,
    /// Put --header-size erased bytes in front of the input for the header (else the input's
    /// first --header-size bytes must be zero and are overwritten).
    #[arg(long)]
    pub pad_header: bool,
    /// Slot size (-S); the image plus its trailer must fit in it.
    #[arg(short = 'S', long, value_name = "SIZE", value_parser = parse_int)]
    pub slot_size: Option<u32>,
    /// Flash write alignment used by the swap status records: 1, 2, 4, 8, 16 or 32 (default 1).
    #[arg(long, value_name = "BYTES", value_parser = ["1", "2", "4", "8", "16", "32"])]
    pub align: Option<String>,
    /// BOOT_MAX_ALIGN when it differs from max(8, --align): 8, 16 or 32.
    #[arg(long, value_name = "BYTES", value_parser = ["8", "16", "32"])]
    pub max_align: Option<String>,
    /// MCUBOOT_MAX_IMG_SECTORS (-M): sizes the trailer's swap status area (default 128).
    #[arg(short = 'M', long, value_name = "COUNT", value_parser = parse_int)]
    pub max_sectors: Option<u32>,
    /// Value of erased flash (-R): 0 or 0xff (default 0xff). PSoC 6 internal flash erases to 0.
    #[arg(short = 'R', long, value_name = "VALUE", value_parser = ["0", "0xff"])]
    pub erased_val: Option<String>,
    /// Load address (-L); non-zero sets the RAM_LOAD flag. Infineon passes the primary slot's
    /// offset in internal flash.
    #[arg(short = 'L', long, value_name = "ADDR", value_parser = parse_int)]
    pub load_addr: Option<u32>,
    /// Flash address the image is built for (-F); sets ROM_FIXED.
    #[arg(short = 'F', long, value_name = "ADDR", value_parser = parse_int)]
    pub rom_fixed: Option<u32>,
    /// Address of the output HEX (-x), e.g. for binary input.
    #[arg(short = 'x', long, value_name = "ADDR", value_parser = parse_int)]
    pub hex_addr: Option<u32>,
    /// Byte order (-e); only little is supported (MCUboot on Cortex-M).
    #[arg(short = 'e', long, value_name = "ENDIAN", value_parser = ["little", "big"])]
    pub endian: Option<String>,
    /// Pad the output to the slot size and write the trailer magic (a "test" upgrade).
    #[arg(long)]
    pub pad: bool,
    /// Like --pad, and mark the image confirmed (image_ok = 1: a permanent upgrade).
    #[arg(long)]
    pub confirm: bool,
    /// Like --pad (image_ok left erased: a test upgrade).
    #[arg(long)]
    pub test: bool,
    /// Size the trailer for overwrite-only upgrades (no swap status area).
    #[arg(long)]
    pub overwrite_only: bool,
    /// Security counter (-s) in a protected SEC_CNT TLV: a number, or `auto` for
    /// MAJOR << 24 | MINOR << 16 | REVISION.
    #[arg(short = 's', long, value_name = "N|auto", value_parser = SecurityCounter::parse)]
    pub security_counter: Option<SecurityCounter>,
    /// Dependencies (-d) on other images: "(IMAGE_ID,VERSION), …", e.g. "(1,2.0.0+0)".
    #[arg(short = 'd', long, value_name = "DEPS")]
    pub dependencies: Option<String>,
    /// A protected vendor TLV: TAG (0xa0..0xfffe) and VALUE (0x-prefixed hex bytes, else text).
    /// Repeat for more.
    #[arg(long, num_args = 2, value_names = ["TAG", "VALUE"], action = clap::ArgAction::Append)]
    pub custom_tlv: Vec<String>,
    /// Put the key's hash (KEYHASH, default) or the whole public key (PUBKEY) in the image.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub public_key_format: Option<KeyFormatArg>,
    /// Use this signature (base64 DER, as --sig-out writes it) instead of signing.
    #[arg(
        long,
        value_name = "FILE",
        requires = "fix_sig_pubkey",
        conflicts_with = "key"
    )]
    pub fix_sig: Option<PathBuf>,
    /// Public key (PEM) that made the --fix-sig signature; the signature must verify with it.
    #[arg(long, value_name = "FILE")]
    pub fix_sig_pubkey: Option<PathBuf>,
    /// Also write the signature, base64 DER, to this file.
    #[arg(long, value_name = "FILE")]
    pub sig_out: Option<PathBuf>,
    /// Mark the image non-bootable.
    #[arg(long)]
    pub non_bootable: bool,
    /// Encrypt the payload for this device key, as imgtool's -E: its public half is enough
    /// (PEM; `getpub -e pem` of an enc-ec256 or enc-x25519 key). A fresh AES-128 key per image,
    /// wrapped with ECIES-P256 (TLV ENCEC256) or ECIES-X25519 (ENCX25519); the hash and the
    /// signature are over the plaintext. RSA-OAEP (ENCRSA2048) is not supported.
    #[arg(short = 'E', long, value_name = "FILE")]
    pub encrypt: Option<PathBuf>,
    /// With -E: everything of an encrypted image but the encryption itself (the payload stays
    /// plaintext), for programming the primary slot.
    #[arg(short = 'c', long, requires = "encrypt")]
    pub clear: bool,
    /// Derive the slot options from an Infineon flash map JSON, as Infineon's build does
    /// (explicit flags win). PSoC 6 maps follow its imgtool recipe:
    ///   -H 0x400 --pad-header  fixed (MCUBOOT_HEADER_SIZE)
    ///   -S                     primary slot size
    ///   -L                     primary slot offset in internal flash (sets RAM_LOAD)
    ///   -M                     max over both slots of ceil(size / erase size), at least 32
    ///   -R 0                   only if the secondary slot erases to 0x00 (PSoC 6 internal)
    ///   --align 8              the slots' write size
    ///   --overwrite-only       if the map's mode is overwrite (Infineon's PSoC 6 script
    ///                          leaves it off; that only makes its room check stricter)
    ///   -x                     primary slot address, for HEX output from a binary input
    /// XMC7000 maps (xmc7100_*, xmc7200_*) follow its cysecuretools 5.0.0 recipe:
    ///   -H 0x400 --pad-header -S <primary size> --align 8 -R 0xff --overwrite-only, no -L
    ///   (flags 0), -x primary slot address, and the header's _pad1 = the erased value
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    pub flashmap: Option<PathBuf>,
    /// Whose output to reproduce: imgtool, or cysecuretools (header _pad1 = the erased value;
    /// with --flashmap, its XMC7000 options too). Default: the flash map's platform decides
    /// (cysecuretools for XMC7000), imgtool without a map.
    #[arg(long, value_name = "SIGNER", value_parser = Recipe::parse)]
    pub recipe: Option<Recipe>,
    /// Platform of a PSoC 6 flash map whose file name does not start with its prefix
    /// (PSOC_062_2M, PSOC_062_1M, PSOC_062_512K).
    #[arg(long, value_name = "NAME", requires = "flashmap")]
    pub platform: Option<String>,
    /// Input image: .hex (Intel HEX, keeps its address) or raw binary.
    #[arg(value_name = "INFILE")]
    pub infile: PathBuf,
    /// Output image: .hex or raw binary.
    #[arg(value_name = "OUTFILE")]
    pub outfile: PathBuf,
}

/// `--public-key-format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyFormatArg {
    /// KEYHASH: SHA-256 of the public key.
    Hash,
    /// PUBKEY: the whole public key.
    Full,
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        // What was not typed is said, so a value from otactl.toml or OTACTL_KEY never goes into
        // an image unnoticed.
        for (long, origin) in &ctx.origins {
            log::info!("--{long} from {origin}");
        }
        self.args.run()
    }
}

impl SignArgs {
    fn run(self) -> Result<()> {
        let derived = match &self.flashmap {
            Some(p) => {
                let d = assemble::FlashmapOptions::read(p, self.platform.as_deref(), self.recipe)?;
                log::info!(
                    "{}: {}: {}",
                    p.display(),
                    d.recipe.describe(),
                    d.signer_args()
                );
                Some(d)
            }
            None => None,
        };
        let opts = self.options(derived.as_ref())?;
        let signer_key;
        let signer = match (&self.key, &self.fix_sig) {
            (Some(k), _) => {
                signer_key = otactl::sign::load_signing_key(k)?;
                Signer::Key(&signer_key)
            }
            (None, Some(sig)) => fixed_signer(sig, self.fix_sig_pubkey.as_deref())?,
            (None, None) => Signer::Unsigned,
        };
        check_key_pair(&signer, opts.encrypt.as_ref(), self.encrypt.as_deref())?;
        let input = Payload::read(&self.infile)?;
        let img = assemble::build(&opts, input, &signer)
            .with_context(|| format!("cannot sign {}", self.infile.display()))?;
        if let Some(d) = derived.as_ref() {
            let (limit, which) = match opts.encrypt {
                Some(_) => (d.bootloader_max_enc_image, " built with MCUBOOT_ENC_IMAGES"),
                None => (d.bootloader_max_image, ""),
            };
            if img.bytes.len() as u64 > u64::from(limit) {
                log::warn!(
                    "the image ({:#x} bytes) is larger than MCUboot{which} installs from this \
                     flash map ({limit:#x} bytes): it will refuse it",
                    img.bytes.len(),
                );
            }
        }
        let hex_addr = self.hex_addr.or(derived.as_ref().map(|d| d.hex_addr));
        self.write_outputs(&img, hex_addr)?;
        log::info!(
            "signed {} → {}: version {}, {} bytes of image, {} bytes free before the trailer, {}",
            self.infile.display(),
            self.outfile.display(),
            img.header.version,
            img.bytes.len(),
            img.free_bytes(),
            match (img.signature.is_some(), &opts.encrypt) {
                (true, None) => "signed".to_string(),
                (false, None) => "unsigned".to_string(),
                (s, Some(k)) => format!(
                    "{}, {} ({})",
                    if s { "signed" } else { "unsigned" },
                    if opts.clear {
                        "encryption-capable, payload in clear"
                    } else {
                        "encrypted"
                    },
                    k.scheme().display_name()
                ),
            }
        );
        Ok(())
    }

    /// Encodes everything first, then writes the image and `--sig-out` atomically.
    fn write_outputs(&self, img: &assemble::SignedImage, hex_addr: Option<u32>) -> Result<()> {
        use base64::Engine;
        let format = FileFormat::from_path(&self.outfile);
        let out = img
            .encode(format, hex_addr)
            .with_context(|| format!("cannot write {}", self.outfile.display()))?;
        let sig_b64 = match (&self.sig_out, &img.signature) {
            (Some(p), None) => bail!(
                "--sig-out {}: the image is not signed (pass -k or --fix-sig)",
                p.display()
            ),
            (_, sig) => sig
                .as_ref()
                .map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
        };
        fsutil::write_output(&self.outfile, &out)?;
        if let (Some(p), Some(b64)) = (&self.sig_out, sig_b64) {
            fsutil::write_output(p, b64.as_bytes())?;
        }
        Ok(())
    }

    /// The imgtool options from the flags (flash map derivation comes first, flags win).
    fn options(&self, d: Option<&assemble::FlashmapOptions>) -> Result<SignOptions> {
        let text = self
            .image_version
            .as_deref()
            .context("missing -v/--version (e.g. -v 1.2.3)")?;
        let version = Version::parse(text).map_err(|e| anyhow::anyhow!("-v {text:?}: {e}"))?;
        if self.endian.as_deref() == Some("big") {
            bail!("-e big is not supported: MCUboot targets here are little-endian");
        }
        let header_size = self
            .header_size
            .or(d.map(|d| d.header_size))
            .context("missing -H/--header-size (e.g. -H 0x400), or pass --flashmap")?;
        let slot_size = self
            .slot_size
            .or(d.map(|d| d.slot_size))
            .context("missing -S/--slot-size, or pass --flashmap")?;
        let mut o = SignOptions::new(version, header_size, slot_size);
        o.pad_header = self.pad_header || d.is_some_and(|d| d.pad_header);
        o.align = match &self.align {
            Some(a) => a.parse()?,
            None => d.map_or(1, |d| d.align),
        };
        o.max_align = self.max_align.as_deref().map(str::parse).transpose()?;
        o.max_sectors = self.max_sectors.or(d.map(|d| d.max_sectors)).unwrap_or(128);
        o.erased_val = match self.erased_val.as_deref() {
            Some("0") => 0,
            Some(_) => 0xff,
            None => d.map_or(0xff, |d| d.erased_val),
        };
        o.load_addr = self.load_addr.or(d.map(|d| d.load_addr)).unwrap_or(0);
        o.rom_fixed = self.rom_fixed;
        o.non_bootable = self.non_bootable;
        o.pad = self.pad;
        o.confirm = self.confirm;
        o.test = self.test;
        o.overwrite_only = self.overwrite_only || d.is_some_and(|d| d.overwrite_only);
        o.header_pad_erased = self
            .recipe
            .or(d.map(|d| d.recipe))
            .is_some_and(Recipe::header_pad_erased);
        self.protected_tlvs(&mut o)?;
        o.public_key_format = match self.public_key_format {
            Some(KeyFormatArg::Full) => PublicKeyFormat::Full,
            _ => PublicKeyFormat::Hash,
        };
        if let Some(p) = &self.encrypt {
            o.encrypt = Some(otactl::sign::enc::load_enc_key(p)?.public_key());
            o.clear = self.clear;
        }
        Ok(o)
    }

    /// `-s`, `-d` and `--custom-tlv`.
    fn protected_tlvs(&self, o: &mut SignOptions) -> Result<()> {
        o.security_counter = self.security_counter;
        if let Some(deps) = &self.dependencies {
            o.dependencies = parse_dependencies(deps).map_err(anyhow::Error::msg)?;
        }
        for pair in self.custom_tlv.chunks(2) {
            let tlv = parse_custom_tlv(&pair[0], &pair[1]).map_err(anyhow::Error::msg)?;
            if o.custom_tlvs.iter().any(|t| t.tag == tlv.tag) {
                bail!("custom TLV {:#x} given twice", tlv.tag);
            }
            o.custom_tlvs.push(tlv);
        }
        Ok(())
    }
}

/// imgtool's rule: a P-256 signing key goes with an ECIES-P256 encryption key, and P-384 or RSA
/// signing keys with encryption schemes otactl does not have (ECIES-P384, RSA-OAEP).
fn check_key_pair(
    signer: &Signer<'_>,
    enc: Option<&otactl::sign::enc::EncPublicKey>,
    enc_path: Option<&std::path::Path>,
) -> Result<()> {
    use ota_core::image::enc::EncScheme;
    let (Some(enc), Some(path)) = (enc, enc_path) else {
        return Ok(());
    };
    let kind = match signer {
        Signer::Key(k) => k.key_type(),
        Signer::Fixed { public_key, .. } => public_key.key_type(),
        Signer::Unsigned => return Ok(()),
    };
    let fits = match kind {
        KeyType::EcdsaP256 => enc.scheme() == EncScheme::EcP256,
        KeyType::Ed25519 => true,
        KeyType::EcdsaP384 | KeyType::Rsa2048 | KeyType::Rsa3072 => false,
    };
    if !fits {
        bail!(
            "-E {}: an {} key cannot encrypt an image signed with an {} key (imgtool and \
             MCUboot pair ECDSA P-256 signing with ECIES-P256 encryption, Ed25519 with either; \
             P-384 and RSA signing keys need ECIES-P384 or RSA-OAEP encryption, which otactl \
             does not support)",
            path.display(),
            enc.scheme().display_name(),
            kind.display_name()
        );
    }
    Ok(())
}

fn fixed_signer(
    sig: &std::path::Path,
    pubkey: Option<&std::path::Path>,
) -> Result<Signer<'static>> {
    use base64::Engine;
    let pubkey = pubkey.context("--fix-sig needs --fix-sig-pubkey")?;
    let text = fsutil::read(sig)?;
    let text: Vec<u8> = text
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .with_context(|| format!("{} is not base64", sig.display()))?;
    let public_key = Box::new(otactl::sign::load_key(pubkey)?.public_key());
    Ok(Signer::Fixed {
        signature,
        public_key,
    })
}
