//! Checking an image file as MCUboot would (`otactl verify`), with reasons a user can act on.

use std::io;
use std::path::{Path, PathBuf};

use ota_core::image::enc::{Decrypting, EncPrivateKey, ImageKey};
use ota_core::image::trailer;
use ota_core::image::verify::{self, OutOfBounds, VerifiedImage, VerifyError};
use ota_core::image::{
    FlagState, ImageError, ImageFlags, ImageHeader, MagicState, ParsedImage, PublicKey, SwapType,
    TlvKind, TrailerLayout,
};

use super::{hex, hex_string, FileFormat};

/// An input file (an application to sign, an image to check) that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A `.hex` file (or text starting with `:`) that is not Intel HEX.
    #[error("{} is not valid Intel HEX", path.display())]
    Hex {
        /// The file.
        path: PathBuf,
        /// The record that is wrong.
        #[source]
        source: hex::HexError,
    },
}

impl ImageFileError {
    pub(super) fn read(path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Read { path, source }
    }

    pub(super) fn hex(path: &Path) -> impl FnOnce(hex::HexError) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Hex { path, source }
    }
}

/// An image that MCUboot would not accept, and why, in one line a user can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidImage(String);

impl From<String> for InvalidImage {
    fn from(why: String) -> Self {
        Self(why)
    }
}

impl From<&str> for InvalidImage {
    fn from(why: &str) -> Self {
        Self(why.to_owned())
    }
}

/// Reads an image file: raw binary, or Intel HEX converted to bytes from its lowest address, as
/// `imgtool verify` does (see [`image_bytes`]).
///
/// # Errors
/// I/O errors and malformed HEX, naming the file.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, ImageFileError> {
    let raw = std::fs::read(path).map_err(ImageFileError::read(path))?;
    image_bytes(path, raw).map_err(ImageFileError::hex(path))
}

/// The image in a file's contents `raw`: Intel HEX (a `.hex` name, or text whose first record
/// starts with `:`, which no MCUboot image does) becomes the bytes from its lowest address on
/// (the image header; gaps 0xff, as `intelhex` fills them), so the signed `.hex` that `otactl
/// sign` writes gives the same bytes as its `.bin`. Anything else is returned as is.
///
/// # Errors
/// Malformed HEX.
pub fn image_bytes(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, hex::HexError> {
    let hex_text = raw.trim_ascii_start().first() == Some(&b':');
    if FileFormat::from_path(path) == FileFormat::Hex || hex_text {
        hex::parse(&raw).map(|(_, data)| data)
    } else {
        Ok(raw)
    }
}

/// Why `bytes` are not an MCUboot image at all, in words (`None` when they start with an image
/// header): what the file looks like instead and what to do.
#[must_use]
pub fn not_an_image(bytes: &[u8]) -> Option<String> {
    let what = match ImageHeader::parse(bytes) {
        Err(ImageError::TooShortForHeader) => format!(
            "it is only {} bytes long, too short for an image header",
            bytes.len()
        ),
        Err(ImageError::BadMagic(_)) if bytes.starts_with(b"\x7fELF") => {
            "it is an ELF file (the linker's output), not the signed .bin or .hex".to_owned()
        }
        Err(ImageError::BadMagic(_)) if bytes.trim_ascii_start().starts_with(b"-----BEGIN") => {
            "it is a PEM file (a key or certificate)".to_owned()
        }
        Err(ImageError::BadMagic(_)) => "it does not start with an MCUboot image header".to_owned(),
        _ => return None,
    };
    Some(format!(
        "not a signed MCUboot image: {what}; sign the application's .bin or .hex with `otactl \
         sign` and use its output"
    ))
}

/// Validates `image` (hash; with `keys`, key hash and signature).
///
/// # Errors
/// The reason it is invalid, as one line: the [`VerifyError`] plus, for a hash mismatch, the
/// computed and recorded hashes, and for an unknown key, the image's and the given key hashes.
pub fn verify_image(image: &[u8], keys: &[PublicKey]) -> Result<VerifiedImage, InvalidImage> {
    verify_image_with(image, keys, None)
}

/// [`verify_image`] of an image that may be encrypted: with `enc`, an image flagged
/// `ENCRYPTED_AES128` is read through the key it carries for `enc` (as MCUboot validates the
/// secondary slot); without it, such an image fails with a hint to pass the key.
///
/// # Errors
/// As [`verify_image`], and the key cannot be recovered (another device's key, no TLV).
pub fn verify_image_with(
    image: &[u8],
    keys: &[PublicKey],
    enc: Option<&EncPrivateKey>,
) -> Result<VerifiedImage, InvalidImage> {
    let mut r: &[u8] = image;
    let cap = r.len().min(u32::MAX as usize) as u32;
    let encrypted =
        ImageHeader::parse(image).is_ok_and(|h| h.flags.contains(ImageFlags::ENCRYPTED_AES128));
    match (enc, encrypted) {
        (Some(k), true) => {
            let header = ImageHeader::parse(image).map_err(|e| e.to_string())?;
            let key = image_key(image, &header, k)?;
            let mut d = Decrypting::new(r, &key, &header);
            Ok(verify::validate(&mut d, cap, keys).map_err(|e| e.to_string())?)
        }
        _ => Ok(verify::validate(&mut r, cap, keys).map_err(|e| {
            let why = explain(&e, image, keys);
            match (e, encrypted) {
                (VerifyError::HashMismatch, true) => format!(
                    "{why}; the image is encrypted (ENCRYPTED_AES128): its hash is over the \
                     plaintext, so pass --enc-key with the device's private encryption key to \
                     check it"
                ),
                _ => why,
            }
        })?),
    }
}

/// The AES key of an encrypted image, unwrapped with the device key `enc`.
fn image_key(
    image: &[u8],
    header: &ImageHeader,
    enc: &EncPrivateKey,
) -> Result<ImageKey, InvalidImage> {
    enc.image_key(&mut &image[..], header)
        .map_err(|e| match e {
            Ok(e) => format!(
                "cannot decrypt with the {} key: {e}",
                enc.scheme().display_name()
            ),
            Err(OutOfBounds) => "the image is truncated".to_string(),
        })
        .map_err(InvalidImage)
}

/// The plaintext of an encrypted image: header and TLVs as stored, the payload decrypted with
/// the key it carries for `enc` (what the bootloader writes into the primary slot).
///
/// # Errors
/// Not an encrypted image, a malformed one, or one encrypted for another key.
pub fn decrypt_image(image: &[u8], enc: &EncPrivateKey) -> Result<Vec<u8>, InvalidImage> {
    let parsed = ParsedImage::parse(image).map_err(|e| e.to_string())?;
    let header = parsed.header;
    if !header.flags.contains(ImageFlags::ENCRYPTED_AES128) {
        return Err("the image is not encrypted (no ENCRYPTED_AES128 flag)".into());
    }
    let key = image_key(image, &header, enc)?;
    let mut out = parsed.bytes.to_vec();
    let start = usize::from(header.hdr_size);
    key.apply(0, &mut out[start..start + header.img_size as usize]);
    Ok(out)
}

fn explain(e: &VerifyError<OutOfBounds>, image: &[u8], keys: &[PublicKey]) -> String {
    let parsed = ParsedImage::parse(image).ok();
    let tlv = |kind| {
        parsed
            .as_ref()
            .and_then(|p| p.find(kind))
            .map(|t| hex_string(t.value))
    };
    if let (VerifyError::Format(_), Some(words)) = (e, not_an_image(image)) {
        return words;
    }
    match e {
        VerifyError::HashMismatch => {
            let u = parsed
                .as_ref()
                .map_or(0, |p| p.header.unprotected_tlv_offset() as usize);
            format!(
                "{e} (computed {}, SHA256 TLV holds {})",
                hex_string(&crate::sign::sha256(&image[..u.min(image.len())])),
                tlv(TlvKind::SHA256).unwrap_or_default()
            )
        }
        VerifyError::UnknownKey => {
            let given: Vec<String> = keys.iter().map(|k| hex_string(&k.key_hash())).collect();
            let image_key = tlv(TlvKind::KEYHASH)
                .map(|h| format!("KEYHASH {h}"))
                .or_else(|| tlv(TlvKind::PUBKEY).map(|k| format!("PUBKEY {k}")))
                .unwrap_or_default();
            format!(
                "{e}: image has {image_key}, given key hash {}",
                given.join(", ")
            )
        }
        _ => e.to_string(),
    }
}

/// The trailer of a padded image file (one whose length is the slot size), decoded as MCUboot
/// would read it from a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrailerInfo {
    /// The geometry guessed from the file: slot size = file length; `A` from the magic.
    pub layout: TrailerLayout,
    /// Magic state.
    pub magic: MagicState,
    /// `image_ok` byte and state.
    pub image_ok: (u8, FlagState),
    /// `copy_done` byte and state.
    pub copy_done: (u8, FlagState),
    /// `swap_info` byte and its decoded swap type and image number.
    pub swap_info: (u8, SwapType, u8),
    /// `swap_size` (u32).
    pub swap_size: u32,
    /// Whether the AES key fields of slot 0 and slot 1 (`MCUBOOT_ENC_IMAGES`, swap modes; see
    /// [`TrailerLayout::enc_key_off`]) hold anything: MCUboot writes the keys of a swap there
    /// in clear and leaves them. Meaningful for encrypted images only.
    pub enc_keys_written: [bool; 2],
}

