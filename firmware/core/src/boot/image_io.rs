//! Reading images straight from a flash slot.

use embedded_storage::nor_flash::ReadNorFlash;

use crate::image::header::{ImageHeader, IMAGE_HEADER_SIZE};
use crate::image::tlv::TLV_INFO_MAGIC;
use crate::image::verify::ImageRead;

/// A slot on a [`ReadNorFlash`], seen as an [`ImageRead`] (for [`crate::image::verify::validate`]).
#[derive(Debug)]
pub struct FlashImage<'a, F> {
    flash: &'a mut F,
    size: u32,
}

impl<'a, F: ReadNorFlash> FlashImage<'a, F> {
    /// The first `size` bytes of `flash`.
    pub fn new(flash: &'a mut F, size: u32) -> Self {
        Self { flash, size }
    }
}

impl<F: ReadNorFlash> ImageRead for FlashImage<'_, F> {
    type Error = F::Error;

    fn capacity(&self) -> u32 {
        self.size
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), F::Error> {
        self.flash.read(offset, buf)
    }
}

/// The image's total size (end of its unprotected TLV area) if the slot starts with a
/// plausible header and TLV info, bounded by `limit`; `None` otherwise. No hashing.
///
/// # Errors
/// Flash read errors.
pub fn image_end<F: ReadNorFlash>(flash: &mut F, limit: u32) -> Result<Option<u32>, F::Error> {
    let mut hb = [0u8; IMAGE_HEADER_SIZE];
    flash.read(0, &mut hb)?;
    let Ok(h) = ImageHeader::parse(&hb) else {
        return Ok(None);
    };
    let u = h.unprotected_tlv_offset();
    if u + 4 > u64::from(limit) {
        return Ok(None);
    }
    let mut info = [0u8; 4];
    flash.read(u as u32, &mut info)?;
    if u16::from_le_bytes([info[0], info[1]]) != TLV_INFO_MAGIC {
        return Ok(None);
    }
    let end = u + u64::from(u16::from_le_bytes([info[2], info[3]]));
    Ok((end <= u64::from(limit)).then_some(end as u32))
}
