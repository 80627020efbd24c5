//! Swap using scratch, with status records in the primary trailer, or in the scratch area's
//! trailer while the unit holding the slots' trailers is swapped (see the module docs of
//! [`super`] for the step table).
//!
//! # Status records (on flash, primary slot)
//!
//! Units are numbered from the top of the image region down: processing step `j` works on
//! unit `N − 1 − j`, where `N = ceil(swap_size / unit)`. Each unit has three records, one per
//! state reached; record `k = j·3 + (state − 1)` lives at `status_off + k·W`:
//!
//! | bytes | value |
//! | --- | --- |
//! | 0 | the state reached: 1 (secondary unit copied to scratch), 2 (primary unit copied to the secondary), 3 (scratch copied to the primary) |
//! | 1 .. W | erased value |
//!
//! A record counts as written when any of its `W` bytes is not erased, so a record whose
//! write was cut still counts (its step's data work was complete before the write started).
//! The number of leading written records is the progress; `swap_size` (trailer field, u32 LE)
//! says how many units there are, `swap_info` (low nibble) which swap it is.
//!
//! The primary trailer at the start of a swap, from the end of the slot (`A` = max align):
//!
//! | offset | field | written by `start` |
//! | --- | --- | --- |
//! | `S − 16` | magic | last |
//! | `S − 16 − A` | `image_ok` | 0x01 if the secondary's was set (`Perm`) or for `Revert` |
//! | `S − 16 − 2A` | `copy_done` | at the end (`finish`) |
//! | `S − 16 − 3A` | `swap_info` | `type \| image << 4` first |
//! | `S − 16 − 4A` | `swap_size` | second, u32 LE |
//! | `swap_size − 16`, `swap_size − 32` (`enc_images` maps, `A` ≤ 16) | AES keys of slot 0 and slot 1 | third, when the image in that slot is encrypted (see below) |
//! | `status_off …` | status records | one per step |
//!
//! # Encrypted images (feature `enc`, map with `enc_images`)
//!
//! As MCUboot with `MCUBOOT_ENC_IMAGES`: the secondary slot (and the scratch area) hold
//! ciphertext, the primary plaintext. Before the first record, `start` unwraps the AES key of
//! each image whose header is flagged `ENCRYPTED_AES128` (slot 0: the primary's image, from its
//! own ENC TLV; slot 1: the secondary's) and writes both into the status trailer, each
//! `align_up(16, A)` bytes below `swap_size` (a slot without a key leaves its field erased
//! where MCUboot writes 0xff). A resumed swap reads the keys back from the trailer that holds
//! its status instead of unwrapping them again. Copies follow `boot_copy_region`: into the
//! primary (from the scratch area) the payload is decrypted with key 1, out of the primary
//! (into the secondary) it is encrypted with key 0, secondary → scratch copies as it is; the
//! header and TLVs are never touched, and the payload range comes from the moving image's
//! header wherever the swap has put it (scratch or the other slot during the last unit,
//! MCUboot's `boot_read_image_header`). So the secondary ends up holding the old image as it
//! was first downloaded, encrypted, and a revert decrypts it again.

use embedded_storage::nor_flash::NorFlash;

#[cfg(feature = "enc")]
use super::decrypt::{SwapCrypt, SwapKeys};
use super::{image_io::image_end, swap_type, BootError, BootLoader, Res};
use crate::flashmap::AreaKind::{self, Primary, Scratch, Secondary};
use crate::image::align_up;
use crate::image::trailer::{encode_swap_info, FlagState, MagicState, SwapType};

/// Without feature `enc` a swap has no keys...
#[cfg(not(feature = "enc"))]
#[derive(Clone, Debug)]
struct SwapKeys;
/// ...and copies bytes as they are.
#[cfg(not(feature = "enc"))]
struct SwapCrypt;

/// A swap recorded in a trailer (the primary's, or the scratch area's while the trailer unit
/// is swapped).
#[derive(Clone, Debug)]
struct Progress {
    swap_type: SwapType,
    swap_size: u32,
    /// `image_ok` to write into the primary trailer.
    image_ok: bool,
    /// Leading status records written.
    done: u32,
    /// (feature `enc`) The AES keys of slot 0 and slot 1, as the status trailer holds them.
    keys: SwapKeys,
}

