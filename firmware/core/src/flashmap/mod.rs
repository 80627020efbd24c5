//! Flash maps: where the bootloader, the two image slots, the scratch area and the swap-status
//! area live, with the geometry of the flash that holds each of them.
//!
//! A [`FlashMap`] is plain data and `const`-constructible, so a device port writes its map as a
//! `const` and checks it with [`FlashMap::validate`] (in a test, or at start-up). Host tools
//! parse Infineon's JSON flash maps (feature `serde`, module [`infineon`]).
//!
//! ```text
//! FlashMap
//! ├── bootloader  Area  (never touched by boot/agent)
//! ├── primary     Area  slot 0: the image that runs
//! ├── secondary   Area  slot 1: where the agent downloads
//! ├── scratch     Option<Area>  swap-scratch temporary area (swap mode)
//! ├── status      Option<Area>  Infineon's swap-status partition (parsed and checked, unused:
//! │                             our bootloader keeps MCUboot's upstream in-trailer status)
//! ├── mode        UpgradeMode   Swap or Overwrite
//! └── internal_base  u32        start of internal flash (for imgtool's `-L` offset)
//! ```
//!
//! Every [`Area`] carries the geometry of its flash: erase size, erased value, write size and
//! whether it is internal or external. Addresses are absolute (as in Infineon's files).

#[cfg(feature = "serde")]
pub mod infineon;

use crate::image::trailer::TrailerLayout;
use crate::image::{align_down, align_up};

/// Which flash device an area sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Device {
    /// The MCU's internal flash.
    Internal,
    /// External (e.g. QSPI NOR) flash.
    External,
}

/// How the bootloader installs an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum UpgradeMode {
    /// Swap primary and secondary through the scratch area (revert possible).
    Swap,
    /// Copy the secondary over the primary (`MCUBOOT_OVERWRITE_ONLY`; no revert).
    Overwrite,
}

/// Names of the areas of a map (used in errors and iteration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AreaKind {
    /// The bootloader itself.
    Bootloader,
    /// Slot 0.
    Primary,
    /// Slot 1.
    Secondary,
    /// The swap scratch area.
    Scratch,
    /// Infineon's swap-status partition.
    Status,
}

impl core::fmt::Display for AreaKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Bootloader => "bootloader",
            Self::Primary => "primary slot",
            Self::Secondary => "secondary slot",
            Self::Scratch => "scratch area",
            Self::Status => "swap status area",
        })
    }
}

/// One flash area and the geometry of the flash holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Area {
    /// Absolute start address.
    pub address: u32,
    /// Size in bytes.
    pub size: u32,
    /// Erase granularity of the flash (sector/row size).
    pub erase_size: u32,
    /// Value every byte reads after an erase (0xff NOR, 0x00 PSoC 6 internal rows).
    pub erase_value: u8,
    /// Write granularity (also MCUboot's trailer record size `W`).
    pub write_size: u32,
    /// Internal or external flash.
    pub device: Device,
}

impl Area {
    /// An area.
    #[must_use]
    pub const fn new(
        address: u32,
        size: u32,
        erase_size: u32,
        erase_value: u8,
        write_size: u32,
        device: Device,
    ) -> Self {
        Self {
            address,
            size,
            erase_size,
            erase_value,
            write_size,
            device,
        }
    }

    /// One past the last address (saturating).
    #[must_use]
    pub const fn end(&self) -> u32 {
        self.address.saturating_add(self.size)
    }

    /// Whether start and size are multiples of the erase size (the bootloader needs this for
    /// the slots and the scratch area).
    #[must_use]
    pub const fn erase_aligned(&self) -> bool {
        self.erase_size != 0
            && self.address.is_multiple_of(self.erase_size)
            && self.size.is_multiple_of(self.erase_size)
    }

