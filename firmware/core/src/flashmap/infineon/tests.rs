//! Every Infineon map and every host-simulation map parses; spot checks against the spec.

use super::*;
use std::path::Path;

/// The repository's maps with the values of Infineon's (PSoC 6 and XMC7000).
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/flashmap");

fn infineon(name: &str) -> FlashMap {
    load(&Path::new(DIR).join(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_infineon_map_parses_and_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(DIR).expect("Infineon flash maps") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("_platform.json") || !name.ends_with(".json") {
            continue;
        }
        let map = load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(map.validate(), Ok(()), "{name}");
        let expect = if name.contains("overwrite") {
            UpgradeMode::Overwrite
        } else {
            UpgradeMode::Swap
        };
        assert_eq!(map.mode, expect, "{name}");
        n += 1;
    }
    assert_eq!(n, 12);
}

#[test]
fn sim_layouts_parse_and_suit_the_bootloader() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flashmap");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("flashmap/") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("_sim.json") {
            continue;
        }
        let map = load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        map.validate_for_boot()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(map.max_image_size() >= 0x1000, "{name}");
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn psoc62_2m_ext_swap_matches_the_spec() {
    let m = infineon("psoc62_2m_ext_swap_single.json");
    let p = m.sign_params();
    assert_eq!(p.load_offset, 0x28000);
    assert_eq!(p.slot_size, 0x1c0000);
    assert_eq!(p.max_sectors, 3584);
    assert_eq!(p.erased_val, 0xff);
    assert!(!p.overwrite_only);
    assert_eq!(m.secondary.device, Device::External);
    assert_eq!(m.secondary.erase_size, 0x40000);
    assert_eq!(m.primary.erase_value, 0x00);
    assert_eq!(m.status.unwrap().size, 0x6c00);
    assert_eq!(m.scratch.unwrap().address, 0x1844_0000);
    assert_eq!(m.trailer_for(&m.primary).trailer_size(), 0x15030);
    // MCUboot's limit (spec §3 worked numbers): the trailer starts at 0x1aafd0, inside the
    // external flash's last 256 KiB sector, and the whole trailer is in that sector.
    assert_eq!(m.max_image_size(), 0x1a_afd0);
    assert_eq!(m.download_max_image_size(), 0x18_0000);
    // A bootloader built with MCUBOOT_ENC_IMAGES: two 16-byte key fields more.
    let enc = FlashMap {
        enc_images: true,
        ..m
    };
    assert_eq!(enc.trailer_for(&enc.primary).trailer_size(), 0x15050);
    assert_eq!(enc.max_image_size(), 0x1a_afb0);
    assert_eq!(
        infineon("psoc62_2m_ext_overwrite_single.json").max_image_size(),
        0x1c_0000 - 40
    );
    assert_eq!(
        infineon("psoc62_2m_int_swap_single.json").max_image_size(),
        0xe_6000 - 0xacb0
    );
}

#[test]
fn psoc62_2m_int_swap_and_overwrite() {
    let m = infineon("psoc62_2m_int_swap_single.json");
    let p = m.sign_params();
    assert_eq!(
        (p.load_offset, p.slot_size, p.max_sectors),
        (0x28000, 0xe6000, 1840)
    );
    assert_eq!(p.erased_val, 0);
    assert_eq!(m.trailer_for(&m.primary).trailer_size(), 0xacb0);
    let m = infineon("psoc62_2m_ext_overwrite_single.json");
    let p = m.sign_params();
    assert_eq!(
        (p.load_offset, p.slot_size, p.max_sectors),
        (0x18000, 0x1c0000, 3584)
    );
    assert!(p.overwrite_only);
}

#[test]
fn xmc7200_uses_its_platform_file() {
    let m = infineon("xmc7200_int_swap_single.json");
    assert_eq!(m.primary.erase_size, 0x8000);
    assert_eq!(m.primary.erase_value, 0xff);
    assert_eq!(m.scratch.unwrap().erase_size, 0x800);
    assert_eq!(m.status.unwrap().erase_size, 0x80);
    assert_eq!(m.max_img_sectors(), 64);
    assert_eq!(m.primary_offset(), 0x80000);
    assert_eq!(
        infineon("xmc7100_int_overwrite_single.json").mode,
        UpgradeMode::Overwrite
    );
}

#[test]
fn explicit_platform_and_errors() {
    let json =
        std::fs::read_to_string(Path::new(DIR).join("psoc62_2m_int_swap_single.json")).unwrap();
    let m = parse("layout.json", &json, Some("PSOC_062_2M"), None).unwrap();
    assert_eq!(m.primary.erase_size, 512);
    assert!(matches!(
        parse("layout.json", &json, None, None),
        Err(ParseError::UnknownPlatform(_))
    ));
    assert!(matches!(
        parse("psoc62_2m_x.json", "{", None, None),
        Err(ParseError::Json(_))
    ));
    let bad = json.replace("0x10028000", "0xZZ");
    assert!(matches!(
        parse("psoc62_2m_x.json", &bad, None, None),
        Err(ParseError::BadNumber(..))
    ));
    // 1 MiB part: the 2 MiB layout's secondary lies outside internal flash.
    assert!(matches!(
        parse("psoc62_1m_x.json", &json, None, None),
        Err(ParseError::NoRegion(..))
    ));
}
