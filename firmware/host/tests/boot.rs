//! Bootloader scenarios on every host-simulation layout: install, test/confirm/revert,
//! permanent, rejections (tampered, wrong key, downgrade).

mod common;

use common::{app, holds, image_of, matrix, public_key, sim_map, SIM_MAPS};
use ota_core::boot::{app as bootapp, BootError};
use ota_core::flashmap::{infineon, UpgradeMode};
use ota_core::image::trailer::SwapType;
use ota_host::sim::SimDevice;

fn stage(dev: &mut SimDevice, img: &[u8], permanent: bool) {
    dev.secondary.program(0, img);
    let layout = dev.secondary_layout();
    bootapp::set_pending(&mut dev.secondary, &layout, permanent).unwrap();
}

fn boot(dev: &mut SimDevice) -> (SwapType, ota_core::image::Version) {
    let out = dev.boot(&[public_key(0)], true).unwrap();
    (out.swap_type, out.image.header.version)
}

#[test]
fn factory_image_boots_without_trailer() {
    for (name, map) in matrix() {
        let old = app(1, 0, 1500);
        let mut dev = common::device_with(map, &old);
        assert_eq!(boot(&mut dev).0, SwapType::None, "{name}");
        assert!(holds(dev.primary.data(), &old));
    }
}

#[test]
fn test_swap_reverts_unless_confirmed() {
    for (name, map) in matrix() {
        let (old, new) = (app(1, 0, 1500), app(1, 1, 1700));
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, false);
        let (ty, v) = boot(&mut dev);
        assert_eq!((ty, v.minor), (SwapType::Test, 1), "{name}");
        assert!(holds(dev.primary.data(), &new));
        let (ty, v) = boot(&mut dev);
        if map.mode == UpgradeMode::Swap {
            assert_eq!((ty, v.minor), (SwapType::Revert, 0), "{name}");
            assert!(holds(dev.primary.data(), &old));
            assert!(holds(dev.secondary.data(), &new));
        } else {
            assert_eq!(
                (ty, v.minor),
                (SwapType::None, 1),
                "{name}: overwrite cannot revert"
            );
        }
        assert_eq!(boot(&mut dev).0, SwapType::None, "{name}");
    }
}

#[test]
fn confirmed_test_image_stays() {
    for (name, map) in matrix() {
        let (old, new) = (app(1, 0, 1500), app(1, 1, 900));
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, false);
        boot(&mut dev);
        let layout = dev.primary_layout();
        let swap = map.mode == UpgradeMode::Swap;
        assert_eq!(
            bootapp::needs_confirmation(&mut dev.primary, &layout).unwrap(),
            swap
        );
        bootapp::set_confirmed(&mut dev.primary, &layout).unwrap();
        assert!(!bootapp::needs_confirmation(&mut dev.primary, &layout).unwrap());
        for _ in 0..2 {
            assert_eq!(boot(&mut dev), (SwapType::None, new_version()), "{name}");
        }
        assert!(holds(dev.primary.data(), &new));
    }
}

fn new_version() -> ota_core::image::Version {
    ota_core::image::Version::new(1, 1, 0)
}

#[test]
fn permanent_swap_needs_no_confirmation() {
    for (name, map) in matrix() {
        let (old, new) = (app(1, 0, 1500), app(1, 1, 1100));
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, true);
        assert_eq!(boot(&mut dev).0, SwapType::Perm, "{name}");
        assert_eq!(boot(&mut dev), (SwapType::None, new_version()), "{name}");
        assert!(holds(dev.primary.data(), &new));
    }
}

fn rejected(name: &str, map: ota_core::flashmap::FlashMap, new: Vec<u8>) {
    let old = app(1, 0, 1500);
    let mut dev = common::device_with(map, &old);
    stage(&mut dev, &new, false);
    assert_eq!(boot(&mut dev).0, SwapType::None, "{name}");
    assert!(
        holds(dev.primary.data(), &old),
        "{name}: old image must stay"
    );
    assert_eq!(
        boot(&mut dev).0,
        SwapType::None,
        "{name}: rejection is final"
    );
}

#[test]
fn tampered_image_is_rejected_and_old_image_stays() {
    for (name, map) in matrix() {
        let mut new = app(1, 1, 1500);
        new[0x200] ^= 0x40;
        rejected(&name, map, new);
    }
}

#[test]
fn wrong_key_image_is_rejected_and_old_image_stays() {
    for (name, map) in matrix() {
        let new = common::image(&common::signing_key(9), new_version(), 1500, 3);
        rejected(&name, map, new);
    }
}