/// Decodes the trailer at the end of `file` when the file extends past the image (`image_end`),
/// as a `--pad`ded image does. `A` is taken from the magic (8 unless the magic says otherwise);
/// the erased value is the byte right after the image, unless `erased_val` is given.
#[must_use]
pub fn read_trailer(file: &[u8], image_end: usize, erased_val: Option<u8>) -> Option<TrailerInfo> {
    let len = u32::try_from(file.len()).ok()?;
    if file.len() <= image_end || file.len() < 16 {
        return None;
    }
    let last: [u8; 16] = file[file.len() - 16..].try_into().ok()?;
    let max_align = if last == trailer::MAGIC_ALIGN8 {
        8
    } else if last[2..] == trailer::MAGIC_TAIL_OTHER {
        match u16::from_le_bytes([last[0], last[1]]) {
            a @ (16 | 32) => u32::from(a),
            _ => 8,
        }
    } else {
        8
    };
    let erased = erased_val.unwrap_or(file[image_end]);
    let mut layout = TrailerLayout::new(len, 8, 128, erased, false);
    layout.max_align = max_align;
    if len < 4 * max_align + layout.magic_area_size() {
        return None;
    }
    // The states come from the one trailer decoder; the raw bytes are shown beside them.
    let st = trailer::TrailerState::decode(&layout, file);
    let byte = |off: u32| file[off as usize];
    Some(TrailerInfo {
        layout,
        magic: st.magic,
        image_ok: (byte(layout.image_ok_off()), st.image_ok),
        copy_done: (byte(layout.copy_done_off()), st.copy_done),
        swap_info: (byte(layout.swap_info_off()), st.swap_info.0, st.swap_info.1),
        swap_size: st.swap_size,
        enc_keys_written: [0, 1].map(|slot| {
            let off = layout.with_enc_keys(true).enc_key_off(slot) as usize;
            off >= image_end
                && file
                    .get(off..off + 16)
                    .is_some_and(|k| k.iter().any(|b| *b != erased))
        }),
    })
}