impl<E, P, S, X> BootLoader<'_, '_, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    /// Swap mode: resume a recorded swap, or decide and run a new one.
    pub(super) fn boot_swap(&mut self) -> Res<(SwapType, bool), E> {
        // The secondary trailer is erased in the first unit's second step, before any slot
        // data changes; while its magic is still good, recorded progress is either a swap
        // that can safely restart or the debris of an interrupted trailer erase.
        let sec_magic = self.slot_state(Secondary)?.magic;
        if let Some(p) = self.progress()? {
            if p.done > 0 && sec_magic != MagicState::Good {
                fw_info!("resuming {:?} swap at record {}", p.swap_type, p.done);
                self.run_units(&p)?;
                self.finish(&p)?;
                return Ok((p.swap_type, true));
            }
        }
        let prim = self.slot_state(Primary)?;
        let sec = self.slot_state(Secondary)?;
        let mut ty = swap_type::decide(&prim, &sec, false);
        if ty == SwapType::Perm && sec.swap_info.0 == SwapType::Revert {
            // An interrupted revert (see `fixup_revert`): finish it as the revert it is, so
            // downgrade prevention does not refuse the old image.
            ty = SwapType::Revert;
        }
        if ty == SwapType::None || !self.secondary_acceptable(ty)? {
            return Ok((SwapType::None, false));
        }
        let p = self.start(ty, sec.image_ok == FlagState::Set)?;
        self.run_units(&p)?;
        self.finish(&p)?;
        Ok((ty, false))
    }

    /// Whether a swap of `swap_size` bytes reaches into the unit holding the trailer (its
    /// status then starts in the scratch area's trailer).
    fn uses_scratch(&self, swap_size: u32) -> bool {
        swap_size > self.cfg.map.trailer_sector_off(&self.cfg.map.primary)
    }

    /// The swap in progress: the primary's record once it holds the trailer unit's records,
    /// else the scratch area's, else the primary's (MCUboot's `swap_status_source`).
    fn progress(&mut self) -> Res<Option<Progress>, E> {
        let prim = self.recorded(Primary)?;
        if let Some(p) = &prim {
            if !self.uses_scratch(p.swap_size) || p.done >= 3 {
                return Ok(prim);
            }
        }
        match self.recorded(Scratch)? {
            Some(p) if p.done > 0 => Ok(Some(p)),
            _ => Ok(prim.filter(|p| !self.uses_scratch(p.swap_size))),
        }
    }

    /// The swap recorded in the trailer of `area` if its magic is good and `copy_done` unset.
    fn recorded(&mut self, area: AreaKind) -> Res<Option<Progress>, E> {
        let st = self.slot_state(area)?;
        if st.magic != MagicState::Good || st.copy_done != FlagState::Unset {
            return Ok(None);
        }
        let (swap_type, swap_size) = (st.swap_info.0, st.swap_size);
        if swap_type == SwapType::None || swap_size > self.cfg.map.max_image_size() {
            return Ok(None);
        }
        // The scratch area holds the records of one unit, and only while it is swapped.
        let max = match area {
            Scratch if !self.uses_scratch(swap_size) => return Ok(None),
            Scratch => 2,
            _ => self.units(swap_size) * 3,
        };
        let mut done = 0;
        while done < max && self.record_written(area, done)? {
            done += 1;
        }
        Ok(Some(Progress {
            swap_type,
            swap_size,
            image_ok: st.image_ok == FlagState::Set,
            done,
            keys: self.read_swap_keys(area)?,
        }))
    }

    fn units(&self, swap_size: u32) -> u32 {
        swap_size.div_ceil(self.cfg.map.swap_unit())
    }

    fn record_off(&self, area: AreaKind, k: u32) -> u32 {
        let layout = self.layout(area);
        layout.status_off() + k * layout.write_align
    }

    /// A record counts as written if any of its bytes is not erased.
    fn record_written(&mut self, area: AreaKind, k: u32) -> Res<bool, E> {
        let layout = self.layout(area);
        let mut rec = [0u8; 32];
        let w = layout.write_align as usize;
        self.read(area, self.record_off(area, k), &mut rec[..w])?;
        Ok(rec[..w].iter().any(|b| *b != layout.erased_val))
    }

    fn write_record(&mut self, area: AreaKind, k: u32) -> Res<(), E> {
        let layout = self.layout(area);
        let mut rec = [layout.erased_val; 32];
        rec[0] = (k % 3) as u8 + 1;
        let w = layout.write_align as usize;
        self.write(area, self.record_off(area, k), &rec[..w])
    }

    /// Initialises the trailer that records a new swap: the primary's (after erasing its
    /// trailer sectors) or, when the image reaches into the trailer unit, the scratch area's
    /// (after erasing the scratch area; the primary trailer stays as it is until that unit
    /// is swapped, so an interrupted revert is still found by the table).
    fn start(&mut self, ty: SwapType, sec_image_ok: bool) -> Res<Progress, E> {
        let limit = self.cfg.map.max_image_size();
        let p_end = image_end(self.primary, limit).map_err(|error| BootError::Flash {
            area: Primary,
            error,
        })?;
        let s_end = image_end(self.secondary, limit).map_err(|error| BootError::Flash {
            area: Secondary,
            error,
        })?;
        let p = Progress {
            swap_type: ty,
            swap_size: p_end.unwrap_or(0).max(s_end.unwrap_or(0)),
            image_ok: sec_image_ok || ty == SwapType::Revert,
            done: 0,
            keys: self.image_keys()?,
        };
        if self.uses_scratch(p.swap_size) {
            let size = self.area(Scratch).size;
            self.erase(Scratch, 0, size)?;
            self.write_status_trailer(Scratch, &p)?;
        } else {
            if ty == SwapType::Revert {
                self.fixup_revert()?;
            }
            self.scramble_trailer(Primary)?;
            self.write_status_trailer(Primary, &p)?;
        }
        Ok(p)
    }

    /// Writes `swap_info`, `image_ok` (if set), `swap_size`, the AES keys (feature `enc`) and,
    /// last, the magic into the (erased) trailer of `area`.
    fn write_status_trailer(&mut self, area: AreaKind, p: &Progress) -> Res<(), E> {
        let layout = self.layout(area);
        let info = encode_swap_info(p.swap_type, 0);
        self.write_flag(area, layout.swap_info_off(), info)?;
        if p.image_ok {
            self.write_flag(area, layout.image_ok_off(), 1)?;
        }
        let mut rec = [layout.erased_val; 32];
        rec[..4].copy_from_slice(&p.swap_size.to_le_bytes());
        let a = layout.max_align as usize;
        self.write(area, layout.swap_size_off(), &rec[..a])?;
        self.write_swap_keys(area, &p.keys)?;
        self.write_magic(area)
    }

    /// Before a revert rewrites the primary trailer, make the secondary (the old image) say
    /// "permanent" (`image_ok`, `swap_info` = `Revert`, magic last) so an interrupted revert is
    /// picked up again by the table (row 2) and finished as a revert.
    fn fixup_revert(&mut self) -> Res<(), E> {
        let st = self.slot_state(Secondary)?;
        if st.magic == MagicState::Good && st.image_ok == FlagState::Set {
            return Ok(());
        }
        self.scramble_trailer(Secondary)?;
        let layout = self.layout(Secondary);
        self.write_flag(Secondary, layout.image_ok_off(), 1)?;
        let info = encode_swap_info(SwapType::Revert, 0);
        self.write_flag(Secondary, layout.swap_info_off(), info)?;
        self.write_magic(Secondary)
    }

    /// Runs the remaining steps from record `p.done`.
    fn run_units(&mut self, p: &Progress) -> Res<(), E> {
        let units = self.units(p.swap_size);
        let crypt = self.swap_crypt(&p.keys, p.done, units)?;
        let unit = self.cfg.map.swap_unit();
        let w = self.layout(Primary).write_align;
        let in_scratch = self.uses_scratch(p.swap_size);
        for k in p.done..units * 3 {
            let j = k / 3;
            let idx = units - 1 - j;
            let off = idx * unit;
            let len = align_up(p.swap_size.min(off + unit) - off, w);
            if j == 0 && in_scratch {
                self.trailer_unit_step(k, off, len, p, &crypt)?;
                continue;
            }
            match k % 3 {
                0 => {
                    self.erase(Scratch, 0, unit)?;
                    self.copy(Secondary, off, Scratch, 0, len)?;
                }
                1 => {
                    if j == 0 {
                        self.scramble_trailer(Secondary)?;
                    }
                    self.erase(Secondary, off, off + unit)?;
                    self.swap_copy(Primary, off, Secondary, off, len, &crypt)?;
                }
                _ => {
                    self.erase(Primary, off, off + unit)?;
                    self.swap_copy(Scratch, 0, Primary, off, len, &crypt)?;
                }
            }
            self.write_record(Primary, k)?;
        }
        Ok(())
    }

    /// Step `k` (0..3) of the unit at `off` that holds the slots' trailers, with the status in
    /// the scratch area's trailer: the unit's image bytes (`len`) move through the scratch
    /// area, the trailer bytes are not swapped. The last step rebuilds the primary trailer
    /// (records 0 and 1, the fields, the magic last) before its own record.
    fn trailer_unit_step(
        &mut self,
        k: u32,
        off: u32,
        len: u32,
        p: &Progress,
        crypt: &SwapCrypt,
    ) -> Res<(), E> {
        match k {
            // The scratch area was erased when its trailer was written (`start`).
            0 => {
                self.copy(Secondary, off, Scratch, 0, len)?;
                self.write_record(Scratch, 0)
            }
            1 => {
                self.scramble_trailer(Secondary)?;
                self.swap_copy(Primary, off, Secondary, off, len, crypt)?;
                self.write_record(Scratch, 1)
            }
            _ => {
                self.scramble_trailer(Primary)?;
                self.swap_copy(Scratch, 0, Primary, off, len, crypt)?;
                self.write_record(Primary, 0)?;
                self.write_record(Primary, 1)?;
                self.write_status_trailer(Primary, p)?;
                self.write_record(Primary, 2)
            }
        }
    }

    /// End-of-swap writes: clear a scratch trailer left by the trailer unit, then `image_ok`
    /// for `Perm`/`Revert`, then `copy_done` (after which no trailer records a swap).
    fn finish(&mut self, p: &Progress) -> Res<(), E> {
        if self.uses_scratch(p.swap_size) && self.slot_state(Scratch)?.magic != MagicState::Unset {
            self.scramble_trailer(Scratch)?;
        }
        let st = self.slot_state(Primary)?;
        let layout = self.layout(Primary);
        let ty = p.swap_type;
        if matches!(ty, SwapType::Perm | SwapType::Revert) && st.image_ok == FlagState::Unset {
            self.write_flag(Primary, layout.image_ok_off(), 1)?;
        }
        if st.copy_done == FlagState::Unset {
            self.write_flag(Primary, layout.copy_done_off(), 1)?;
        }
        Ok(())
    }
}

