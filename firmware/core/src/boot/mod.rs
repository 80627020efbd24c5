//! MCUboot-equivalent bootloader logic: decide the swap type, install an update by swapping
//! (through the scratch area) or overwriting, revert an image that did not confirm itself, and
//! resume any of that after a reset at any point.
//!
//! # What a board calls on each boot
//!
//! ```text
//! let mut bl = BootLoader::new(config, &mut primary, &mut secondary, Some(&mut scratch))?;
//! let outcome = bl.boot()?;          // finishes/starts swaps, validates the primary
//! jump_to(outcome.image);            // the primary slot now holds a valid image
//! ```
//!
//! The application (see [`app`]) marks a downloaded image with [`app::set_pending`] and, after
//! a healthy start, confirms the running image with [`app::set_confirmed`].
//!
//! # On-flash state
//!
//! Trailer fields are MCUboot's ([`crate::image::trailer`]): `magic`, `image_ok`, `copy_done`,
//! `swap_info`, `swap_size` at the end of each slot, and one `W`-byte status record per swap
//! step at the start of the trailer (`status_off`), in the primary slot.
//!
//! # Swap using scratch, step by step
//!
//! The image region `[0, swap_size)` is cut into *units* (the larger erase sector of the two
//! slots) and processed from the highest unit down. An image may be as large as MCUboot
//! allows ([`crate::flashmap::FlashMap::max_image_size`]), so its last unit may also hold the
//! slots' trailers (the *trailer unit*, at `T` = [`crate::flashmap::FlashMap::trailer_sector_off`]).
//! Trailer bytes are never swapped: only the unit's image bytes move, and while that unit is
//! swapped its status lives in the scratch area's own trailer (one unit's records plus the
//! fields), as in MCUboot.
//!
//! | step | flash work | then |
//! | --- | --- | --- |
//! | init (`Revert` only, image below `T`) | if the secondary trailer is not `Good`+`image_ok`: erase its trailer sectors, write `image_ok`, `swap_info` = `Revert`, `magic` | an interrupted revert is found again by the table (row 2, `Perm`, read as `Revert` thanks to `swap_info`; MCUboot `fixup_revert`) |
//! | init (image below `T`) | erase primary trailer sectors; write `swap_info`, `image_ok` (if the secondary's was set, or `Revert`), `swap_size`, `magic` last | |
//! | init (image reaching `T`) | erase the scratch area; write the same fields into its trailer, `magic` last; the primary trailer stays as it is | |
//! | unit `j`, state 1 | erase scratch; copy secondary unit → scratch | record `j*3+0` |
//! | unit `j`, state 2 | (`j == 0`: erase the secondary's trailer sectors); erase secondary unit; copy primary unit → secondary | record `j*3+1` |
//! | unit `j`, state 3 | erase primary unit; copy scratch → primary unit | record `j*3+2` |
//! | trailer unit, state 1 | copy its secondary image bytes → scratch | scratch record 0 |
//! | trailer unit, state 2 | erase the secondary's trailer sectors; copy the primary's image bytes → secondary | scratch record 1 |
//! | trailer unit, state 3 | erase the primary's trailer sectors; copy scratch → primary; write records 0 and 1, the fields and the magic into the primary trailer | record 2 (primary) |
//! | end | erase the scratch trailer if it is not erased; `Perm`/`Revert`: `image_ok` = 1; then `copy_done` = 1 | |
//!
//! On boot, the swap in progress is read from the primary trailer once it holds the trailer
//! unit's records (or for an image below `T`), else from the scratch trailer (magic `Good`,
//! `copy_done` unset, at least one record), else nothing is in progress (MCUboot's
//! `swap_status_source`). With some records written and the secondary magic *not* `Good`,
//! it resumes at the next step (each step is idempotent: it starts with an erase, or follows
//! one) and then does the end writes. Otherwise (no records, or the secondary trailer still
//! intact, which also covers a primary trailer whose erase was interrupted) the table decides
//! again from scratch; no slot data has changed at that point. A `Test` image then sits in
//! the primary with `copy_done` set and `image_ok` unset: unless the application confirms it,
//! the next boot matches row 3 of the table and swaps back (`Revert`).
//!
//! # Overwrite-only
//!
//! Erase the primary sectors the image needs and the primary trailer sectors, copy the image,
//! write the primary magic, then erase the secondary's first sector and its trailer sectors. A
//! reset before that last step simply restarts the copy on the next boot.
//!
//! # Encrypted images (feature `enc`)
//!
//! As MCUboot with `MCUBOOT_ENC_IMAGES`: the secondary slot holds the image as it was
//! downloaded (payload encrypted, see [`crate::image::enc`]); the bootloader unwraps the
//! image's AES key with [`BootConfig::enc_key`], validates the secondary through it (the hash
//! is over the plaintext) and decrypts while copying, so the primary slot holds the plaintext
//! (header flag and TLVs unchanged). An image it cannot decrypt (no key, another device's key)
//! is refused like an invalid one and the old image keeps running. In swap mode (which needs a
//! map with [`FlashMap::enc_images`]: the trailers hold the two AES keys) the image leaving the
//! primary is encrypted again as it moves into the secondary, so the secondary only ever holds
//! ciphertext, and a revert decrypts the old image again; an interrupted swap resumes with the
//! keys recorded in its status trailer (see the module docs of `boot/swap.rs`).

