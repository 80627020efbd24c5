//! Encrypted secondary images (feature `enc`): unwrapping their key and validating them
//! through it (MCUboot's `boot_enc_load` and `bootutil_img_hash` for the secondary slot).

use embedded_storage::nor_flash::NorFlash;

use super::{image_io::FlashImage, BootError, BootLoader, Res};
use crate::flashmap::{AreaKind, UpgradeMode};
use crate::image::enc::{apply_to_payload, Decrypting, ImageKey};
use crate::image::header::{ImageFlags, ImageHeader, IMAGE_HEADER_SIZE};
use crate::image::verify::{validate, VerifiedImage, VerifyError};

impl<E, P, S, X> BootLoader<'_, '_, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    /// The secondary image's header if it is flagged `ENCRYPTED_AES128`.
    fn encrypted_secondary_header(&mut self) -> Res<Option<ImageHeader>, E> {
        let mut hb = [0u8; IMAGE_HEADER_SIZE];
        self.read(AreaKind::Secondary, 0, &mut hb)?;
        Ok(ImageHeader::parse(&hb)
            .ok()
            .filter(|h| h.flags.contains(ImageFlags::ENCRYPTED_AES128)))
    }

    /// The AES key of an encrypted secondary image: `None` for a plain image, `Some(None)` when
    /// this bootloader cannot decrypt it (no key, a key exchange for another key, swap mode).
    pub(super) fn secondary_image_key(
        &mut self,
    ) -> Res<Option<Option<(ImageKey, ImageHeader)>>, E> {
        let Some(header) = self.encrypted_secondary_header()? else {
            return Ok(None);
        };
        let Some(enc) = self.cfg.enc_key else {
            fw_warn!("secondary image is encrypted and this bootloader has no decryption key");
            return Ok(Some(None));
        };
        if self.cfg.map.mode != UpgradeMode::Overwrite {
            fw_warn!("secondary image is encrypted: only overwrite-only upgrades decrypt");
            return Ok(Some(None));
        }
        let limit = self.cfg.map.max_image_size();
        match enc.image_key(&mut FlashImage::new(self.secondary, limit), &header) {
            Ok(key) => Ok(Some(Some((key, header)))),
            Err(Err(error)) => Err(BootError::Flash {
                area: AreaKind::Secondary,
                error,
            }),
            Err(Ok(e)) => {
                fw_warn!("cannot decrypt the secondary image: {}", e);
                Ok(Some(None))
            }
        }
    }

    /// Validates an encrypted secondary image through its key; `None` for a plain image.
    pub(super) fn validate_encrypted_secondary(
        &mut self,
        limit: u32,
    ) -> Res<Option<Result<VerifiedImage, VerifyError<E>>>, E> {
        let keys = self.cfg.keys;
        Ok(match self.secondary_image_key()? {
            None => None,
            Some(None) => Some(Err(VerifyError::Encrypted)),
            Some(Some((key, header))) => {
                let flash = FlashImage::new(self.secondary, limit);
                Some(validate(
                    &mut Decrypting::new(flash, &key, &header),
                    limit,
                    keys,
                ))
            }
        })
    }

    /// Copies `[0, len)` of the secondary to the primary, decrypting the payload of an
    /// encrypted image (destination erased; `len` a multiple of the write size).
    pub(super) fn copy_secondary_to_primary(&mut self, len: u32) -> Res<(), E> {
        let Some(Some((key, header))) = self.secondary_image_key()? else {
            return self.copy(AreaKind::Secondary, 0, AreaKind::Primary, 0, len);
        };
        let start = u32::from(header.hdr_size);
        let end = start.saturating_add(header.img_size);
        let mut buf = [0u8; super::COPY_BUF];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(super::COPY_BUF as u32);
            let chunk = &mut buf[..n as usize];
            self.read(AreaKind::Secondary, done, chunk)?;
            apply_to_payload(&key, start, end, done, chunk);
            self.write(AreaKind::Primary, done, chunk)?;
            done += n;
        }
        Ok(())
    }
}
