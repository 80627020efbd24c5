//! One trailer decoder: the same slot bytes go to every reader of the MCUboot trailer — the
//! bootloader (`BootLoader::slot_state`, `boot::app::needs_confirmation`), the OTA agent
//! (`Agent::on_boot`) and `otactl info` (`read_trailer`) — and each answer must match the model
//! of MCUboot's `boot_read_swap_state` written below, independently of the code under test.
//!
//! The bytes are adversarial: flag records whose first byte is erased, `0x01` or anything
//! else, with clean or dirty padding; good, erased, torn and foreign magics; both erased values
//! and every write alignment from 1 to 32 bytes.

use ota_core::agent::{Agent, AgentConfig, BootReport};
use ota_core::boot::{app, BootConfig, BootLoader};
use ota_core::flashmap::{Area, AreaKind, Device, FlashMap, UpgradeMode};
use ota_core::image::{FlagState, MagicState, SwapType};
use ota_core::protocol::AppVersion;
use ota_host::sim::{PowerRail, SimFlash};
use otactl::assemble::read_trailer;
use proptest::prelude::*;

const SLOT: u32 = 0x8000;
const SECTOR: u32 = 0x1000;

/// MCUboot's reading of one slot, from `bootutil_public.c`'s rules (spec/mcuboot.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Model {
    magic: MagicState,
    image_ok: FlagState,
    copy_done: FlagState,
    /// `BOOT_SWAP_TYPE_*` number (1 = none) and image number.
    swap_type: u8,
    image_num: u8,
    /// The raw bytes MCUboot looks at.
    image_ok_byte: u8,
    copy_done_byte: u8,
    swap_info_byte: u8,
}

/// The expected 16 magic bytes for `BOOT_MAX_ALIGN` = `a`.
fn expected_magic(a: usize) -> [u8; 16] {
    if a == 8 {
        return [
            0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6,
            0x79, 0x80,
        ];
    }
    let mut m = [
        0, 0, 0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
    ];
    m[..2].copy_from_slice(&(a as u16).to_le_bytes());
    m
}

/// Field offsets as MCUboot computes them: magic at `S - 16`, `image_ok` at
/// `ALIGN_DOWN(magic_off - A, A)`, then `copy_done` and `swap_info` one `A` further down each.
fn offsets(s: usize, a: usize) -> (usize, usize, usize, usize) {
    let magic = s - 16;
    let image_ok = (magic - a) / a * a;
    (magic, image_ok, image_ok - a, image_ok - 2 * a)
}

fn mcuboot(slot: &[u8], a: usize, e: u8) -> Model {
    let (m, ok, cd, si) = offsets(slot.len(), a);
    let magic = if slot[m..].iter().all(|b| *b == e) {
        MagicState::Unset
    } else if slot[m..] == expected_magic(a) {
        MagicState::Good
    } else {
        MagicState::Bad
    };
    // One byte per flag: erased → unset, 0x01 → set, else bad. Padding is never read.
    let flag = |b: u8| match b {
        b if b == e => FlagState::Unset,
        1 => FlagState::Set,
        _ => FlagState::Bad,
    };
    let info = slot[si];
    let (swap_type, image_num) = if info == e || info & 0x0f > 4 {
        (1, 0)
    } else {
        (info & 0x0f, info >> 4)
    };
    Model {
        magic,
        image_ok: flag(slot[ok]),
        copy_done: flag(slot[cd]),
        swap_type,
        image_num,
        image_ok_byte: slot[ok],
        copy_done_byte: slot[cd],
        swap_info_byte: info,
    }
}

/// Our swap type as MCUboot's number; MCUboot's type 0 (not a swap type) reads as none.
fn number(t: SwapType) -> u8 {
    t.to_u8()
}

fn model_type(m: &Model) -> u8 {
    m.swap_type.max(1)
}

