//! The 32-byte MCUboot image header and the image version.
//!
//! | off | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0x00 | 4 | `ih_magic` | [`IMAGE_MAGIC`] `0x96f3b83d` |
//! | 0x04 | 4 | `ih_load_addr` | load address (RAM_LOAD / ROM_FIXED), else 0 |
//! | 0x08 | 2 | `ih_hdr_size` | offset of the payload (`-H`) |
//! | 0x0A | 2 | `ih_protect_tlv_size` | protected TLV area size incl. its info header, or 0 |
//! | 0x0C | 4 | `ih_img_size` | payload size |
//! | 0x10 | 4 | `ih_flags` | [`ImageFlags`] |
//! | 0x14 | 1 | `iv_major` | [`Version`] |
//! | 0x15 | 1 | `iv_minor` | |
//! | 0x16 | 2 | `iv_revision` | |
//! | 0x18 | 4 | `iv_build_num` | |
//! | 0x1C | 4 | `_pad1` | 0 (imgtool); the erased value ×4 (cysecuretools, Infineon's XMC7000 signer) |
//!
//! All fields little-endian. MCUboot never reads `_pad1`, but it is hashed and signed.

use super::ImageError;

/// `IMAGE_MAGIC`: the first four bytes of every MCUboot image (`3d b8 f3 96` on flash).
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// Size of the packed header structure.
pub const IMAGE_HEADER_SIZE: usize = 32;
// magic + load_addr + hdr_size + protect_tlv_size + img_size + flags + version (8) + pad
const _: () = assert!(IMAGE_HEADER_SIZE == 4 + 4 + 2 + 2 + 4 + 4 + 8 + 4);

/// Image version: `major.minor.revision+build_num`.
///
/// Ordering compares all four fields in that order. MCUboot itself compares only major, minor
/// and revision unless `MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER` is set: use
/// [`Version::cmp_without_build`] for that rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Version {
    /// `iv_major`.
    pub major: u8,
    /// `iv_minor`.
    pub minor: u8,
    /// `iv_revision`.
    pub revision: u16,
    /// `iv_build_num`.
    pub build_num: u32,
}

/// Why a version string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionError {
    /// Not of the form `major[.minor[.revision[+build]]]` with plain decimals.
    Syntax,
    /// A leading zero (`01`), which imgtool refuses.
    LeadingZero,
    /// A part is larger than its field (major/minor 255, revision 65535, build 4294967295).
    OutOfRange,
}

impl core::fmt::Display for VersionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Syntax => "expected major[.minor[.revision[+build]]], e.g. 1.2.3+4",
            Self::LeadingZero => "version parts may not have leading zeros",
            Self::OutOfRange => "version part out of range (major/minor ≤ 255, revision ≤ 65535, build ≤ 4294967295)",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VersionError {}

fn parse_part(s: &str, max: u32) -> Result<u32, VersionError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionError::Syntax);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(VersionError::LeadingZero);
    }
    let v: u64 = s.parse().map_err(|_| VersionError::OutOfRange)?;
    if v > u64::from(max) {
        return Err(VersionError::OutOfRange);
    }
    // v ≤ max ≤ u32::MAX
    Ok(v as u32)
}

impl Version {
    /// A version with build number 0.
    #[must_use]
    pub const fn new(major: u8, minor: u8, revision: u16) -> Self {
        Self {
            major,
            minor,
            revision,
            build_num: 0,
        }
    }

