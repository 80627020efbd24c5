//! Host-side image assembly: what `imgtool sign` does, byte for byte.
//!
//! ```text
//! input (.bin, or .hex with its base address)
//!   → [--pad-header: H erased bytes in front]  header (32 bytes) written over the first 32
//!   → payload
//!   → protected TLVs (0x6908): SEC_CNT, DEPENDENCY…, custom TLVs      ┐ hashed (SHA-256)
//!   → unprotected TLVs (0x6907): SHA256|SHA384, KEYHASH|PUBKEY, sig    ┘ and signed
//!     [-E: + ENC_EC256|ENC_X25519; the payload, zero-padded to 16 bytes before hashing, is
//!      then AES-128-CTR encrypted: the hash and signature are over the plaintext]
//!   → [--pad: erased fill up to the slot size, trailer magic, image_ok with --confirm]
//! ```
//!
//! The layout types and encodings come from [`ota_core::image`]; this module adds files,
//! private keys and the checks a user needs before anything is written: the image must fit in
//! the slot with its trailer, the header must be large enough, a fixed signature must verify.
//! [`build`] never touches the file system, so a refused image leaves nothing behind.

use std::path::Path;

use ota_core::image::tlv::{self, TlvKind, TlvWriter, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use ota_core::image::{
    HashAlg, ImageFlags, ImageHash, ImageHeader, PublicKey, TrailerLayout, Version,
    IMAGE_HEADER_SIZE,
};

use crate::sign::enc::EncPublicKey;
use crate::sign::SigningKey;

mod check;
mod encrypt;
pub mod hex;
mod options;
mod output;
mod recipe;

pub use check::{
    decrypt_image, image_bytes, not_an_image, read_image_file, read_trailer, verify_image,
    verify_image_with, ImageFileError, InvalidImage, TrailerInfo,
};
pub use options::{
    parse_custom_tlv, parse_dependencies, parse_int, CustomTlv, Dependency, PublicKeyFormat,
    SecurityCounter,
};
pub use recipe::{FlashmapFileError, FlashmapOptions, Recipe};

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageBuildError {
    /// The header (+ TLVs + trailer) does not fit in the slot.
    #[error("image does not fit in the slot: header {header:#x} + payload {payload:#x} + TLVs {tlvs:#x} + trailer {trailer:#x} = {total:#x} bytes, but the slot (-S) is {slot:#x}: {over} bytes ({over:#x}) too large")]
    TooLarge {
        /// Header size.
        header: u32,
        /// Payload size.
        payload: u64,
        /// Both TLV areas.
        tlvs: u32,
        /// Trailer size for these options.
        trailer: u32,
        /// Sum of the above.
        total: u64,
        /// Slot size.
        slot: u32,
        /// By how many bytes.
        over: u64,
    },
    /// `-H` below 32 or above 0xffff.
    #[error("header size {0:#x} is invalid: it must be at least 0x20 (the 32-byte image header) and at most 0xffff")]
    HeaderSize(u32),
    /// Without `--pad-header` the input's first `-H` bytes must be zero.
    #[error("the input's first {0:#x} bytes are not all zero, so the header cannot go there; pass --pad-header to put the header in front of the input")]
    HeaderNotZero(u16),
    /// Input shorter than the header it should contain.
    #[error("the input ({len} bytes) is shorter than the header size {hdr:#x}; pass --pad-header")]
    InputTooShort {
        /// Input length.
        len: usize,
        /// `-H`.
        hdr: u16,
    },
    /// HEX input too low in memory to put the header in front.
    #[error("the HEX input starts at {base:#x}, below the header size {hdr:#x}: there is no room for the header in front of it")]
    NoRoomForHeader {
        /// Lowest address of the input.
        base: u32,
        /// `-H`.
        hdr: u16,
    },
    /// A payload of 4 GiB or more.
    #[error("the payload is larger than 4 GiB")]
    PayloadTooLarge,
    /// TLV encoding failed (an area over 64 KiB).
    #[error("TLV area: {0}")]
    Tlv(ota_core::image::ImageError),
    /// Both `-L` and `-F`.
    #[error("--load-addr and --rom-fixed cannot be used together")]
    LoadAndRomFixed,
    /// `--align` or `--max-align` not a supported value.
    #[error(
        "invalid alignment {0}: --align must be 1, 2, 4, 8, 16 or 32 and --max-align 8, 16 or 32"
    )]
    Align(u32),
    /// Slot size 0.
    #[error("slot size (-S) must be larger than 0")]
    SlotSize,
    /// A fixed signature that does not verify.
    #[error("the --fix-sig signature does not verify with the --fix-sig-pubkey key over this image (digest {digest}); the bootloader would reject it")]
    FixedSignatureInvalid {
        /// The image digest, hex.
        digest: String,
    },
    /// HEX output without an address.
    #[error("HEX output needs an address: the input is raw binary, so pass -x/--hex-addr")]
    NoHexAddress,
    /// HEX output beyond 4 GiB.
    #[error("HEX output would extend past address 0xffffffff")]
    HexAddressOverflow,
}