#[test]
fn downgrade_is_rejected_with_downgrade_prevention() {
    for (name, map) in matrix() {
        let old = app(2, 0, 1500);
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &app(1, 9, 1200), false);
        assert_eq!(boot(&mut dev).0, SwapType::None, "{name}");
        assert!(holds(dev.primary.data(), &old));
    }
}

#[test]
fn corrupt_primary_without_update_does_not_boot() {
    let mut bad = app(1, 0, 1500);
    bad[0x300] ^= 1;
    let mut dev = common::device_with(sim_map(SIM_MAPS[0]), &bad);
    assert!(matches!(
        dev.boot(&[public_key(0)], false),
        Err(BootError::NoBootableImage(_))
    ));
}

#[test]
fn set_pending_refuses_a_bad_magic() {
    let map = sim_map(SIM_MAPS[2]);
    let mut dev = SimDevice::new(map, 1);
    let layout = dev.secondary_layout();
    dev.secondary.program(layout.magic_off(), &[0x12; 16]);
    assert!(matches!(
        bootapp::set_pending(&mut dev.secondary, &layout, false),
        Err(BootError::Corrupted(_))
    ));
}

#[test]
fn interrupted_swap_is_resumed_on_the_next_boot() {
    for (name, map) in matrix() {
        if map.mode != UpgradeMode::Swap {
            continue;
        }
        let (old, new) = (app(1, 0, 1500), app(1, 1, 1700));
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, false);
        // Past the trailer set-up and the first unit's first steps.
        dev.rail.cut_after(12);
        assert!(dev.boot(&[public_key(0)], true).is_err());
        dev.rail.restore();
        let out = dev.boot(&[public_key(0)], true).unwrap();
        assert!(out.resumed, "{name}");
        assert_eq!(out.swap_type, SwapType::Test, "{name}");
        assert!(holds(dev.primary.data(), &new));
    }
}

#[test]
fn torn_primary_header_does_not_trigger_downgrade_prevention() {
    // An overwrite cut mid-copy leaves a primary whose header may claim any version: the
    // pending update that repairs it must still be installed.
    for (name, map) in matrix() {
        let mut torn = app(1, 0, 1500);
        torn[20] = 0xff; // "version 255.x": but the image no longer validates
        let new = app(1, 1, 1700);
        let mut dev = common::device_with(map, &torn);
        stage(&mut dev, &new, false);
        let (ty, v) = boot(&mut dev);
        assert_eq!((ty, v.minor), (SwapType::Test, 1), "{name}");
    }
}

/// MCUboot's image-size limit on Infineon's PSoC 6 external-flash swap map is 0x1aafd0 (the
/// trailer's offset; spec §3): the BENCHMARKS image (a slot-filling PSoC 6 image of 1,739,174
/// bytes) and an image of exactly the limit install, revert when not confirmed, and install
/// permanently; one byte more is refused, as MCUboot refuses it. Before, the limit was the
/// first 256 KiB sector holding trailer bytes, 0x180000, and both were refused.
#[test]
fn slot_filling_images_install_on_the_psoc6_external_flash_map() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/flashmap/psoc62_2m_ext_swap_single.json");
    let mut map = infineon::load(&path, None).unwrap();
    // Infineon starts the secondary 0x200 into the external flash; our bootloader erases whole
    // sectors, so the slot moves to the sector start. Sizes, sectors and trailer are the map's.
    map.secondary.address = 0x1800_0000;
    map.validate_for_boot().unwrap();
    assert_eq!(map.max_image_size(), 0x1a_afd0);
    let old = app(1, 0, 100_000);
    for total in [1_739_174, 0x1a_afd0] {
        let new = image_of(1, total);
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, false);
        let (ty, v) = boot(&mut dev);
        assert_eq!((ty, v.minor), (SwapType::Test, 1), "{total} bytes");
        assert!(holds(dev.primary.data(), &new), "{total} bytes installed");
        assert_eq!(boot(&mut dev).0, SwapType::Revert, "{total} bytes");
        assert!(holds(dev.primary.data(), &old), "{total} bytes: reverted");
        assert!(holds(dev.secondary.data(), &new), "{total} bytes: kept");
        let mut dev = common::device_with(map, &old);
        stage(&mut dev, &new, true);
        assert_eq!(boot(&mut dev).0, SwapType::Perm, "{total} bytes");
        assert_eq!(boot(&mut dev), (SwapType::None, v), "{total} bytes stay");
        assert!(holds(dev.primary.data(), &new));
    }
    let too_big = image_of(1, 0x1a_afd1);
    let mut dev = common::device_with(map, &old);
    stage(&mut dev, &too_big, true);
    assert_eq!(boot(&mut dev).0, SwapType::None);
    assert!(holds(dev.primary.data(), &old));
}