    /// Parses imgtool's `-v` syntax: `major[.minor[.revision[+build]]]`; missing parts are 0.
    ///
    /// # Errors
    /// [`VersionError`] when the text does not match or a part is out of range.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let (main, build) = match text.split_once('+') {
            Some((m, b)) => (m, Some(b)),
            None => (text, None),
        };
        let mut parts = main.split('.');
        let major = parse_part(parts.next().unwrap_or(""), 255)?;
        let minor = parts.next().map(|p| parse_part(p, 255)).transpose()?;
        let revision = parts.next().map(|p| parse_part(p, 65535)).transpose()?;
        if parts.next().is_some() || (build.is_some() && revision.is_none()) {
            return Err(VersionError::Syntax);
        }
        let build_num = build.map(|b| parse_part(b, u32::MAX)).transpose()?;
        Ok(Self {
            major: major as u8,
            minor: minor.unwrap_or(0) as u8,
            revision: revision.unwrap_or(0) as u16,
            build_num: build_num.unwrap_or(0),
        })
    }

    /// MCUboot's default comparison: major, then minor, then revision; the build is ignored.
    #[must_use]
    pub fn cmp_without_build(&self, other: &Self) -> core::cmp::Ordering {
        (self.major, self.minor, self.revision).cmp(&(other.major, other.minor, other.revision))
    }

    /// The 8 bytes stored at header offset 0x14.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.major;
        b[1] = self.minor;
        b[2..4].copy_from_slice(&self.revision.to_le_bytes());
        b[4..8].copy_from_slice(&self.build_num.to_le_bytes());
        b
    }

    /// `-s auto` security counter: `major << 24 | minor << 16 | revision`.
    #[must_use]
    pub fn auto_security_counter(&self) -> u32 {
        (u32::from(self.major) << 24) | (u32::from(self.minor) << 16) | u32::from(self.revision)
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}.{}.{}+{}",
            self.major, self.minor, self.revision, self.build_num
        )
    }
}

/// `ih_flags` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ImageFlags(pub u32);

impl ImageFlags {
    /// `IMAGE_F_PIC` (unsupported by MCUboot).
    pub const PIC: u32 = 0x01;
    /// `IMAGE_F_ENCRYPTED_AES128`.
    pub const ENCRYPTED_AES128: u32 = 0x04;
    /// `IMAGE_F_ENCRYPTED_AES256`.
    pub const ENCRYPTED_AES256: u32 = 0x08;
    /// `IMAGE_F_NON_BOOTABLE`: the bootloader refuses to boot it.
    pub const NON_BOOTABLE: u32 = 0x10;
    /// `IMAGE_F_RAM_LOAD`: set by imgtool whenever `-L` is non-zero.
    pub const RAM_LOAD: u32 = 0x20;
    /// `IMAGE_F_ROM_FIXED`.
    pub const ROM_FIXED: u32 = 0x100;
    /// `IMAGE_F_COMPRESSED_LZMA1`.
    pub const COMPRESSED_LZMA1: u32 = 0x200;
    /// `IMAGE_F_COMPRESSED_LZMA2`.
    pub const COMPRESSED_LZMA2: u32 = 0x400;
    /// `IMAGE_F_COMPRESSED_ARM_THUMB`.
    pub const COMPRESSED_ARM_THUMB: u32 = 0x800;

    /// Known flag bits and their MCUboot names.
    pub const NAMES: [(u32, &'static str); 9] = [
        (Self::PIC, "PIC"),
        (Self::ENCRYPTED_AES128, "ENCRYPTED_AES128"),
        (Self::ENCRYPTED_AES256, "ENCRYPTED_AES256"),
        (Self::NON_BOOTABLE, "NON_BOOTABLE"),
        (Self::RAM_LOAD, "RAM_LOAD"),
        (Self::ROM_FIXED, "ROM_FIXED"),
        (Self::COMPRESSED_LZMA1, "COMPRESSED_LZMA1"),
        (Self::COMPRESSED_LZMA2, "COMPRESSED_LZMA2"),
        (Self::COMPRESSED_ARM_THUMB, "COMPRESSED_ARM_THUMB"),
    ];

    /// Whether every bit of `bit` is set.
    #[must_use]
    pub const fn contains(self, bit: u32) -> bool {
        self.0 & bit == bit
    }

    /// Names of the set flags (unknown bits are skipped).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(b, _)| self.contains(*b))
            .map(|(_, n)| n)
    }
}