/// File format, chosen from the extension as imgtool does: `.hex` (any case) is Intel HEX,
/// everything else raw binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Raw bytes.
    Bin,
    /// Intel HEX text.
    Hex,
}

impl FileFormat {
    /// From a path's extension.
    #[must_use]
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("hex") => Self::Hex,
            _ => Self::Bin,
        }
    }
}

/// The input program: its bytes and, for HEX input, the address of the first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Contiguous bytes (HEX gaps filled with 0xff).
    pub data: Vec<u8>,
    /// Address of `data[0]` (HEX input only).
    pub base_addr: Option<u32>,
}

impl Payload {
    /// Reads a `.bin` or `.hex` file (by extension).
    ///
    /// # Errors
    /// I/O errors or malformed HEX, naming the file.
    pub fn read(path: &Path) -> Result<Self, ImageFileError> {
        let raw = read_with_room(path).map_err(ImageFileError::read(path))?;
        match FileFormat::from_path(path) {
            FileFormat::Bin => Ok(Self {
                data: raw,
                base_addr: None,
            }),
            FileFormat::Hex => {
                let (base, data) = hex::parse(&raw).map_err(ImageFileError::hex(path))?;
                Ok(Self {
                    data,
                    base_addr: Some(base),
                })
            }
        }
    }
}

/// Reads a whole file into a buffer with spare capacity for the largest header and the TLV
/// areas, so [`build`] grows it in place (the spare pages are never touched unless used).
fn read_with_room(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f
        .metadata()
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
    let mut v = Vec::with_capacity(len + usize::from(u16::MAX) + TLV_ROOM);
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// imgtool `sign` options (everything but the key and the files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// `-v`: image version.
    pub version: Version,
    /// `-H`: header size (payload offset).
    pub header_size: u32,
    /// `--pad-header`: put `header_size` erased bytes in front of the input.
    pub pad_header: bool,
    /// `-S`: slot size.
    pub slot_size: u32,
    /// `--align`: flash write size (1, 2, 4, 8, 16, 32).
    pub align: u32,
    /// `--max-align`: `BOOT_MAX_ALIGN` when it differs from `max(8, align)`.
    pub max_align: Option<u32>,
    /// `-M`: max image sectors (trailer status area size).
    pub max_sectors: u32,
    /// `-R`: erased value (0xff or 0x00).
    pub erased_val: u8,
    /// `-L`: load address (sets RAM_LOAD when non-zero).
    pub load_addr: u32,
    /// `-F`: ROM-fixed address (sets ROM_FIXED).
    pub rom_fixed: Option<u32>,
    /// `--non-bootable`.
    pub non_bootable: bool,
    /// `--pad`: pad to the slot size and write the trailer magic.
    pub pad: bool,
    /// `--confirm`: `--pad` plus image_ok = 1.
    pub confirm: bool,
    /// `--test`: `--pad` (image_ok left erased).
    pub test: bool,
    /// `--overwrite-only`: the smaller overwrite-only trailer.
    pub overwrite_only: bool,
    /// `-s`: protected SEC_CNT TLV.
    pub security_counter: Option<SecurityCounter>,
    /// `-d`: protected DEPENDENCY TLVs.
    pub dependencies: Vec<Dependency>,
    /// `--custom-tlv`: protected vendor TLVs, in order.
    pub custom_tlvs: Vec<CustomTlv>,
    /// `--public-key-format`.
    pub public_key_format: PublicKeyFormat,
    /// The header's `_pad1` (offset 28) holds the erased value, as cysecuretools writes it
    /// (imgtool writes 0).
    pub header_pad_erased: bool,
    /// `-E`: encrypt the payload for this key (ECIES-P256 or ECIES-X25519, AES-128-CTR).
    pub encrypt: Option<EncPublicKey>,
    /// `--clear`: with `encrypt`, everything an encrypted image has (flag, key TLV, padding)
    /// but the payload left in plaintext, for the primary slot.
    pub clear: bool,
}