fn map(w: u32, e: u8) -> FlashMap {
    let area = |address, size| Area::new(address, size, SECTOR, e, w, Device::Internal);
    FlashMap {
        bootloader: area(0x1000_0000, 0x1_0000),
        primary: area(0x1001_0000, SLOT),
        secondary: area(0x1001_8000, SLOT),
        scratch: Some(area(0x1002_0000, SECTOR)),
        status: None,
        mode: UpgradeMode::Swap,
        internal_base: 0x1000_0000,
        enc_images: false,
    }
}

/// How one flag record is written.
#[derive(Debug, Clone)]
struct Record {
    first: Option<u8>,
    dirty: Vec<(usize, u8)>,
}

fn record() -> impl Strategy<Value = Record> {
    let first = prop_oneof![
        Just(None),
        Just(Some(1u8)),
        any::<u8>().prop_map(Some),
        Just(Some(0x00)),
        Just(Some(0xff)),
    ];
    let dirty = prop::collection::vec((1usize..32, any::<u8>()), 0..3);
    (first, dirty).prop_map(|(first, dirty)| Record { first, dirty })
}

#[derive(Debug, Clone)]
enum Magic {
    Erased,
    Good,
    /// The good magic with one byte erased or changed.
    Torn(usize, u8),
    Noise([u8; 16]),
}

fn magic() -> impl Strategy<Value = Magic> {
    prop_oneof![
        Just(Magic::Erased),
        Just(Magic::Good),
        (0usize..16, any::<u8>()).prop_map(|(i, b)| Magic::Torn(i, b)),
        any::<[u8; 16]>().prop_map(Magic::Noise),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    w: u32,
    e: u8,
    magic: Magic,
    /// `image_ok`, `copy_done`, `swap_info`.
    records: [Record; 3],
    swap_info_type: Option<(u8, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![1u32, 2, 4, 8, 16, 32]),
        prop::sample::select(vec![0x00u8, 0xff]),
        magic(),
        [record(), record(), record()],
        prop::option::of((1u8..6, 0u8..3)),
    )
        .prop_map(|(w, e, magic, records, swap_info_type)| Case {
            w,
            e,
            magic,
            records,
            swap_info_type,
        })
}

