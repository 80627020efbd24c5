//! Encrypted images (feature `enc`): unwrapping their key and validating them through it
//! (MCUboot's `boot_enc_load` and `bootutil_img_hash` for the secondary slot), decrypting them
//! into the primary slot, and, in swap mode, the AES keys a swap keeps in its status trailer
//! and the copies that decrypt into the primary and encrypt out of it (`boot_copy_region`).

use embedded_storage::nor_flash::NorFlash;

use super::{image_io::FlashImage, BootError, BootLoader, Res};
use crate::flashmap::AreaKind::{self, Primary, Scratch, Secondary};
use crate::image::enc::{apply_to_payload, Decrypting, ImageKey, AES_KEY_LEN};
use crate::image::header::{ImageFlags, ImageHeader, IMAGE_HEADER_SIZE};
use crate::image::verify::{validate, VerifiedImage, VerifyError};

/// The AES keys a swap works with (MCUboot's `bs->enckey`): index 0 for the image leaving the
/// primary slot (encrypted on its way into the secondary), 1 for the image leaving the
/// secondary (decrypted on its way into the primary); `None` for a plain image.
#[derive(Clone, Debug, Default)]
pub(super) struct SwapKeys([Option<ImageKey>; 2]);

/// What a swap's copies do to each image's payload: the key and the payload range
/// `[hdr_size, hdr_size + img_size)` of the image leaving the primary (0) and of the one
/// leaving the secondary (1), for images flagged `ENCRYPTED_AES128` whose key is known.
#[derive(Clone, Debug, Default)]
pub(super) struct SwapCrypt([Option<(ImageKey, u32, u32)>; 2]);