/// Without feature `enc`: no keys, and every swap copy is a plain copy.
#[cfg(not(feature = "enc"))]
impl<E, P, S, X> BootLoader<'_, '_, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    #[allow(clippy::unnecessary_wraps)]
    fn image_keys(&mut self) -> Res<SwapKeys, E> {
        Ok(SwapKeys)
    }

    #[allow(clippy::unnecessary_wraps)]
    fn read_swap_keys(&mut self, _area: AreaKind) -> Res<SwapKeys, E> {
        Ok(SwapKeys)
    }

    #[allow(clippy::unnecessary_wraps)]
    fn write_swap_keys(&mut self, _area: AreaKind, _keys: &SwapKeys) -> Res<(), E> {
        Ok(())
    }

    #[allow(clippy::unnecessary_wraps)]
    fn swap_crypt(&mut self, _keys: &SwapKeys, _done: u32, _units: u32) -> Res<SwapCrypt, E> {
        Ok(SwapCrypt)
    }

    fn swap_copy(
        &mut self,
        src: AreaKind,
        src_off: u32,
        dst: AreaKind,
        dst_off: u32,
        len: u32,
        _crypt: &SwapCrypt,
    ) -> Res<(), E> {
        self.copy(src, src_off, dst, dst_off, len)
    }
}