impl SignOptions {
    /// imgtool's defaults for everything but the version, header size and slot size.
    #[must_use]
    pub fn new(version: Version, header_size: u32, slot_size: u32) -> Self {
        Self {
            version,
            header_size,
            pad_header: false,
            slot_size,
            align: 1,
            max_align: None,
            max_sectors: 128,
            erased_val: 0xff,
            load_addr: 0,
            rom_fixed: None,
            non_bootable: false,
            pad: false,
            confirm: false,
            test: false,
            overwrite_only: false,
            security_counter: None,
            dependencies: Vec::new(),
            custom_tlvs: Vec::new(),
            public_key_format: PublicKeyFormat::Hash,
            header_pad_erased: false,
            encrypt: None,
            clear: false,
        }
    }

    /// The trailer these options describe.
    ///
    /// # Errors
    /// [`ImageBuildError::Align`] for unsupported alignments.
    pub fn trailer(&self) -> Result<TrailerLayout, ImageBuildError> {
        if ![1, 2, 4, 8, 16, 32].contains(&self.align) {
            return Err(ImageBuildError::Align(self.align));
        }
        let mut t = TrailerLayout::new(
            self.slot_size,
            self.align,
            self.max_sectors,
            self.erased_val,
            self.overwrite_only,
        );
        if let Some(a) = self.max_align {
            if ![8, 16, 32].contains(&a) {
                return Err(ImageBuildError::Align(a));
            }
            t.max_align = a;
        }
        Ok(t.with_enc_keys(self.encrypt.is_some()))
    }

    /// Whether the output gets a trailer (`--pad`, `--confirm` or `--test`).
    #[must_use]
    pub fn padded(&self) -> bool {
        self.pad || self.confirm || self.test
    }

    fn flags(&self) -> u32 {
        let mut f = 0;
        if self.load_addr != 0 {
            f |= ImageFlags::RAM_LOAD;
        }
        if self.rom_fixed.is_some() {
            f |= ImageFlags::ROM_FIXED;
        }
        if self.non_bootable {
            f |= ImageFlags::NON_BOOTABLE;
        }
        if self.encrypt.is_some() {
            f |= ImageFlags::ENCRYPTED_AES128;
        }
        f
    }

    fn protected_tlvs(&self) -> Vec<(TlvKind, Vec<u8>)> {
        let mut v = Vec::new();
        if let Some(sc) = self.security_counter {
            v.push((
                TlvKind::SEC_CNT,
                sc.value(&self.version).to_le_bytes().to_vec(),
            ));
        }
        for d in &self.dependencies {
            v.push((TlvKind::DEPENDENCY, d.encode().to_vec()));
        }
        for c in &self.custom_tlvs {
            v.push((TlvKind(c.tag), c.value.clone()));
        }
        v
    }
}

/// Who signs.
#[derive(Clone, Debug)]
pub enum Signer<'a> {
    /// No key: header, payload and SHA256 TLV only.
    Unsigned,
    /// Sign with this private key (any [`ota_core::image::KeyType`]).
    Key(&'a SigningKey),
    /// `--fix-sig` / `--fix-sig-pubkey`: a signature made elsewhere, with its public key.
    Fixed {
        /// DER signature.
        signature: Vec<u8>,
        /// The key it was made with (boxed: an RSA key is 400 bytes).
        public_key: Box<PublicKey>,
    },
}

