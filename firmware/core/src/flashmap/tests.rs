//! Unit tests of the flash-map checks.

use super::*;

const ROW: u32 = 512;
const fn int(address: u32, size: u32) -> Area {
    Area::new(address, size, ROW, 0x00, 8, Device::Internal)
}

const MAP: FlashMap = FlashMap {
    bootloader: int(0x1000_0000, 0x1_8000),
    primary: int(0x1001_8000, 0x2000),
    secondary: int(0x1001_a000, 0x2000),
    scratch: Some(int(0x1001_c000, 0x400)),
    status: None,
    mode: UpgradeMode::Swap,
    internal_base: 0x1000_0000,
    enc_images: false,
};

#[test]
fn const_map_validates() {
    assert_eq!(MAP.validate(), Ok(()));
    assert_eq!(MAP.validate_for_boot(), Ok(()));
    assert_eq!(MAP.max_img_sectors(), 32);
    assert_eq!(MAP.primary_offset(), 0x18000);
    // trailer = 32*3*8 + 48 = 816 → starts at 0x2000-816 = 0x1cd0 (MCUboot's limit: 304
    // trailer bytes in its first row leave room for the 72-byte scratch trailer); the agent's
    // download journal starts at that row, 0x1c00.
    assert_eq!(MAP.max_image_size(), 0x1cd0);
    assert_eq!(MAP.download_max_image_size(), 0x1c00);
}

#[test]
fn max_image_size_is_mcuboots_for_swap_and_overwrite() {
    // 41 rows: M = 41, trailer = 41*24 + 48 = 1032, starting at 0x4df8, 8 bytes before the
    // end of its first row. The scratch trailer (3*8 + 48 = 72 bytes) needs 64 more: MCUboot's
    // `app_max_size_adjust_to_trailer` pads the limit down to 0x4df8 - 64.
    let mut m = MAP;
    m.primary.size = 41 * ROW;
    m.secondary = int(0x1002_0000, 41 * ROW);
    m.scratch = Some(int(0x1003_0000, 0x400));
    assert_eq!(m.validate_for_boot(), Ok(()));
    assert_eq!(m.trailer_for(&m.primary).status_off(), 0x4df8);
    assert_eq!(m.scratch_trailer().trailer_size(), 72);
    assert_eq!(m.max_image_size(), 0x4df8 - 64);
    // Overwrite-only: `boot_swap_info_off` of the smaller slot, S - 16 - 3*8.
    m.mode = UpgradeMode::Overwrite;
    m.secondary.size = 40 * ROW;
    assert_eq!(m.max_image_size(), 40 * ROW - 40);
    for a in [&mut m.primary, &mut m.secondary] {
        a.write_size = 32; // A = 32: S - 32 - 3*32
    }
    assert_eq!(m.max_image_size(), 40 * ROW - 128);
}

#[test]
fn enc_images_grow_swap_trailers_only() {
    // MCUBOOT_ENC_IMAGES adds 2 * align_up(16, A) = 32 bytes to the slot and scratch trailers
    // in swap mode: the trailer starts at 0x1cb0, its first row then holds 336 bytes, room
    // for the 104-byte scratch trailer, so MCUboot's limit is 0x1cb0.
    let enc = FlashMap {
        enc_images: true,
        ..MAP
    };
    assert_eq!(enc.trailer_for(&enc.primary).trailer_size(), 816 + 32);
    assert_eq!(enc.scratch_trailer().trailer_size(), 72 + 32);
    assert_eq!(enc.max_image_size(), 0x1cb0);
    assert_eq!(enc.download_max_image_size(), 0x1c00);
    let t = enc.trailer_for(&enc.primary);
    assert_eq!(t.enc_key_off(0), 0x2000 - 48 - 16);
    assert_eq!(t.enc_key_off(1), 0x2000 - 48 - 32);
    assert_eq!(t.status_off(), t.enc_key_off(1) - 32 * 3 * 8);
    // Overwrite-only trailers have no key fields.
    let mut o = MAP;
    o.mode = UpgradeMode::Overwrite;
    let oe = FlashMap {
        enc_images: true,
        ..o
    };
    assert_eq!(oe.max_image_size(), o.max_image_size());
    assert_eq!(
        oe.trailer_for(&oe.primary).trailer_size(),
        o.trailer_for(&o.primary).trailer_size()
    );
}

#[test]
fn overlap_at_sector_granularity_is_refused() {
    let mut m = MAP;
    m.secondary.address = 0x1001_9f00;
    assert!(matches!(
        m.validate(),
        Err(
            FlashMapError::Overlap(AreaKind::Primary, AreaKind::Secondary)
                | FlashMapError::Misaligned { .. }
        )
    ));
    let mut m = MAP;
    m.scratch = Some(int(0x1001_bf00, 0x400));
    assert_eq!(
        m.validate(),
        Err(FlashMapError::Overlap(
            AreaKind::Secondary,
            AreaKind::Scratch
        ))
    );
}

#[test]
fn misaligned_and_bad_geometry_are_refused() {
    let mut m = MAP;
    m.primary.size = 0x2004;
    assert_eq!(
        m.validate(),
        Err(FlashMapError::Misaligned {
            area: AreaKind::Primary,
            align: 8
        })
    );
    let mut m = MAP;
    m.primary.write_size = 3;
    assert_eq!(
        m.validate(),
        Err(FlashMapError::BadGeometry(AreaKind::Primary))
    );
    let mut m = MAP;
    m.bootloader.size = 0;
    assert_eq!(
        m.validate(),
        Err(FlashMapError::Empty(AreaKind::Bootloader))
    );
}

#[test]
fn trailer_must_fit_and_sizes_must_match() {
    let mut m = MAP;
    m.primary.size = 0x200;
    m.secondary.size = 0x200;
    assert!(matches!(
        m.validate(),
        Err(FlashMapError::TrailerTooBig { .. })
    ));
    let mut m = MAP;
    m.secondary.size = 0x1000;
    assert!(matches!(
        m.validate(),
        Err(FlashMapError::SlotSizeMismatch { .. })
    ));
    m.mode = UpgradeMode::Overwrite;
    assert_eq!(m.validate(), Ok(()));
    let mut m = MAP;
    m.scratch = None;
    assert_eq!(m.validate(), Err(FlashMapError::NoScratch));
}

#[test]
fn boot_rules_need_erase_alignment_and_scratch_unit() {
    let mut m = MAP;
    m.secondary.address += 8;
    m.secondary.size -= 8;
    m.mode = UpgradeMode::Overwrite;
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(
        m.validate_for_boot(),
        Err(FlashMapError::NotEraseAligned(AreaKind::Secondary))
    );
    let mut m = MAP;
    m.scratch = Some(int(0x1001_c000, 0x200));
    m.secondary.erase_size = 0x400;
    assert!(matches!(
        m.validate_for_boot(),
        Err(FlashMapError::ScratchTooSmall { .. })
    ));
}
