//! Writing a [`SignedImage`]: raw binary (with `--pad`, erased fill and trailer up to the slot
//! size) or Intel HEX (with `--pad`, only the trailer records imgtool writes).

use std::borrow::Cow;

use super::{hex, FileFormat, ImageBuildError, SignedImage};

impl SignedImage {
    /// Bytes from the end of the image to the start of the trailer (room left in the slot).
    #[must_use]
    pub fn free_bytes(&self) -> u64 {
        u64::from(self.trailer.max_image_size()).saturating_sub(self.bytes.len() as u64)
    }

    /// The raw binary output: the image, and with `--pad` the erased fill and trailer up to the
    /// slot size.
    #[must_use]
    pub fn to_bin(&self) -> Vec<u8> {
        if !self.padded {
            return self.bytes.clone();
        }
        let t = &self.trailer;
        let mut out = Vec::with_capacity(t.slot_size as usize);
        out.extend_from_slice(&self.bytes);
        out.resize(t.slot_size as usize - 16, t.erased_val);
        out.extend_from_slice(&t.magic());
        if self.confirmed {
            out[t.image_ok_off() as usize] = ota_core::image::trailer::FLAG_SET;
        }
        out
    }

    /// The Intel HEX output: the image at its base address (`hex_addr` overrides it) and, with
    /// `--pad`, only the trailer records imgtool writes (image_ok with `--confirm`/`--test`, then
    /// the magic), with no erased fill.
    ///
    /// # Errors
    /// [`ImageBuildError::NoHexAddress`] when there is no address, or an address overflow.
    pub fn to_hex(&self, hex_addr: Option<u32>) -> Result<Vec<u8>, ImageBuildError> {
        let base = u64::from(
            hex_addr
                .or(self.base_addr)
                .ok_or(ImageBuildError::NoHexAddress)?,
        );
        let t = &self.trailer;
        let end = base + self.bytes.len() as u64;
        let slot_end = base + u64::from(t.slot_size);
        if end.max(if self.padded { slot_end } else { 0 }) > 1 << 32 {
            return Err(ImageBuildError::HexAddressOverflow);
        }
        let (rec, n) = t.flag_record(if self.confirmed {
            ota_core::image::trailer::FLAG_SET
        } else {
            t.erased_val
        });
        let magic = t.magic();
        let mut segs: Vec<(u64, &[u8])> = vec![(base, &self.bytes)];
        if self.padded {
            if self.image_ok_record {
                segs.push((base + u64::from(t.image_ok_off()), &rec[..n]));
            }
            segs.push((base + u64::from(t.magic_off()), &magic));
        }
        Ok(hex::write(&segs))
    }

    /// The output for `format`.
    ///
    /// # Errors
    /// See [`Self::to_hex`].
    pub fn encode(
        &self,
        format: FileFormat,
        hex_addr: Option<u32>,
    ) -> Result<Cow<'_, [u8]>, ImageBuildError> {
        match format {
            FileFormat::Bin if !self.padded => Ok(Cow::Borrowed(&self.bytes)),
            FileFormat::Bin => Ok(Cow::Owned(self.to_bin())),
            FileFormat::Hex => self.to_hex(hex_addr).map(Cow::Owned),
        }
    }
}