    /// The erase sectors this area touches: `[first sector start, last sector end)`.
    #[must_use]
    pub const fn sector_span(&self) -> (u64, u64) {
        let e = self.erase_size as u64;
        let start = (self.address as u64 / e) * e;
        let end = (self.address as u64 + self.size as u64).div_ceil(e) * e;
        (start, end)
    }

    /// Number of erase sectors in this area (rounded up).
    #[must_use]
    pub const fn sector_count(&self) -> u32 {
        if self.erase_size == 0 {
            return 0;
        }
        self.size.div_ceil(self.erase_size)
    }
}

/// The parameters `otactl sign --flashmap` derives from a map (Infineon's signing rules, spec
/// `mcuboot.md` §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignParams {
    /// imgtool `-L`: the primary slot's offset within internal flash.
    pub load_offset: u32,
    /// imgtool `-S`: the primary slot size.
    pub slot_size: u32,
    /// imgtool `-M`: `MCUBOOT_MAX_IMG_SECTORS`.
    pub max_sectors: u32,
    /// imgtool `-R`: the secondary slot's erased value (pass `-R 0` only when it is 0x00).
    pub erased_val: u8,
    /// imgtool `--align`: the trailer write size.
    pub align: u32,
    /// Overwrite-only upgrades.
    pub overwrite_only: bool,
}

/// Infineon's lower bound for `MCUBOOT_MAX_IMG_SECTORS`.
pub const MIN_MAX_IMG_SECTORS: u32 = 32;

/// A complete flash map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FlashMap {
    /// The bootloader.
    pub bootloader: Area,
    /// Slot 0: the running image.
    pub primary: Area,
    /// Slot 1: the update.
    pub secondary: Area,
    /// Swap scratch area (required in swap mode).
    pub scratch: Option<Area>,
    /// Infineon's swap-status partition, if the map has one.
    pub status: Option<Area>,
    /// Upgrade mode.
    pub mode: UpgradeMode,
    /// Start of internal flash (0x10000000 on PSoC 6 and XMC7000).
    pub internal_base: u32,
    /// The bootloader is built with `MCUBOOT_ENC_IMAGES` (it decrypts encrypted images): in
    /// swap mode its trailers (slots and scratch area) hold the two slots' AES keys, which
    /// moves the status area down by `2·align_up(16, A)` and lowers the largest image.
    /// `false` in every Infineon flash map; nothing changes for maps without it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub enc_images: bool,
}

/// Why a flash map is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlashMapError {
    /// The area has size 0.
    Empty(AreaKind),
    /// `address + size` overflows 32 bits.
    Overflow(AreaKind),
    /// Write size not a power of two in 1..=32, or erase size not a multiple of it.
    BadGeometry(AreaKind),
    /// Start or size not a multiple of the write size.
    Misaligned {
        /// The area.
        area: AreaKind,
        /// The write size it must be aligned to.
        align: u32,
    },
    /// Two areas share an erase sector.
    Overlap(AreaKind, AreaKind),
    /// The MCUboot trailer does not fit in the slot.
    TrailerTooBig {
        /// The slot.
        area: AreaKind,
        /// The trailer size.
        trailer: u32,
    },
    /// Swap mode needs slots of equal size; overwrite mode a secondary no larger than the primary.
    SlotSizeMismatch {
        /// Primary slot size.
        primary: u32,
        /// Secondary slot size.
        secondary: u32,
    },
    /// Swap mode without a scratch area.
    NoScratch,
    /// The area is not aligned to its erase sectors (the bootloader needs that for slots and
    /// scratch).
    NotEraseAligned(AreaKind),
    /// The scratch area is smaller than one swap unit (the larger sector of the two slots).
    ScratchTooSmall {
        /// Scratch size.
        scratch: u32,
        /// Swap unit size needed.
        unit: u32,
    },
}