/// The slot bytes for a case: erased, then the magic and the three flag records.
fn slot_bytes(c: &Case) -> Vec<u8> {
    let a = c.w.max(8) as usize;
    let mut slot = vec![c.e; SLOT as usize];
    let (m, ok, cd, si) = offsets(slot.len(), a);
    let good = expected_magic(a);
    match &c.magic {
        Magic::Erased => {}
        Magic::Good => slot[m..].copy_from_slice(&good),
        Magic::Torn(i, b) => {
            slot[m..].copy_from_slice(&good);
            slot[m + i] = *b;
        }
        Magic::Noise(n) => slot[m..].copy_from_slice(n),
    }
    for (off, r) in [ok, cd, si].into_iter().zip(&c.records) {
        if let Some(b) = r.first {
            slot[off] = b;
        }
        for (i, b) in &r.dirty {
            slot[off + i % a] = if *i % a == 0 { slot[off] } else { *b };
        }
    }
    if let (Some((t, n)), None) = (c.swap_info_type, c.records[2].first) {
        slot[si] = (n << 4) | t;
    }
    slot
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn bootloader_agent_and_info_decode_every_trailer_as_mcuboot_does(c in case()) {
        let a = c.w.max(8) as usize;
        let bytes = slot_bytes(&c);
        let want = mcuboot(&bytes, a, c.e);
        let map = map(c.w, c.e);
        let rail = PowerRail::new(1);
        let flash = |data: &[u8], area: Area| SimFlash::with_data(area, data.to_vec(), rail.clone());
        let erased = vec![c.e; SLOT as usize];

        // The bootloader, reading the bytes as its primary and as its secondary slot.
        for (slot, (p, s)) in [(AreaKind::Primary, (&bytes, &erased)), (AreaKind::Secondary, (&erased, &bytes))] {
            let (mut pf, mut sf) = (flash(p, map.primary), flash(s, map.secondary));
            let mut xf = flash(&[], map.scratch.unwrap());
            let cfg = BootConfig { map, keys: &[], downgrade_prevention: false, enc_key: None };
            let mut bl = BootLoader::new(cfg, &mut pf, &mut sf, Some(&mut xf)).unwrap();
            let got = bl.slot_state(slot).unwrap();
            prop_assert_eq!(got.magic, want.magic, "bootloader magic, {:?}", slot);
            prop_assert_eq!(got.image_ok, want.image_ok, "bootloader image_ok, {:?}", slot);
            prop_assert_eq!(got.copy_done, want.copy_done, "bootloader copy_done, {:?}", slot);
            prop_assert_eq!(number(got.swap_info.0), model_type(&want), "bootloader swap type");
            prop_assert_eq!(got.swap_info.1, want.image_num, "bootloader image number");
        }
        let test_image_running = (want.magic, want.image_ok, want.copy_done)
            == (MagicState::Good, FlagState::Unset, FlagState::Set);
        let layout = map.trailer_for(&map.primary);
        let mut pf = flash(&bytes, map.primary);
        prop_assert_eq!(app::needs_confirmation(&mut pf, &layout).unwrap(), test_image_running);

        // The agent after a boot: the bytes in the primary decide "awaiting confirmation".
        let keys = [];
        let cfg = AgentConfig::new(map, &keys, "BOARD", AppVersion::new(1, 0, 0));
        let mut agent = Agent::new(cfg, 1).unwrap();
        let (mut pf, mut sf) = (flash(&bytes, map.primary), flash(&erased, map.secondary));
        let report = agent.on_boot(&mut pf, &mut sf).unwrap();
        let expected = if test_image_running { BootReport::AwaitingConfirm } else { BootReport::Normal };
        prop_assert_eq!(report, expected, "agent on_boot, primary trailer");
        // In the secondary: any magic that is not erased is a trailer to clear.
        let mut agent = Agent::new(cfg, 2).unwrap();
        let (mut pf, mut sf) = (flash(&erased, map.primary), flash(&bytes, map.secondary));
        prop_assert_eq!(agent.on_boot(&mut pf, &mut sf).unwrap(), BootReport::Normal);
        prop_assert_eq!(sf.data() != &bytes[..], want.magic != MagicState::Unset, "agent clears a secondary trailer iff its magic is set");

        // `otactl info`: it learns A from the magic, so it can only agree when the magic is good
        // or A is the default 8.
        if want.magic == MagicState::Good || a == 8 {
            let t = read_trailer(&bytes, 0, Some(c.e)).unwrap();
            prop_assert_eq!(t.layout.max_align as usize, a);
            prop_assert_eq!(t.magic, want.magic, "info magic");
            prop_assert_eq!(t.image_ok, (want.image_ok_byte, want.image_ok), "info image_ok");
            prop_assert_eq!(t.copy_done, (want.copy_done_byte, want.copy_done), "info copy_done");
            prop_assert_eq!(
                (t.swap_info.0, number(t.swap_info.1), t.swap_info.2),
                (want.swap_info_byte, model_type(&want), want.image_num),
                "info swap_info"
            );
        }
    }
}

/// Spot checks of the model itself against the spec's table, so a wrong model cannot make
/// the property above pass.
#[test]
fn the_model_reads_one_byte_per_flag() {
    let mut slot = vec![0xffu8; 0x1000];
    let (m, ok, cd, si) = offsets(slot.len(), 8);
    assert_eq!(
        (m, ok, cd, si),
        (0x1000 - 16, 0x1000 - 24, 0x1000 - 32, 0x1000 - 40)
    );
    slot[m..].copy_from_slice(&expected_magic(8));
    slot[ok] = 1;
    slot[ok + 1] = 0; // dirty padding after a set byte: still set
    slot[cd + 1] = 0; // dirty padding after an erased byte: still unset
    slot[si] = 0x13;
    let got = mcuboot(&slot, 8, 0xff);
    assert_eq!(
        (
            got.magic,
            got.image_ok,
            got.copy_done,
            got.swap_type,
            got.image_num
        ),
        (MagicState::Good, FlagState::Set, FlagState::Unset, 3, 1)
    );
    assert_eq!(&expected_magic(32)[..3], &[0x20, 0x00, 0x2d]);
}