impl<E, P, S, X> BootLoader<'_, '_, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    /// The header at the start of `area` if it is flagged `ENCRYPTED_AES128`.
    fn encrypted_header(&mut self, area: AreaKind) -> Res<Option<ImageHeader>, E> {
        let mut hb = [0u8; IMAGE_HEADER_SIZE];
        self.read(area, 0, &mut hb)?;
        Ok(ImageHeader::parse(&hb)
            .ok()
            .filter(|h| h.flags.contains(ImageFlags::ENCRYPTED_AES128)))
    }

    /// The AES key of an encrypted image in `slot` (primary or secondary): `None` for a plain
    /// image, `Some(None)` when this bootloader cannot decrypt it (no key, a key exchange for
    /// another key).
    fn slot_image_key(
        &mut self,
        slot: AreaKind,
    ) -> Res<Option<Option<(ImageKey, ImageHeader)>>, E> {
        let Some(header) = self.encrypted_header(slot)? else {
            return Ok(None);
        };
        let Some(enc) = self.cfg.enc_key else {
            fw_warn!(
                "{} image is encrypted and this bootloader has no decryption key",
                slot
            );
            return Ok(Some(None));
        };
        let limit = self.cfg.map.max_image_size();
        let r = match slot {
            Secondary => enc.image_key(&mut FlashImage::new(self.secondary, limit), &header),
            _ => enc.image_key(&mut FlashImage::new(self.primary, limit), &header),
        };
        match r {
            Ok(key) => Ok(Some(Some((key, header)))),
            Err(Err(error)) => Err(BootError::Flash { area: slot, error }),
            Err(Ok(e)) => {
                fw_warn!("cannot decrypt the {} image: {}", slot, e);
                Ok(Some(None))
            }
        }
    }

    /// The AES key of an encrypted secondary image (see [`Self::slot_image_key`]).
    pub(super) fn secondary_image_key(
        &mut self,
    ) -> Res<Option<Option<(ImageKey, ImageHeader)>>, E> {
        self.slot_image_key(Secondary)
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
        let crypt = match self.secondary_image_key()? {
            Some(Some((key, h))) => Some(payload_of(key, &h)),
            _ => None,
        };
        self.copy_applying(Secondary, 0, Primary, 0, len, crypt.as_ref())
    }

    /// Copies `[src_off, src_off + len)` of `src` to `dst_off` of `dst`, applying the keystream
    /// of `crypt` (key, payload start, payload end) to the bytes in the payload; offsets in the
    /// image are those of the destination (MCUboot's `off_dst`).
    fn copy_applying(
        &mut self,
        src: AreaKind,
        src_off: u32,
        dst: AreaKind,
        dst_off: u32,
        len: u32,
        crypt: Option<&(ImageKey, u32, u32)>,
    ) -> Res<(), E> {
        let Some((key, start, end)) = crypt else {
            return self.copy(src, src_off, dst, dst_off, len);
        };
        self.copy_with(src, src_off, dst, dst_off, len, |off, chunk| {
            apply_to_payload(key, *start, *end, off, chunk);
        })
    }

    // ---- swap mode ----

    /// At the start of a swap: the AES keys of the two images, unwrapped from their ENC TLVs.
    /// An encrypted image whose key cannot be unwrapped gets none (the secondary's was refused
    /// by validation already; the primary's then moves as it is).
    pub(super) fn image_keys(&mut self) -> Res<SwapKeys, E> {
        let mut keys = SwapKeys::default();
        for (i, slot) in [Primary, Secondary].into_iter().enumerate() {
            keys.0[i] = self.slot_image_key(slot)?.flatten().map(|(k, _)| k);
        }
        Ok(keys)
    }

    /// Writes the keys into the (erased) status trailer of `area`, each padded to
    /// `align_up(16, A)` with the erased value; an absent key leaves its field erased.
    pub(super) fn write_swap_keys(&mut self, area: AreaKind, keys: &SwapKeys) -> Res<(), E> {
        let layout = self.layout(area);
        if layout.enc_keys_size() == 0 {
            return Ok(());
        }
        let n = layout.enc_keys_size() as usize / 2;
        for (slot, key) in (0u32..).zip(&keys.0) {
            if let Some(key) = key {
                let mut rec = [layout.erased_val; 32];
                rec[..AES_KEY_LEN].copy_from_slice(key.as_bytes());
                self.write(area, layout.enc_key_off(slot), &rec[..n])?;
                use p256::elliptic_curve::zeroize::Zeroize;
                rec.zeroize();
            }
        }
        Ok(())
    }

    /// Reads the keys back from the status trailer of `area` (MCUboot's `boot_read_enc_key`):
    /// a field that is all erased (or all 0xff, as MCUboot writes "no key") holds none.
    pub(super) fn read_swap_keys(&mut self, area: AreaKind) -> Res<SwapKeys, E> {
        let layout = self.layout(area);
        let mut keys = SwapKeys::default();
        if layout.enc_keys_size() == 0 {
            return Ok(keys);
        }
        for (slot, key) in (0u32..).zip(keys.0.iter_mut()) {
            let mut b = [0u8; AES_KEY_LEN];
            self.read(area, layout.enc_key_off(slot), &mut b)?;
            let none = b.iter().all(|x| *x == layout.erased_val) || b.iter().all(|x| *x == 0xff);
            if !none {
                *key = Some(ImageKey::new(b));
            }
            use p256::elliptic_curve::zeroize::Zeroize;
            b.zeroize();
        }
        Ok(keys)
    }

    /// What the remaining copies of a swap at record `done` (of `units` units) do to each
    /// image: the payload range comes from the image's header where the swap has put it by now
    /// (MCUboot's `boot_read_image_header`): the headers sit in the first unit, processed
    /// last; its state 1 moves the secondary's header to the scratch area, its state 2 the
    /// primary's to the secondary.
    pub(super) fn swap_crypt(
        &mut self,
        keys: &SwapKeys,
        done: u32,
        units: u32,
    ) -> Res<SwapCrypt, E> {
        let last = units.saturating_sub(1) * 3;
        let places = [
            if done > last + 1 { Secondary } else { Primary },
            if done > last { Scratch } else { Secondary },
        ];
        let mut crypt = SwapCrypt::default();
        for (i, (area, key)) in places.into_iter().zip(&keys.0).enumerate() {
            if let Some(key) = key {
                if let Some(h) = self.encrypted_header(area)? {
                    crypt.0[i] = Some(payload_of(key.clone(), &h));
                }
            }
        }
        Ok(crypt)
    }

    /// A copy of a swap step: out of the primary the payload of the image leaving it is
    /// encrypted, into the primary that of the image leaving the secondary is decrypted, any
    /// other copy (secondary → scratch) moves the bytes as they are.
    pub(super) fn swap_copy(
        &mut self,
        src: AreaKind,
        src_off: u32,
        dst: AreaKind,
        dst_off: u32,
        len: u32,
        crypt: &SwapCrypt,
    ) -> Res<(), E> {
        let which = match (src == Primary, dst == Primary) {
            (true, false) => crypt.0[0].as_ref(),
            (false, true) => crypt.0[1].as_ref(),
            _ => None,
        };
        self.copy_applying(src, src_off, dst, dst_off, len, which)
    }
}

/// The key and payload range of an image with header `h`.
fn payload_of(key: ImageKey, h: &ImageHeader) -> (ImageKey, u32, u32) {
    let start = u32::from(h.hdr_size);
    (key, start, start.saturating_add(h.img_size))
}