pub mod app;
#[cfg(feature = "enc")]
mod decrypt;
pub mod image_io;
mod overwrite;
mod swap;
pub mod swap_type;

use embedded_storage::nor_flash::NorFlash;

use crate::flashmap::{Area, AreaKind, FlashMap, FlashMapError, UpgradeMode};
use crate::image::align_down;
use crate::image::trailer::{SwapType, TrailerLayout, TrailerState};
use crate::image::verify::{validate, PublicKey, VerifiedImage, VerifyError};
pub use image_io::FlashImage;

/// Bootloader settings.
#[derive(Clone, Copy, Debug)]
pub struct BootConfig<'k> {
    /// The flash map (must pass [`FlashMap::validate_for_boot`]).
    pub map: FlashMap,
    /// Trusted signing keys; empty = hash-only validation (unsigned images).
    pub keys: &'k [PublicKey],
    /// `MCUBOOT_DOWNGRADE_PREVENTION`: refuse a `Test`/`Perm` image older than the primary.
    pub downgrade_prevention: bool,
    /// (feature `enc`) The device's private decryption key (`MCUBOOT_ENC_IMAGES`): an
    /// encrypted secondary image is validated and installed through it. Without it (or with a
    /// key the image was not encrypted for) an encrypted image is refused.
    #[cfg(feature = "enc")]
    pub enc_key: Option<&'k crate::image::enc::EncPrivateKey>,
}

/// Bootloader errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum BootError<E> {
    /// A flash operation on `area` failed.
    Flash {
        /// The area.
        area: AreaKind,
        /// The driver's error.
        error: E,
    },
    /// The flash map is not usable.
    Map(FlashMapError),
    /// Swap mode without a scratch flash.
    NoScratch,
    /// Swap mode with a decryption key ([`BootConfig::enc_key`]) on a map without
    /// [`FlashMap::enc_images`]: the trailers have no room for the AES keys.
    EncKeysNotInMap,
    /// The primary slot holds no valid image after all upgrade work: nothing to boot.
    NoBootableImage(VerifyError<E>),
    /// A trailer holds a value MCUboot would refuse (e.g. `set_pending` on a bad magic).
    Corrupted(AreaKind),
}

impl<E: core::fmt::Debug> core::fmt::Display for BootError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Flash { area, error } => write!(f, "flash error in {area}: {error:?}"),
            Self::Map(e) => write!(f, "flash map: {e}"),
            Self::NoScratch => f.write_str("swap mode needs a scratch flash"),
            Self::EncKeysNotInMap => f.write_str(
                "swap mode with a decryption key needs a flash map with enc_images \
                 (MCUBOOT_ENC_IMAGES trailers hold the AES keys)",
            ),
            Self::NoBootableImage(e) => write!(f, "no bootable image in the primary slot: {e}"),
            Self::Corrupted(a) => write!(f, "{a} trailer is corrupted"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: core::fmt::Debug> std::error::Error for BootError<E> {}

/// What one call of [`BootLoader::boot`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOutcome {
    /// The upgrade operation performed (or finished) on this boot; `None` if nothing.
    pub swap_type: SwapType,
    /// Whether an interrupted swap was resumed.
    pub resumed: bool,
    /// The validated image in the primary slot, to jump to.
    pub image: VerifiedImage,
}

/// The bootloader over three flashes: primary, secondary and (swap mode) scratch, each
/// addressed from the start of its area. All three share one error type.
pub struct BootLoader<'a, 'k, P, S, X> {
    cfg: BootConfig<'k>,
    primary: &'a mut P,
    secondary: &'a mut S,
    scratch: Option<&'a mut X>,
}

type Res<T, E> = Result<T, BootError<E>>;