/// A built image, ready to be written as `.bin` or `.hex`.
#[derive(Clone, Debug)]
pub struct SignedImage {
    /// Header through the end of the unprotected TLV area (no trailer).
    pub bytes: Vec<u8>,
    /// Address of `bytes[0]` when the input was HEX (header included).
    pub base_addr: Option<u32>,
    /// The header that was written.
    pub header: ImageHeader,
    /// The digest of the hashed region (the SHA256 or SHA384 TLV).
    pub digest: ImageHash,
    /// The signature TLV's value, if signed.
    pub signature: Option<Vec<u8>>,
    /// Trailer geometry.
    pub trailer: TrailerLayout,
    /// Whether a trailer is written (`--pad`/`--confirm`/`--test`).
    pub padded: bool,
    /// Whether image_ok is set in the trailer (`--confirm`, not with `--overwrite-only`).
    pub confirmed: bool,
    /// Whether the image_ok record is written at all (`--confirm` or `--test`, swap modes).
    pub image_ok_record: bool,
}

/// Builds the image as `imgtool sign` would; nothing is written anywhere.
///
/// The payload is taken by value: its buffer becomes the image's (no copy of a slot-sized
/// buffer).
///
/// # Errors
/// [`ImageBuildError`] for every image that cannot work (see its variants).
pub fn build(
    opts: &SignOptions,
    input: Payload,
    signer: &Signer<'_>,
) -> Result<SignedImage, ImageBuildError> {
    let trailer = opts.trailer()?;
    if opts.slot_size == 0 {
        return Err(ImageBuildError::SlotSize);
    }
    if opts.load_addr != 0 && opts.rom_fixed.is_some() {
        return Err(ImageBuildError::LoadAndRomFixed);
    }
    let (mut bytes, base_addr) = place_header_space(opts, input)?;
    if opts.encrypt.is_some() {
        encrypt::pad_to_block(&mut bytes);
    }
    let hdr = opts.header_size as u16;
    let img_size = u32::try_from(bytes.len() - usize::from(hdr))
        .map_err(|_| ImageBuildError::PayloadTooLarge)?;
    let prot = opts.protected_tlvs();
    let prot_area = if prot.is_empty() {
        Vec::new()
    } else {
        encode_area(TLV_PROT_INFO_MAGIC, &prot)?
    };
    let header = ImageHeader {
        load_addr: opts.rom_fixed.unwrap_or(opts.load_addr),
        hdr_size: hdr,
        protect_tlv_size: prot_area.len() as u16,
        img_size,
        flags: ImageFlags(opts.flags()),
        version: opts.version,
    };
    bytes[..IMAGE_HEADER_SIZE].copy_from_slice(&header.to_bytes());
    if opts.header_pad_erased {
        bytes[IMAGE_HEADER_SIZE - 4..IMAGE_HEADER_SIZE].fill(opts.erased_val);
    }
    bytes.extend_from_slice(&prot_area);
    let digest = signer.hash_alg().digest(&bytes);

    let mut unprot: Vec<(TlvKind, Vec<u8>)> = vec![(digest.alg().tlv(), digest.to_vec())];
    let signature = sign(signer, &digest)?;
    if let Some((sig, public)) = &signature {
        unprot.push(match opts.public_key_format {
            PublicKeyFormat::Hash => (TlvKind::KEYHASH, public.keyhash_tlv().to_vec()),
            PublicKeyFormat::Full => (TlvKind::PUBKEY, public.public_bytes().to_vec()),
        });
        unprot.push((public.key_type().sig_tlv(), sig.clone()));
    }
    if let Some(pk) = &opts.encrypt {
        unprot.push(encrypt::encrypt_payload(
            pk,
            &mut bytes[usize::from(hdr)..usize::from(hdr) + img_size as usize],
            opts.clear,
        ));
    }
    let unprot_area = encode_area(TLV_INFO_MAGIC, &unprot)?;
    bytes.extend_from_slice(&unprot_area);
    check_fits(
        opts,
        &trailer,
        img_size,
        prot_area.len() + unprot_area.len(),
    )?;
    Ok(SignedImage {
        bytes,
        base_addr,
        header,
        digest,
        signature: signature.map(|s| s.0),
        trailer,
        padded: opts.padded(),
        confirmed: opts.confirm && !opts.overwrite_only,
        image_ok_record: (opts.confirm || opts.test) && !opts.overwrite_only,
    })
}

