//! What the running application may write into the trailers (MCUboot `bootutil_public.c`):
//! mark the secondary image for installation, and confirm the running image. Only the
//! bootloader ever swaps.

use embedded_storage::nor_flash::NorFlash;

use super::BootError;
use crate::flashmap::AreaKind;
use crate::image::trailer::TrailerState;
use crate::image::trailer::{encode_swap_info, FlagState, MagicState, SwapType, TrailerLayout};

fn flash_err<E>(area: AreaKind) -> impl FnOnce(E) -> BootError<E> {
    move |error| BootError::Flash { area, error }
}

fn write_flag<F: NorFlash>(
    flash: &mut F,
    layout: &TrailerLayout,
    off: u32,
    value: u8,
    area: AreaKind,
) -> Result<(), BootError<F::Error>> {
    let (rec, n) = layout.flag_record(value);
    flash.write(off, &rec[..n]).map_err(flash_err(area))
}

fn write_magic<F: NorFlash>(
    flash: &mut F,
    layout: &TrailerLayout,
    area: AreaKind,
) -> Result<(), BootError<F::Error>> {
    let size = layout.magic_area_size();
    let n = size as usize;
    let mut rec = [layout.erased_val; 32];
    rec[n - 16..n].copy_from_slice(&layout.magic());
    flash
        .write(layout.slot_size - size, &rec[..n])
        .map_err(flash_err(area))
}

/// `boot_set_pending`: mark the image in the secondary slot for installation on the next boot,
/// once (`permanent == false`, a `Test` swap that reverts unless confirmed) or for good
/// (`Perm`). Writes the magic, then `image_ok` if permanent, then `swap_info`, as MCUboot does.
/// The trailer fields must be erased (the agent erases the slot before downloading). Does
/// nothing if the magic is already good.
///
/// # Errors
/// Flash errors; [`BootError::Corrupted`] if the magic is neither erased nor good.
pub fn set_pending<F: NorFlash>(
    secondary: &mut F,
    layout: &TrailerLayout,
    permanent: bool,
) -> Result<(), BootError<F::Error>> {
    let area = AreaKind::Secondary;
    let st = TrailerState::read(secondary, layout).map_err(flash_err(area))?;
    match st.magic {
        MagicState::Good => return Ok(()),
        MagicState::Bad => return Err(BootError::Corrupted(area)),
        MagicState::Unset => {}
    }
    write_magic(secondary, layout, area)?;
    if permanent {
        write_flag(secondary, layout, layout.image_ok_off(), 1, area)?;
    }
    let ty = if permanent {
        SwapType::Perm
    } else {
        SwapType::Test
    };
    if st.swap_info.0 == SwapType::None {
        write_flag(
            secondary,
            layout,
            layout.swap_info_off(),
            encode_swap_info(ty, 0),
            area,
        )?;
    }
    Ok(())
}

/// `boot_set_confirmed`: the running image (primary slot) declares itself good, so the
/// bootloader will not revert it. Writes `image_ok` if the magic is good and `image_ok` unset;
/// otherwise nothing (already confirmed, installed permanently, or never swapped).
///
/// # Errors
/// Flash errors.
pub fn set_confirmed<F: NorFlash>(
    primary: &mut F,
    layout: &TrailerLayout,
) -> Result<(), BootError<F::Error>> {
    let area = AreaKind::Primary;
    let st = TrailerState::read(primary, layout).map_err(flash_err(area))?;
    if st.magic == MagicState::Good && st.image_ok == FlagState::Unset {
        write_flag(primary, layout, layout.image_ok_off(), 1, area)?;
    }
    Ok(())
}

/// Whether the running image still has to confirm itself (magic good, `copy_done` set,
/// `image_ok` unset: the next boot would revert it).
///
/// # Errors
/// Flash errors.
pub fn needs_confirmation<F: NorFlash>(
    primary: &mut F,
    layout: &TrailerLayout,
) -> Result<bool, F::Error> {
    let st = TrailerState::read(primary, layout)?;
    Ok(st.magic == MagicState::Good
        && st.image_ok == FlagState::Unset
        && st.copy_done == FlagState::Set)
}
