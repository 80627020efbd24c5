//! Overwrite-only upgrades (`MCUBOOT_OVERWRITE_ONLY`, "fast" variant: only the image's sectors
//! are copied).
//!
//! | step | flash work | a reset here means |
//! | --- | --- | --- |
//! | 1 | validate the secondary (and downgrade rule); invalid → erase its header and trailer sectors | nothing changed yet |
//! | 2 | erase the primary sectors the image spans, and the primary trailer sectors | the secondary is intact: the next boot starts over |
//! | 3 | copy `[0, image end)` secondary → primary (decrypting the payload of an encrypted image) | same |
//! | 4 | write the primary magic (so `boot_set_confirmed` has a trailer to mark) | same |
//! | 5 | erase the secondary's first sector (its header) | the copy is complete; the secondary no longer validates and its trailer is scrambled on the next boot |
//! | 6 | erase the secondary's trailer sectors | done: the secondary never triggers again |
//!
//! There is no status and no revert: a `Test` request installs permanently, as in MCUboot.
//! The image may end right before `swap_info` (MCUboot's limit), in a sector it shares with
//! the trailer: step 2 erases that sector and step 4 writes the magic after the copy.

use embedded_storage::nor_flash::NorFlash;

use super::{image_io::image_end, swap_type, BootError, BootLoader, Res};
use crate::flashmap::AreaKind::{Primary, Secondary};
use crate::image::align_up;
use crate::image::trailer::SwapType;

impl<E, P, S, X> BootLoader<'_, '_, P, S, X>
where
    E: core::fmt::Debug,
    P: NorFlash<Error = E>,
    S: NorFlash<Error = E>,
    X: NorFlash<Error = E>,
{
    /// Overwrite mode: if the secondary is pending and valid, copy it over the primary, then
    /// invalidate the secondary. Returns the swap type acted on (`Test`/`Perm`) or `None`.
    pub(super) fn boot_overwrite(&mut self) -> Res<SwapType, E> {
        let prim = self.slot_state(Primary)?;
        let sec = self.slot_state(Secondary)?;
        let ty = match swap_type::decide(&prim, &sec, false) {
            t @ (SwapType::Test | SwapType::Perm) => t,
            _ => return Ok(SwapType::None),
        };
        if !self.secondary_acceptable(ty)? {
            return Ok(SwapType::None);
        }
        let limit = self.cfg.map.max_image_size();
        let end = image_end(self.secondary, limit)
            .map_err(|error| BootError::Flash {
                area: Secondary,
                error,
            })?
            .unwrap_or(0);
        let w = self.layout(Primary).write_align;
        let span = self.cfg.map.round_to_unit(end);
        self.erase(Primary, 0, span)?;
        self.scramble_trailer(Primary)?;
        self.install_copy(align_up(end, w))?;
        self.write_magic(Primary)?;
        let es = self.cfg.map.secondary.erase_size;
        self.erase(Secondary, 0, es)?;
        self.scramble_trailer(Secondary)?;
        Ok(ty)
    }

    /// Step 3: the copy (decrypting an encrypted image with feature `enc`).
    fn install_copy(&mut self, len: u32) -> Res<(), E> {
        #[cfg(feature = "enc")]
        return self.copy_secondary_to_primary(len);
        #[cfg(not(feature = "enc"))]
        self.copy(Secondary, 0, Primary, 0, len)
    }
}
