//! The swap-type decision (MCUboot `boot_swap_type_multi`, `docs/design.md` "Boot Swap Types").
//!
//! Read the trailer state of both slots; the first matching row wins:
//!
//! | # | primary magic | primary image_ok | primary copy_done | secondary magic | secondary image_ok | secondary copy_done | result |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 0 (swap-offset only) | any | any | any | Good | Unset | Set | Revert |
//! | 1 | any | any | any | Good | Unset | any | Test |
//! | 2 | any | any | any | Good | Set | any | Perm |
//! | 3 | Good | Unset | Set | any | any | any | Revert |
//! | — | otherwise | | | | | | None |
//!
//! A secondary `image_ok` that is neither erased nor `0x01` matches no row (→ None, or Revert
//! through row 3). `swap_info` plays no part in the decision.

use embedded_storage::nor_flash::ReadNorFlash;

use crate::image::trailer::{decode_swap_info, FlagState, MagicState, SwapType, TrailerLayout};

/// The decoded trailer of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// The 16-byte magic.
    pub magic: MagicState,
    /// `image_ok`.
    pub image_ok: FlagState,
    /// `copy_done`.
    pub copy_done: FlagState,
    /// `swap_info`: swap type and image number.
    pub swap_info: (SwapType, u8),
}

impl SlotState {
    /// A slot with an erased trailer.
    pub const ERASED: Self = Self {
        magic: MagicState::Unset,
        image_ok: FlagState::Unset,
        copy_done: FlagState::Unset,
        swap_info: (SwapType::None, 0),
    };

    /// Reads the trailer of a slot. Each flag is read as its whole `A`-byte record: erased
    /// only if every byte is erased, set if its first byte is `0x01`, bad otherwise (a write
    /// cut by power loss can leave the first byte erased and the padding not, and such a
    /// record can no longer be written). Likewise the magic is unset only if its whole
    /// `align_up(16, A)` area is erased.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn read<F: ReadNorFlash>(flash: &mut F, layout: &TrailerLayout) -> Result<Self, F::Error> {
        let e = layout.erased_val;
        let mut rec = [0u8; 32];
        let m = layout.magic_area_size() as usize;
        flash.read(layout.slot_size - m as u32, &mut rec[..m])?;
        let mut magic16 = [0u8; 16];
        magic16.copy_from_slice(&rec[m - 16..m]);
        let magic = match layout.magic_state(&magic16) {
            MagicState::Unset if rec[..m].iter().any(|b| *b != e) => MagicState::Bad,
            s => s,
        };
        let a = (layout.max_align as usize).min(32);
        let mut flag = |off: u32| -> Result<(FlagState, u8), F::Error> {
            flash.read(off, &mut rec[..a])?;
            let st = match layout.flag_state(rec[0]) {
                FlagState::Unset if rec[1..a].iter().any(|b| *b != e) => FlagState::Bad,
                s => s,
            };
            Ok((st, rec[0]))
        };
        let (image_ok, _) = flag(layout.image_ok_off())?;
        let (copy_done, _) = flag(layout.copy_done_off())?;
        let (info_state, info) = flag(layout.swap_info_off())?;
        let swap_info = if info_state == FlagState::Bad && info == e {
            (SwapType::None, 0)
        } else {
            decode_swap_info(info, e)
        };
        Ok(Self {
            magic,
            image_ok,
            copy_done,
            swap_info,
        })
    }

    /// Whether every trailer field (`swap_size` … magic) is erased, so `set_pending` can
    /// write them.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn fields_erased<F: ReadNorFlash>(
        flash: &mut F,
        layout: &TrailerLayout,
    ) -> Result<bool, F::Error> {
        let start = layout.swap_size_off();
        let mut buf = [0u8; 32];
        let mut off = start;
        while off < layout.slot_size {
            let n = (layout.slot_size - off).min(32);
            flash.read(off, &mut buf[..n as usize])?;
            if buf[..n as usize].iter().any(|b| *b != layout.erased_val) {
                return Ok(false);
            }
            off += n;
        }
        Ok(true)
    }
}

/// Applies the decision table. `swap_offset` enables row 0 (only MCUboot's swap-offset mode
/// has it; our bootloader uses scratch or overwrite and passes `false`).
#[must_use]
pub fn decide(primary: &SlotState, secondary: &SlotState, swap_offset: bool) -> SwapType {
    use FlagState::{Set, Unset};
    use MagicState::Good;
    let sec = (secondary.magic, secondary.image_ok, secondary.copy_done);
    match sec {
        (Good, Unset, Set) if swap_offset => return SwapType::Revert,
        (Good, Unset, _) => return SwapType::Test,
        (Good, Set, _) => return SwapType::Perm,
        _ => {}
    }
    if (primary.magic, primary.image_ok, primary.copy_done) == (Good, Unset, Set) {
        return SwapType::Revert;
    }
    SwapType::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlagState::{Bad, Set, Unset};
    use MagicState::{Good, Unset as MUnset};

    fn st(magic: MagicState, image_ok: FlagState, copy_done: FlagState) -> SlotState {
        SlotState {
            magic,
            image_ok,
            copy_done,
            swap_info: (SwapType::None, 0),
        }
    }

    const ANY_P: [(MagicState, FlagState, FlagState); 4] = [
        (MUnset, Unset, Unset),
        (Good, Set, Set),
        (Good, Unset, Set),
        (MagicState::Bad, Bad, Bad),
    ];

    #[test]
    fn row0_swap_offset_secondary_copy_done_is_revert() {
        let s = st(Good, Unset, Set);
        for (m, i, c) in ANY_P {
            assert_eq!(decide(&st(m, i, c), &s, true), SwapType::Revert);
            // Without swap-offset, row 1 matches instead.
            assert_eq!(decide(&st(m, i, c), &s, false), SwapType::Test);
        }
    }

    #[test]
    fn row1_secondary_good_image_ok_unset_is_test() {
        for copy_done in [Unset, Set, Bad] {
            for (m, i, c) in ANY_P {
                let s = st(Good, Unset, copy_done);
                if copy_done == Set {
                    continue; // covered by row 0 above
                }
                assert_eq!(decide(&st(m, i, c), &s, true), SwapType::Test);
            }
        }
    }

    #[test]
    fn row2_secondary_good_image_ok_set_is_perm() {
        for copy_done in [Unset, Set, Bad] {
            for (m, i, c) in ANY_P {
                let s = st(Good, Set, copy_done);
                assert_eq!(decide(&st(m, i, c), &s, false), SwapType::Perm);
            }
        }
    }

    #[test]
    fn row3_primary_tested_not_confirmed_is_revert() {
        let p = st(Good, Unset, Set);
        for s in [
            SlotState::ERASED,
            st(MagicState::Bad, Unset, Unset),
            st(Good, Bad, Unset),
        ] {
            assert_eq!(decide(&p, &s, false), SwapType::Revert);
        }
    }

    #[test]
    fn otherwise_none() {
        for p in [
            SlotState::ERASED,
            st(Good, Set, Set),
            st(Good, Unset, Unset),
            st(Good, Bad, Set),
            st(Good, Unset, Bad),
            st(MagicState::Bad, Unset, Set),
        ] {
            for s in [
                SlotState::ERASED,
                st(Good, Bad, Unset),
                st(MagicState::Bad, Set, Unset),
            ] {
                assert_eq!(decide(&p, &s, false), SwapType::None, "{p:?} {s:?}");
            }
        }
    }
}