/// The input with room for the header at the start (its own buffer, grown in place), and the
/// output's base address.
fn place_header_space(
    opts: &SignOptions,
    input: Payload,
) -> Result<(Vec<u8>, Option<u32>), ImageBuildError> {
    let h = opts.header_size;
    if h < IMAGE_HEADER_SIZE as u32 || h > u32::from(u16::MAX) {
        return Err(ImageBuildError::HeaderSize(h));
    }
    let hdr = h as u16;
    let hu = usize::from(hdr);
    let Payload {
        data: mut v,
        base_addr,
    } = input;
    // Room for the header (with --pad-header) and the TLV areas: one reallocation at most.
    v.reserve(hu + TLV_ROOM);
    if opts.pad_header {
        let base = match base_addr {
            Some(b) if b < h => return Err(ImageBuildError::NoRoomForHeader { base: b, hdr }),
            Some(b) => Some(b - h),
            None => None,
        };
        let len = v.len();
        v.resize(len + hu, opts.erased_val);
        v.copy_within(..len, hu);
        v[..hu].fill(opts.erased_val);
        return Ok((v, base));
    }
    if v.len() < hu {
        return Err(ImageBuildError::InputTooShort { len: v.len(), hdr });
    }
    if v[..hu].iter().any(|b| *b != 0) {
        return Err(ImageBuildError::HeaderNotZero(hdr));
    }
    Ok((v, base_addr))
}

/// Bytes reserved after the payload for the TLV areas before any reallocation (signature, key
/// hash, digest and a few protected TLVs fit; more only cost one reallocation).
const TLV_ROOM: usize = 512;

fn encode_area(magic: u16, entries: &[(TlvKind, Vec<u8>)]) -> Result<Vec<u8>, ImageBuildError> {
    let mut buf = vec![0u8; tlv::area_len(entries.iter().map(|e| e.1.len()))];
    let mut w = TlvWriter::new(&mut buf, magic).map_err(ImageBuildError::Tlv)?;
    for (k, v) in entries {
        w.push(*k, v).map_err(ImageBuildError::Tlv)?;
    }
    let n = w.finish();
    buf.truncate(n);
    Ok(buf)
}

impl Signer<'_> {
    /// The image hash: the key's (SHA-384 for P-384), SHA-256 for unsigned images.
    #[must_use]
    pub fn hash_alg(&self) -> HashAlg {
        match self {
            Self::Unsigned => HashAlg::Sha256,
            Self::Key(k) => k.hash_alg(),
            Self::Fixed { public_key, .. } => public_key.key_type().hash_alg(),
        }
    }
}

fn sign(
    signer: &Signer<'_>,
    digest: &ImageHash,
) -> Result<Option<(Vec<u8>, PublicKey)>, ImageBuildError> {
    Ok(match signer {
        Signer::Unsigned => None,
        Signer::Key(k) => Some((k.sign(digest), k.public_key())),
        Signer::Fixed {
            signature,
            public_key,
        } => {
            if !public_key.verify(digest, signature) {
                return Err(ImageBuildError::FixedSignatureInvalid {
                    digest: hex_string(digest),
                });
            }
            Some((signature.clone(), **public_key))
        }
    })
}

fn check_fits(
    opts: &SignOptions,
    trailer: &TrailerLayout,
    img_size: u32,
    tlvs: usize,
) -> Result<(), ImageBuildError> {
    let total = u64::from(opts.header_size)
        + u64::from(img_size)
        + tlvs as u64
        + u64::from(trailer.trailer_size());
    if total > u64::from(opts.slot_size) {
        return Err(ImageBuildError::TooLarge {
            header: opts.header_size,
            payload: u64::from(img_size),
            tlvs: tlvs as u32,
            trailer: trailer.trailer_size(),
            total,
            slot: opts.slot_size,
            over: total - u64::from(opts.slot_size),
        });
    }
    Ok(())
}

/// Lower-case hex of bytes.
#[must_use]
pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