/// The decoded 32-byte image header (magic implied); layout in the [module docs](self).
#[doc(alias = "image_header")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ImageHeader {
    /// `ih_load_addr`.
    pub load_addr: u32,
    /// `ih_hdr_size`: where the payload starts.
    pub hdr_size: u16,
    /// `ih_protect_tlv_size`: protected TLV area size including its info header, or 0.
    pub protect_tlv_size: u16,
    /// `ih_img_size`: payload size in bytes.
    pub img_size: u32,
    /// `ih_flags`.
    pub flags: ImageFlags,
    /// `ih_ver`.
    pub version: Version,
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl ImageHeader {
    /// Decodes the header at the start of `bytes`.
    ///
    /// # Errors
    /// [`ImageError::TooShortForHeader`], [`ImageError::BadMagic`] or
    /// [`ImageError::HeaderSizeTooSmall`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        let b = bytes
            .get(..IMAGE_HEADER_SIZE)
            .ok_or(ImageError::TooShortForHeader)?;
        let magic = le32(b, 0);
        if magic != IMAGE_MAGIC {
            return Err(ImageError::BadMagic(magic));
        }
        let hdr = Self {
            load_addr: le32(b, 4),
            hdr_size: le16(b, 8),
            protect_tlv_size: le16(b, 10),
            img_size: le32(b, 12),
            flags: ImageFlags(le32(b, 16)),
            version: Version {
                major: b[20],
                minor: b[21],
                revision: le16(b, 22),
                build_num: le32(b, 24),
            },
        };
        if usize::from(hdr.hdr_size) < IMAGE_HEADER_SIZE {
            return Err(ImageError::HeaderSizeTooSmall(hdr.hdr_size));
        }
        Ok(hdr)
    }

    /// Encodes the header as the 32 bytes MCUboot reads.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; IMAGE_HEADER_SIZE] {
        let mut b = [0u8; IMAGE_HEADER_SIZE];
        b[0..4].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.load_addr.to_le_bytes());
        b[8..10].copy_from_slice(&self.hdr_size.to_le_bytes());
        b[10..12].copy_from_slice(&self.protect_tlv_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.img_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.0.to_le_bytes());
        b[20..28].copy_from_slice(&self.version.to_bytes());
        b
    }

    /// Offset of the first TLV area (protected if present): `hdr_size + img_size`.
    #[must_use]
    pub fn tlv_offset(&self) -> u64 {
        u64::from(self.hdr_size) + u64::from(self.img_size)
    }

    /// Offset of the unprotected TLV area `U`: the end of the hashed region.
    #[must_use]
    pub fn unprotected_tlv_offset(&self) -> u64 {
        self.tlv_offset() + u64::from(self.protect_tlv_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parse_imgtool_forms() {
        assert_eq!(
            Version::parse("1.2.3+4"),
            Ok(Version {
                major: 1,
                minor: 2,
                revision: 3,
                build_num: 4
            })
        );
        assert_eq!(Version::parse("1"), Ok(Version::new(1, 0, 0)));
        assert_eq!(Version::parse("1.1"), Ok(Version::new(1, 1, 0)));
        assert_eq!(Version::parse("0.0.0"), Ok(Version::new(0, 0, 0)));
        assert_eq!(Version::parse("01.0.0"), Err(VersionError::LeadingZero));
        assert_eq!(Version::parse("1.2+3"), Err(VersionError::Syntax));
        assert_eq!(Version::parse("1.2.3.4"), Err(VersionError::Syntax));
        assert_eq!(Version::parse("256.0.0"), Err(VersionError::OutOfRange));
        assert_eq!(Version::parse("v1.0.0"), Err(VersionError::Syntax));
        assert_eq!(Version::parse(""), Err(VersionError::Syntax));
    }

    #[test]
    fn header_matches_vector_v01() {
        // v01 header bytes from spec/mcuboot.md §1.
        let bytes: [u8; 32] = [
            0x3d, 0xb8, 0xf3, 0x96, 0x00, 0x80, 0x02, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x20, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        ];
        let h = ImageHeader::parse(&bytes).unwrap();
        assert_eq!(h.load_addr, 0x28000);
        assert_eq!(h.hdr_size, 0x400);
        assert_eq!(h.img_size, 0x10000);
        assert!(h.flags.contains(ImageFlags::RAM_LOAD));
        assert_eq!(h.version, Version::new(1, 1, 0));
        assert_eq!(h.to_bytes(), bytes);
    }
}