impl core::fmt::Display for FlashMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty(a) => write!(f, "{a} has size 0"),
            Self::Overflow(a) => write!(f, "{a} runs past the 32-bit address space"),
            Self::BadGeometry(a) => write!(
                f,
                "{a}: write size must be a power of two ≤ 32 dividing the erase size"
            ),
            Self::Misaligned { area, align } => {
                write!(f, "{area}: start or size is not a multiple of {align:#x}")
            }
            Self::Overlap(a, b) => write!(f, "{a} and {b} overlap (share an erase sector)"),
            Self::TrailerTooBig { area, trailer } => {
                write!(f, "{area}: the {trailer:#x}-byte MCUboot trailer does not fit")
            }
            Self::SlotSizeMismatch { primary, secondary } => write!(
                f,
                "slot sizes {primary:#x} (primary) and {secondary:#x} (secondary) are not compatible"
            ),
            Self::NoScratch => f.write_str("swap mode needs a scratch area"),
            Self::NotEraseAligned(a) => write!(f, "{a} is not aligned to its erase sectors"),
            Self::ScratchTooSmall { scratch, unit } => write!(
                f,
                "scratch area ({scratch:#x} bytes) is smaller than one swap unit ({unit:#x})"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FlashMapError {}

const fn check_area(kind: AreaKind, a: &Area) -> Result<(), FlashMapError> {
    if a.size == 0 {
        return Err(FlashMapError::Empty(kind));
    }
    if a.address.checked_add(a.size).is_none() {
        return Err(FlashMapError::Overflow(kind));
    }
    let w = a.write_size;
    if w == 0
        || !w.is_power_of_two()
        || w > 32
        || a.erase_size == 0
        || !a.erase_size.is_multiple_of(w)
    {
        return Err(FlashMapError::BadGeometry(kind));
    }
    if !a.address.is_multiple_of(w) || !a.size.is_multiple_of(w) {
        return Err(FlashMapError::Misaligned {
            area: kind,
            align: w,
        });
    }
    Ok(())
}

const fn sectors_overlap(a: &Area, b: &Area) -> bool {
    let (a0, a1) = a.sector_span();
    let (b0, b1) = b.sector_span();
    a0 < b1 && b0 < a1
}

impl FlashMap {
    /// The areas present, in a fixed order.
    #[must_use]
    pub fn areas(&self) -> [(AreaKind, Option<Area>); 5] {
        [
            (AreaKind::Bootloader, Some(self.bootloader)),
            (AreaKind::Primary, Some(self.primary)),
            (AreaKind::Secondary, Some(self.secondary)),
            (AreaKind::Scratch, self.scratch),
            (AreaKind::Status, self.status),
        ]
    }

    /// Checks sizes, alignment, overlaps (at erase-sector granularity) and that the trailer
    /// fits in both slots. Every Infineon map passes; see [`Self::validate_for_boot`] for the
    /// stricter rules our bootloader needs.
    ///
    /// # Errors
    /// The first [`FlashMapError`] found.
    pub fn validate(&self) -> Result<(), FlashMapError> {
        let areas = self.areas();
        for (kind, area) in &areas {
            if let Some(a) = area {
                check_area(*kind, a)?;
            }
        }
        for (i, (ka, a)) in areas.iter().enumerate() {
            for (kb, b) in &areas[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    if sectors_overlap(a, b) {
                        return Err(FlashMapError::Overlap(*ka, *kb));
                    }
                }
            }
        }
        for (kind, slot) in [
            (AreaKind::Primary, self.primary),
            (AreaKind::Secondary, self.secondary),
        ] {
            let t = self.trailer_for(&slot).trailer_size();
            if t >= slot.size {
                return Err(FlashMapError::TrailerTooBig {
                    area: kind,
                    trailer: t,
                });
            }
        }
        let (p, s) = (self.primary.size, self.secondary.size);
        let sizes_ok = match self.mode {
            UpgradeMode::Swap => p == s,
            UpgradeMode::Overwrite => s <= p,
        };
        if !sizes_ok {
            return Err(FlashMapError::SlotSizeMismatch {
                primary: p,
                secondary: s,
            });
        }
        if self.mode == UpgradeMode::Swap && self.scratch.is_none() {
            return Err(FlashMapError::NoScratch);
        }
        Ok(())
    }

    /// [`Self::validate`] plus what [`crate::boot`] needs: slots and scratch aligned to their
    /// erase sectors, the larger slot sector a multiple of the smaller, and (swap mode) a
    /// scratch area holding at least one swap unit.
    ///
    /// # Errors
    /// The first [`FlashMapError`] found.
    pub fn validate_for_boot(&self) -> Result<(), FlashMapError> {
        self.validate()?;
        for (kind, area) in [
            (AreaKind::Primary, Some(self.primary)),
            (AreaKind::Secondary, Some(self.secondary)),
            (AreaKind::Scratch, self.scratch),
        ] {
            if let Some(a) = area {
                if !a.erase_aligned() {
                    return Err(FlashMapError::NotEraseAligned(kind));
                }
            }
        }
        let unit = self.swap_unit();
        if !unit.is_multiple_of(self.primary.erase_size)
            || !unit.is_multiple_of(self.secondary.erase_size)
        {
            return Err(FlashMapError::NotEraseAligned(AreaKind::Secondary));
        }
        if let (UpgradeMode::Swap, Some(scratch)) = (self.mode, self.scratch) {
            if scratch.size < unit || !unit.is_multiple_of(scratch.erase_size) {
                return Err(FlashMapError::ScratchTooSmall {
                    scratch: scratch.size,
                    unit,
                });
            }
        }
        Ok(())
    }

    /// The unit the swap moves per step: the larger erase size of the two slots.
    #[must_use]
    pub const fn swap_unit(&self) -> u32 {
        let (p, s) = (self.primary.erase_size, self.secondary.erase_size);
        if p > s {
            p
        } else {
            s
        }
    }

    /// `MCUBOOT_MAX_IMG_SECTORS` as Infineon's `flashmap.py` computes it: the largest over the
    /// two slots of `ceil(slot size / erase size)`, at least 32.
    #[must_use]
    pub const fn max_img_sectors(&self) -> u32 {
        let p = self.primary.sector_count();
        let s = self.secondary.sector_count();
        let m = if p > s { p } else { s };
        if m < MIN_MAX_IMG_SECTORS {
            MIN_MAX_IMG_SECTORS
        } else {
            m
        }
    }

    /// The trailer write size `W`: the larger write size of the two slots.
    #[must_use]
    pub const fn trailer_write_size(&self) -> u32 {
        let (p, s) = (self.primary.write_size, self.secondary.write_size);
        if p > s {
            p
        } else {
            s
        }
    }

    /// The MCUboot trailer layout of `slot` (one of this map's slots).
    #[must_use]
    pub const fn trailer_for(&self, slot: &Area) -> TrailerLayout {
        TrailerLayout::new(
            slot.size,
            self.trailer_write_size(),
            self.max_img_sectors(),
            slot.erase_value,
            matches!(self.mode, UpgradeMode::Overwrite),
        )
        .with_enc_keys(self.enc_images)
    }

    /// Offset within `slot` of the first erase sector (swap unit, in swap mode) that holds
    /// trailer bytes: where [`crate::boot`] starts erasing a trailer, and where the agent's
    /// download journal starts ([`Self::download_max_image_size`]).
    #[must_use]
    pub const fn trailer_sector_off(&self, slot: &Area) -> u32 {
        let t = self.trailer_for(slot);
        let unit = match self.mode {
            UpgradeMode::Swap => self.swap_unit(),
            UpgradeMode::Overwrite => slot.erase_size,
        };
        align_down(t.status_off(), unit)
    }

    /// The largest image (header + payload + TLVs) MCUboot installs from these slots
    /// (`bootutil_max_image_size`), which is what [`crate::boot`] accepts:
    ///
    /// - swap using scratch (`app_max_size`): the trailer offset `S − trailer_size`, less
    ///   padding when the part of the trailer in its first sector is smaller than the scratch
    ///   area's own trailer (`3·W + 4·A + align_up(16, A)`), so that sector's image bytes and
    ///   the scratch trailer fit in the scratch area together. The sector is the larger of the
    ///   two slots' (their common boundary, [`Self::swap_unit`]).
    /// - overwrite-only: the offset of `swap_info`, `S − align_up(16, A) − 3·A` (`S − 40` for
    ///   `A = 8`), of the smaller slot.
    ///
    /// PSoC 6 external-flash swap map (`S` = 0x1c0000, `M` = 3584, `W` = 8): 0x1aafd0.
    #[must_use]
    pub const fn max_image_size(&self) -> u32 {
        match self.mode {
            UpgradeMode::Swap => {
                let t = self.trailer_for(&self.primary);
                let status_off = t.status_off();
                let unit = self.swap_unit();
                let first_sector_end = align_down(status_off, unit) + unit;
                let in_first_sector = first_sector_end - status_off;
                let scratch_trailer = self.scratch_trailer().trailer_size();
                status_off.saturating_sub(scratch_trailer.saturating_sub(in_first_sector))
            }
            UpgradeMode::Overwrite => {
                let p = self.trailer_for(&self.primary).swap_info_off();
                let s = self.trailer_for(&self.secondary).swap_info_off();
                if p < s {
                    p
                } else {
                    s
                }
            }
        }
    }

    /// The trailer MCUboot keeps at the end of the scratch area while the swap unit holding
    /// the slots' trailer is swapped: status records for one unit (`M = 1`) plus the fields.
    #[must_use]
    pub const fn scratch_trailer(&self) -> TrailerLayout {
        let size = match self.scratch {
            Some(a) => a.size,
            None => 0,
        };
        TrailerLayout::new(
            size,
            self.trailer_write_size(),
            1,
            match self.scratch {
                Some(a) => a.erase_value,
                None => 0xff,
            },
            false,
        )
        .with_enc_keys(self.enc_images)
    }

    /// The largest image the OTA agent downloads: the space before the first trailer sector
    /// of either slot ([`Self::trailer_sector_off`]). The agent keeps its download journal in
    /// the secondary's trailer sectors; an image that reaches into them (up to
    /// [`Self::max_image_size`], which the bootloader installs) has to be written by other
    /// means.
    #[must_use]
    pub const fn download_max_image_size(&self) -> u32 {
        let p = self.trailer_sector_off(&self.primary);
        let s = self.trailer_sector_off(&self.secondary);
        if p < s {
            p
        } else {
            s
        }
    }

    /// Offset of the primary slot within internal flash (imgtool `-L`, Infineon's
    /// `FLASH_AREA_IMG_1_PRIMARY_START`).
    #[must_use]
    pub const fn primary_offset(&self) -> u32 {
        self.primary.address.wrapping_sub(self.internal_base)
    }

    /// The imgtool parameters Infineon's build derives from this map.
    #[must_use]
    pub const fn sign_params(&self) -> SignParams {
        SignParams {
            load_offset: self.primary_offset(),
            slot_size: self.primary.size,
            max_sectors: self.max_img_sectors(),
            erased_val: self.secondary.erase_value,
            align: self.trailer_write_size(),
            overwrite_only: matches!(self.mode, UpgradeMode::Overwrite),
        }
    }

    /// Rounds `len` up to the swap unit (or the primary's erase size in overwrite mode).
    #[must_use]
    pub const fn round_to_unit(&self, len: u32) -> u32 {
        match self.mode {
            UpgradeMode::Swap => align_up(len, self.swap_unit()),
            UpgradeMode::Overwrite => align_up(len, self.primary.erase_size),
        }
    }
}

#[cfg(test)]
mod tests;
