//! The bootloader on real inputs: Infineon's PSoC 6 layout and images signed by the real
//! imgtool 2.5.0 (`tests/data/vectors`), with `--pad` / `--confirm` trailers written by
//! imgtool. Proves our trailer reading (magic, image_ok, erased value 0x00, `A` = 16) matches
//! imgtool's and that a real Infineon layout swaps and reverts.

mod common;

use std::path::Path;

use ota_core::flashmap::{infineon, Area, Device, FlashMap, UpgradeMode};
use ota_core::image::trailer::TrailerState;
use ota_core::image::trailer::{FlagState, MagicState, SwapType};
use ota_core::image::verify::PublicKey;
use ota_host::sim::SimDevice;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/vectors");
const FLASHMAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/flashmap");

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(VECTORS).join("out").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn infineon_key() -> [PublicKey; 1] {
    let der = std::fs::read(Path::new(VECTORS).join("getpub/getpub-raw.der")).unwrap();
    [PublicKey::from_spki_der(&der).unwrap()]
}

fn image_len(padded: &[u8]) -> usize {
    let parsed = ota_core::image::ParsedImage::parse(padded).unwrap();
    parsed.len()
}

fn run(map: FlashMap, primary: &[u8], secondary: &[u8], expect: SwapType) -> SimDevice {
    let keys = infineon_key();
    let mut dev = SimDevice::new(map, 1);
    dev.primary.program(0, primary);
    dev.secondary.program(0, secondary);
    let out = dev.boot(&keys, false).unwrap();
    assert_eq!(out.swap_type, expect);
    let n = image_len(secondary);
    assert_eq!(
        &dev.primary.data()[..n],
        &secondary[..n],
        "primary holds the update"
    );
    let n = image_len(primary);
    assert_eq!(
        &dev.secondary.data()[..n],
        &primary[..n],
        "secondary holds the old image"
    );
    dev
}

#[test]
fn imgtool_pad_image_on_infineon_internal_map_swaps_and_reverts() {
    let map = infineon::load(
        &Path::new(FLASHMAPS).join("psoc62_2m_int_swap_single.json"),
        None,
    )
    .unwrap();
    let (v05, v06) = (
        vector("v05-ifx-psoc6-int-swap-erased0.bin"),
        vector("v06-ifx-psoc6-int-swap-erased0-pad.bin"),
    );
    assert_eq!(v06.len() as u32, map.secondary.size);
    let mut dev = run(map, &v05, &v06, SwapType::Test);
    let layout = dev.primary_layout();
    let st = TrailerState::read(&mut dev.primary, &layout).unwrap();
    assert_eq!(
        (st.magic, st.image_ok, st.copy_done),
        (MagicState::Good, FlagState::Unset, FlagState::Set)
    );
    let out = dev.boot(&infineon_key(), false).unwrap();
    assert_eq!(out.swap_type, SwapType::Revert);
    assert_eq!(&dev.primary.data()[..v05.len()], &v05[..]);
}

fn plain_map(write_size: u32) -> FlashMap {
    // imgtool PLAIN: -S 0x20000, -M 128 (default) → 1 KiB sectors.
    let a = |address, size| Area::new(address, size, 0x400, 0xff, write_size, Device::Internal);
    let map = FlashMap {
        bootloader: a(0x1000_0000, 0x2_0000),
        primary: a(0x1002_0000, 0x2_0000),
        secondary: a(0x1004_0000, 0x2_0000),
        scratch: Some(a(0x1006_0000, 0x400)),
        status: None,
        mode: UpgradeMode::Swap,
        internal_base: 0x1000_0000,
        enc_images: false,
    };
    assert_eq!(map.max_img_sectors(), 128);
    map
}

#[test]
fn imgtool_confirm_image_is_a_permanent_swap() {
    let mut dev = run(
        plain_map(4),
        &vector("v08-plain-min.bin"),
        &vector("v10-plain-min-pad-confirm.bin"),
        SwapType::Perm,
    );
    assert_eq!(
        dev.boot(&infineon_key(), false).unwrap().swap_type,
        SwapType::None
    );
}

#[test]
fn imgtool_align16_pad_image_uses_the_other_magic_and_is_a_test_swap() {
    run(
        plain_map(16),
        &vector("v08-plain-min.bin"),
        &vector("v11-plain-align16-pad.bin"),
        SwapType::Test,
    );
}