impl<'a, 'k, E, P, S, X> BootLoader<'a, 'k, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    /// Checks the map and wraps the flashes.
    ///
    /// # Errors
    /// [`BootError::Map`], [`BootError::NoScratch`] or [`BootError::EncKeysNotInMap`].
    pub fn new(
        cfg: BootConfig<'k>,
        primary: &'a mut P,
        secondary: &'a mut S,
        scratch: Option<&'a mut X>,
    ) -> Res<Self, E> {
        cfg.map.validate_for_boot().map_err(BootError::Map)?;
        if cfg.map.mode == UpgradeMode::Swap && scratch.is_none() {
            return Err(BootError::NoScratch);
        }
        #[cfg(feature = "enc")]
        if cfg.map.mode == UpgradeMode::Swap && cfg.enc_key.is_some() && !cfg.map.enc_images {
            return Err(BootError::EncKeysNotInMap);
        }
        Ok(Self {
            cfg,
            primary,
            secondary,
            scratch,
        })
    }

    /// Runs one boot: resume or start any upgrade work, then validate the primary image.
    ///
    /// # Errors
    /// Flash errors (including power loss mid-way: call `boot` again after the reset), or
    /// [`BootError::NoBootableImage`].
    pub fn boot(&mut self) -> Res<BootOutcome, E> {
        let (swap_type, resumed) = match self.cfg.map.mode {
            UpgradeMode::Swap => self.boot_swap()?,
            UpgradeMode::Overwrite => (self.boot_overwrite()?, false),
        };
        let image = self
            .validate_slot(AreaKind::Primary)?
            .map_err(|e| match e {
                VerifyError::Read(error) => BootError::Flash {
                    area: AreaKind::Primary,
                    error,
                },
                e => BootError::NoBootableImage(e),
            })?;
        Ok(BootOutcome {
            swap_type,
            resumed,
            image,
        })
    }

    /// The trailer state of a slot (or of the scratch area's trailer).
    ///
    /// # Errors
    /// Flash read errors.
    pub fn slot_state(&mut self, slot: AreaKind) -> Res<TrailerState, E> {
        let layout = self.layout(slot);
        TrailerState::read_with(&layout, |off, buf| self.read(slot, off, buf))
    }

    /// The trailer layout of a slot; for the scratch area, its one-unit trailer
    /// ([`FlashMap::scratch_trailer`]).
    pub(crate) fn layout(&self, slot: AreaKind) -> TrailerLayout {
        match slot {
            AreaKind::Scratch => self.cfg.map.scratch_trailer(),
            _ => self.cfg.map.trailer_for(&self.area(slot)),
        }
    }

    pub(crate) fn area(&self, kind: AreaKind) -> Area {
        match kind {
            AreaKind::Secondary => self.cfg.map.secondary,
            AreaKind::Scratch => self.cfg.map.scratch.unwrap_or(self.cfg.map.primary),
            _ => self.cfg.map.primary,
        }
    }

    /// Validates the image in a slot; the outer error is a flash error, the inner the verdict.
    fn validate_slot(&mut self, slot: AreaKind) -> Res<Result<VerifiedImage, VerifyError<E>>, E> {
        let limit = self.cfg.map.max_image_size();
        let keys = self.cfg.keys;
        let r = match slot {
            AreaKind::Secondary => {
                #[cfg(feature = "enc")]
                if let Some(r) = self.validate_encrypted_secondary(limit)? {
                    return Ok(r);
                }
                validate(&mut FlashImage::new(self.secondary, limit), limit, keys)
            }
            _ => validate(&mut FlashImage::new(self.primary, limit), limit, keys),
        };
        Ok(r)
    }

    /// Validates the secondary for `ty` (and applies downgrade prevention); on failure erases
    /// its header sector and trailer sectors so it never triggers again.
    fn secondary_acceptable(&mut self, ty: SwapType) -> Res<bool, E> {
        let ok = match self.validate_slot(AreaKind::Secondary)? {
            Ok(img) => {
                let downgrade = self.cfg.downgrade_prevention
                    && matches!(ty, SwapType::Test | SwapType::Perm)
                    && self.primary_version()?.is_some_and(|p| {
                        img.header.version.cmp_without_build(&p) == core::cmp::Ordering::Less
                    });
                !downgrade
            }
            Err(VerifyError::Read(error)) => {
                return Err(BootError::Flash {
                    area: AreaKind::Secondary,
                    error,
                })
            }
            Err(_) => false,
        };
        if !ok {
            fw_warn!("secondary image rejected; scrambling it");
            let es = self.cfg.map.secondary.erase_size;
            self.erase(AreaKind::Secondary, 0, es)?;
            self.scramble_trailer(AreaKind::Secondary)?;
        }
        Ok(ok)
    }

    /// The version of the primary image, if it is a valid image. An interrupted overwrite
    /// leaves a torn header whose "version" means nothing: downgrade prevention must not
    /// refuse the update that repairs it.
    fn primary_version(&mut self) -> Res<Option<crate::image::Version>, E> {
        match self.validate_slot(AreaKind::Primary)? {
            Ok(img) => Ok(Some(img.header.version)),
            Err(VerifyError::Read(error)) => Err(BootError::Flash {
                area: AreaKind::Primary,
                error,
            }),
            Err(_) => Ok(None),
        }
    }

    // ---- flash helpers, tagged with the area for errors ----

    pub(crate) fn read(&mut self, area: AreaKind, off: u32, buf: &mut [u8]) -> Res<(), E> {
        let r = match area {
            AreaKind::Secondary => self.secondary.read(off, buf),
            AreaKind::Scratch => match self.scratch.as_mut() {
                Some(x) => x.read(off, buf),
                None => return Err(BootError::NoScratch),
            },
            _ => self.primary.read(off, buf),
        };
        r.map_err(|error| BootError::Flash { area, error })
    }

    pub(crate) fn write(&mut self, area: AreaKind, off: u32, data: &[u8]) -> Res<(), E> {
        let r = match area {
            AreaKind::Secondary => self.secondary.write(off, data),
            AreaKind::Scratch => match self.scratch.as_mut() {
                Some(x) => x.write(off, data),
                None => return Err(BootError::NoScratch),
            },
            _ => self.primary.write(off, data),
        };
        r.map_err(|error| BootError::Flash { area, error })
    }

    pub(crate) fn erase(&mut self, area: AreaKind, from: u32, to: u32) -> Res<(), E> {
        let r = match area {
            AreaKind::Secondary => self.secondary.erase(from, to),
            AreaKind::Scratch => match self.scratch.as_mut() {
                Some(x) => x.erase(from, to),
                None => return Err(BootError::NoScratch),
            },
            _ => self.primary.erase(from, to),
        };
        r.map_err(|error| BootError::Flash { area, error })
    }

    /// Erases the sectors of `slot` (or of the scratch area) that hold trailer bytes.
    pub(crate) fn scramble_trailer(&mut self, slot: AreaKind) -> Res<(), E> {
        let area = self.area(slot);
        let from = match slot {
            AreaKind::Scratch => align_down(self.layout(slot).status_off(), area.erase_size),
            _ => self.cfg.map.trailer_sector_off(&area),
        };
        self.erase(slot, from, area.size)
    }

    /// Copies `[src_off, src_off+len)` of `src` to `dst_off` of `dst` (len a multiple of the
    /// write size; destination erased).
    pub(crate) fn copy(
        &mut self,
        src: AreaKind,
        src_off: u32,
        dst: AreaKind,
        dst_off: u32,
        len: u32,
    ) -> Res<(), E> {
        self.copy_with(src, src_off, dst, dst_off, len, |_, _| {})
    }

    /// [`Self::copy`], passing each chunk through `f(destination offset, chunk)` before it is
    /// written (feature `enc`: the AES keystream).
    pub(crate) fn copy_with(
        &mut self,
        src: AreaKind,
        src_off: u32,
        dst: AreaKind,
        dst_off: u32,
        len: u32,
        mut f: impl FnMut(u32, &mut [u8]),
    ) -> Res<(), E> {
        let mut buf = [0u8; COPY_BUF];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(COPY_BUF as u32);
            let chunk = &mut buf[..n as usize];
            self.read(src, src_off + done, chunk)?;
            f(dst_off + done, chunk);
            self.write(dst, dst_off + done, chunk)?;
            done += n;
        }
        Ok(())
    }

    /// Writes an `A`-sized flag record (`value`, then erased padding).
    pub(crate) fn write_flag(&mut self, slot: AreaKind, off: u32, value: u8) -> Res<(), E> {
        let (rec, n) = self.layout(slot).flag_record(value);
        self.write(slot, off, &rec[..n])
    }

    /// Writes the trailer magic (padded to `align_up(16, A)` with the erased value).
    pub(crate) fn write_magic(&mut self, slot: AreaKind) -> Res<(), E> {
        let layout = self.layout(slot);
        let size = layout.magic_area_size();
        let mut rec = [layout.erased_val; 32];
        let n = size as usize;
        rec[n - 16..n].copy_from_slice(&layout.magic());
        self.write(slot, layout.slot_size - size, &rec[..n])
    }
}

/// Copy buffer size (a multiple of every supported write size).
const COPY_BUF: usize = 512;

/// The largest trailer info area: `4·A + align_up(16, A)` for `A = 32`.
pub(crate) const MAX_INFO: usize = 4 * 32 + 32;
