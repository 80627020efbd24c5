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

use crate::image::trailer::{FlagState, MagicState, SwapType, TrailerLayout, TrailerState};

use super::MAX_INFO;

/// Reading a slot's trailer from flash. The decoding is [`TrailerState::decode`], the one
/// trailer decoder (shared with the agent and `otactl info`).
impl TrailerState {
    /// Reads and decodes the trailer of a slot: the last [`TrailerLayout::info_size`] bytes.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn read<F: ReadNorFlash>(flash: &mut F, layout: &TrailerLayout) -> Result<Self, F::Error> {
        Self::read_with(layout, |off, buf| flash.read(off, buf))
    }

    /// [`Self::read`] through any read function.
    pub(crate) fn read_with<Er>(
        layout: &TrailerLayout,
        mut read: impl FnMut(u32, &mut [u8]) -> Result<(), Er>,
    ) -> Result<Self, Er> {
        let mut tail = [0u8; MAX_INFO];
        let n = (layout.info_size() as usize).min(MAX_INFO);
        read(layout.slot_size - n as u32, &mut tail[..n])?;
        Ok(Self::decode(layout, &tail[..n]))
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
pub fn decide(primary: &TrailerState, secondary: &TrailerState, swap_offset: bool) -> SwapType {
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

    fn st(magic: MagicState, image_ok: FlagState, copy_done: FlagState) -> TrailerState {
        TrailerState {
            magic,
            image_ok,
            copy_done,
            ..TrailerState::ERASED
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
            TrailerState::ERASED,
            st(MagicState::Bad, Unset, Unset),
            st(Good, Bad, Unset),
        ] {
            assert_eq!(decide(&p, &s, false), SwapType::Revert);
        }
    }

    #[test]
    fn otherwise_none() {
        for p in [
            TrailerState::ERASED,
            st(Good, Set, Set),
            st(Good, Unset, Unset),
            st(Good, Bad, Set),
            st(Good, Unset, Bad),
            st(MagicState::Bad, Unset, Set),
        ] {
            for s in [
                TrailerState::ERASED,
                st(Good, Bad, Unset),
                st(MagicState::Bad, Set, Unset),
            ] {
                assert_eq!(decide(&p, &s, false), SwapType::None, "{p:?} {s:?}");
            }
        }
    }
}
