//! An image held in memory, split into header, payload and TLV areas (for `otactl info`, the
//! publisher and tests). Parsing is total: malformed input is an [`ImageError`], never a panic.

use super::header::ImageHeader;
use super::tlv::{TlvArea, TlvIter, TlvKind};
use super::ImageError;

/// An image in memory, split into its parts (for `otactl info` and the publisher).
#[derive(Clone, Copy, Debug)]
pub struct ParsedImage<'a> {
    /// The header.
    pub header: ImageHeader,
    /// The whole image from offset 0 to the end of the unprotected TLV area.
    pub bytes: &'a [u8],
    /// The protected TLV area, if any.
    pub protected: Option<TlvArea<'a>>,
    /// The unprotected TLV area.
    pub unprotected: TlvArea<'a>,
}

impl<'a> ParsedImage<'a> {
    /// Splits `data` (which may extend past the image, e.g. a padded file) into its parts.
    ///
    /// # Errors
    /// [`ImageError`] for a bad header, truncation or malformed TLV areas (entries included).
    pub fn parse(data: &'a [u8]) -> Result<Self, ImageError> {
        let header = ImageHeader::parse(data)?;
        let protected = if header.protect_tlv_size == 0 {
            None
        } else {
            let area = TlvArea::locate(data, header.tlv_offset(), true)?;
            if area.bytes.len() != usize::from(header.protect_tlv_size) {
                return Err(ImageError::ProtectedSizeMismatch {
                    header: header.protect_tlv_size,
                    area: area.bytes.len() as u16,
                });
            }
            Some(area)
        };
        let unprotected = TlvArea::locate(data, header.unprotected_tlv_offset(), false)?;
        let end = unprotected.offset as usize + unprotected.bytes.len();
        let parsed = Self {
            header,
            bytes: &data[..end],
            protected,
            unprotected,
        };
        for tlv in parsed.tlvs() {
            tlv?;
        }
        Ok(parsed)
    }

    /// The payload (`[hdr_size, hdr_size + img_size)`).
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        let start = usize::from(self.header.hdr_size);
        &self.bytes[start..start + self.header.img_size as usize]
    }

    /// Total image size: end of the unprotected TLV area.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a parsed image has at least a header and a TLV area.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// All TLVs, protected first.
    pub fn tlvs(&self) -> impl Iterator<Item = Result<super::Tlv<'a>, ImageError>> {
        let prot: Option<TlvIter<'a>> = self.protected.map(|a| a.iter());
        prot.into_iter().flatten().chain(self.unprotected.iter())
    }

    /// The first TLV of `kind`.
    #[must_use]
    pub fn find(&self, kind: TlvKind) -> Option<super::Tlv<'a>> {
        self.tlvs().filter_map(Result::ok).find(|t| t.kind == kind)
    }
}
