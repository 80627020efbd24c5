//! Power-cut sweep: for every host-simulation flash map, cut power at every flash operation of
//! the download, the swap (install), the revert and the confirm, then reboot and check that the
//! device boots a valid image — the old or the new one, as MCUboot would — and that a further
//! boot changes nothing. Plus seeded random multi-cut runs (the seed is printed; set
//! `OTA_POWERCUT_SEED` to replay). `OTA_POWERCUT_LARGE=1` sweeps a larger image.
//!
//! Run with `--nocapture` to see one `<map>/<scenario>: N cut points` line per scenario.

mod common;

use common::publisher::{agent_config, run, End, Publisher};
use common::{app, holds, image_of, public_key};
use ota_core::agent::journal::Journal;
use ota_core::agent::{Agent, BootReport};
use ota_core::boot::app as bootapp;
use ota_core::flashmap::{FlashMap, UpgradeMode};
use ota_core::image::Version;
use ota_core::protocol::AppVersion;
use ota_host::sim::SimDevice;

/// Performs the operation under test; an `Err` means the power was cut.
pub type Action<'a> = dyn Fn(&mut SimDevice) -> Result<(), String> + 'a;
/// Checks the device after recovery, given where the cut was.
pub type Check<'a> = dyn Fn(&mut SimDevice, &Cut) + 'a;

/// Where a run was cut.
pub struct Cut {
    /// For messages.
    pub what: String,
    /// The cut hit the scenario's last flash operation (or a random run, where any
    /// operation of the recovery boots may have been cut too).
    pub at_end: bool,
    /// The cut point of an exhaustive run.
    pub index: Option<u64>,
}

pub fn seed() -> u64 {
    std::env::var("OTA_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001)
}

/// One boot with the test key (downgrade prevention on).
pub fn boot(dev: &mut SimDevice) -> Result<Version, String> {
    dev.boot(&[public_key(0)], true)
        .map(|o| o.image.header.version)
        .map_err(|e| e.to_string())
}

/// Boots until a boot completes without a cut (power restored first).
pub fn recover(dev: &mut SimDevice, what: &str) -> Version {
    dev.rail.restore();
    boot(dev).unwrap_or_else(|e| panic!("{what}: boot after a power cut must succeed: {e}"))
}

fn contents(dev: &SimDevice) -> (Vec<u8>, Vec<u8>) {
    (dev.primary.data().to_vec(), dev.secondary.data().to_vec())
}

/// After recovery: a second boot neither fails nor changes flash.
pub fn assert_stable(dev: &mut SimDevice, what: &str) -> Version {
    let before = contents(dev);
    let v = boot(dev).unwrap_or_else(|e| panic!("{what}: second boot: {e}"));
    assert!(contents(dev) == before, "{what}: second boot changed flash");
    v
}

/// Exhaustive sweep plus `k` random multi-cut runs; returns the number of cut points.
pub fn sweep(name: &str, start: &SimDevice, action: &Action<'_>, check: &Check<'_>) -> u64 {
    let mut clean = start.fork(1);
    let before = clean.ops();
    action(&mut clean).unwrap_or_else(|e| panic!("{name}: clean run failed: {e}"));
    let n = clean.ops() - before;
    let base = seed();
    for i in 0..n {
        let mut dev = start.fork(base ^ i);
        dev.rail.cut_after(i);
        assert!(
            action(&mut dev).is_err(),
            "{name}: cut {i} did not stop the run"
        );
        let what = format!("{name} cut {i}");
        recover(&mut dev, &what);
        check(
            &mut dev,
            &Cut {
                what,
                at_end: i + 1 == n,
                index: Some(i),
            },
        );
    }
    random_cuts(name, start, action, check, n, base);
    println!("{name}: {n} cut points");
    n
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Cut once in the action, then up to 3 more times during the recovery boots.
fn random_cuts(
    name: &str,
    start: &SimDevice,
    action: &Action<'_>,
    check: &Check<'_>,
    n: u64,
    base: u64,
) {
    let mut rng = base | 1;
    for k in 0..16 {
        let mut dev = start.fork(xorshift(&mut rng));
        dev.rail.cut_after(xorshift(&mut rng) % n.max(1));
        let _ = action(&mut dev);
        for _ in 0..3 {
            dev.rail.restore();
            dev.rail.cut_after(xorshift(&mut rng) % (n + 4));
            if boot(&mut dev).is_ok() {
                break;
            }
        }
        let what = format!("{name} random run {k} (seed {base:#x})");
        recover(&mut dev, &what);
        check(
            &mut dev,
            &Cut {
                what,
                at_end: true,
                index: None,
            },
        );
    }
}

fn stage(dev: &mut SimDevice, img: &[u8], permanent: bool) {
    dev.secondary.program(0, img);
    let layout = dev.secondary_layout();
    bootapp::set_pending(&mut dev.secondary, &layout, permanent).unwrap();
}

/// An old and a new image.
type Images = (Vec<u8>, Vec<u8>);

/// The old and new images: ~1.6 KiB and ~2.3 KiB (several swap units on the small maps);
/// `OTA_POWERCUT_LARGE=1` makes the new one ~5 KiB (slower: about twice the cut points).
fn old_new() -> Images {
    let large = std::env::var("OTA_POWERCUT_LARGE").is_ok_and(|v| v == "1");
    (app(1, 0, 1500), app(1, 1, if large { 5000 } else { 2100 }))
}

fn boot_action(dev: &mut SimDevice) -> Result<(), String> {
    boot(dev).map(|_| ())
}

fn power_cut_during_swap_boots_new_image(name: &str, map: FlashMap, images: &Images) -> u64 {
    let (old, new) = images;
    let mut start = common::device_with(map, old);
    stage(&mut start, new, false);
    // A test image gets one boot: a cut at the very end (the `copy_done` write) may leave
    // `copy_done` set before the image ever ran, and the next boot reverts, as MCUboot would.
    let check = |dev: &mut SimDevice, cut: &Cut| {
        let what = &cut.what;
        if !holds(dev.primary.data(), new) {
            assert!(cut.at_end, "{what}: primary must hold the new image");
            assert!(
                holds(dev.primary.data(), old),
                "{what}: old image after revert"
            );
            assert!(holds(dev.secondary.data(), new), "{what}: new image kept");
        }
    };
    sweep(&format!("{name}/swap"), &start, &boot_action, &check)
}

fn power_cut_during_revert_boots_old_image(name: &str, map: FlashMap, images: &Images) -> u64 {
    let (old, new) = images;
    let mut start = common::device_with(map, old);
    stage(&mut start, new, false);
    boot(&mut start).unwrap();
    let check = |dev: &mut SimDevice, cut: &Cut| {
        let what = &cut.what;
        assert!(
            holds(dev.primary.data(), old),
            "{what}: primary must hold the old image"
        );
        assert_eq!(assert_stable(dev, what).minor, 0);
    };
    sweep(&format!("{name}/revert"), &start, &boot_action, &check)
}

fn power_cut_during_confirm_boots_old_or_new(name: &str, map: FlashMap, images: &Images) -> u64 {
    let (old, new) = images;
    let mut start = common::device_with(map, old);
    stage(&mut start, new, false);
    boot(&mut start).unwrap();
    let confirm = |dev: &mut SimDevice| {
        let layout = dev.primary_layout();
        bootapp::set_confirmed(&mut dev.primary, &layout).map_err(|e| e.to_string())?;
        boot(dev).map(|_| ())
    };
    let check = |dev: &mut SimDevice, cut: &Cut| {
        let what = &cut.what;
        let v = assert_stable(dev, what);
        let img = if v.minor == 1 { new } else { old };
        assert!(holds(dev.primary.data(), img), "{what}");
        if map.mode == UpgradeMode::Overwrite {
            assert_eq!(v.minor, 1, "{what}: overwrite never reverts");
        }
    };
    sweep(&format!("{name}/confirm"), &start, &confirm, &check)
}

/// Whether the test images fit the map (large images skip the maps with wide trailers).
fn fits(name: &str, map: &FlashMap) -> bool {
    let ok = old_new().1.len() as u32 <= map.download_max_image_size();
    if !ok {
        println!("{name}: image larger than the slot allows, skipped");
    }
    ok
}

const V10: AppVersion = AppVersion::new(1, 0, 0);
const V11: AppVersion = AppVersion::new(1, 1, 0);

/// One agent session on a freshly booted device running 1.0.0.
fn download_session(
    dev: &mut SimDevice,
    publ: &Publisher,
) -> Result<(BootReport, Option<u32>), String> {
    let keys = [public_key(0)];
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).map_err(|e| e.to_string())?;
    let report = agent
        .on_boot(&mut dev.primary, &mut dev.secondary)
        .map_err(|e| e.to_string())?;
    if report == BootReport::RebootPending {
        return Ok((report, None));
    }
    let mut now = 0;
    match run(&mut agent, &mut dev.secondary, publ, &mut now, 100)? {
        End::Reboot => Ok((report, agent.status().resumed_from)),
        End::Stalled => Err(format!("download stalled: {:?}", agent.status())),
    }
}

fn power_cut_during_download_resumes(name: &str, map: FlashMap) -> u64 {
    let (old, new) = old_new();
    let start = common::device_with(map, &old);
    let publ = Publisher::new(new.clone(), V11);
    let action = |dev: &mut SimDevice| download_session(dev, &publ).map(|_| ());
    let records = 3 + new.len().div_ceil(256) as u32;
    let roomy = Journal::new(&map).capacity() > records;
    if !roomy {
        println!("{name}/download: journal holds fewer than {records} records; restarts allowed");
    }
    let check = |dev: &mut SimDevice, cut: &Cut| {
        let what = &cut.what;
        assert!(
            holds(dev.primary.data(), &old) || holds(dev.primary.data(), &new),
            "{what}"
        );
        if !holds(dev.primary.data(), &new) {
            let (report, resumed) =
                download_session(dev, &publ).unwrap_or_else(|e| panic!("{what}: {e}"));
            // Cut 0 is the slot erase, cut 1 the journal header: only then may it start over
            // (or when the journal is too small to record a rewind; it then says so).
            if cut.index.is_some_and(|i| i >= 2) && report != BootReport::RebootPending && roomy {
                assert!(resumed.is_some(), "{what}: download restarted from zero");
            }
            recover(dev, what);
        }
        assert!(
            holds(dev.primary.data(), &new),
            "{what}: new image installed"
        );
    };
    sweep(&format!("{name}/download"), &start, &action, &check)
}

#[test]
fn power_cut_sweep_download() {
    println!("power-cut seed {:#x} (OTA_POWERCUT_SEED to replay)", seed());
    for (name, map) in common::matrix() {
        if !fits(&name, &map) {
            continue;
        }
        assert!(power_cut_during_download_resumes(&name, map) > 0);
    }
}

#[test]
fn power_cut_sweep_swap_revert_confirm() {
    println!("power-cut seed {:#x} (OTA_POWERCUT_SEED to replay)", seed());
    for (name, map) in common::matrix() {
        if !fits(&name, &map) {
            continue;
        }
        swap_revert_confirm(&name, map, &old_new());
    }
}

fn swap_revert_confirm(name: &str, map: FlashMap, images: &Images) {
    assert!(power_cut_during_swap_boots_new_image(name, map, images) > 0);
    if map.mode == UpgradeMode::Swap {
        assert!(power_cut_during_revert_boots_old_image(name, map, images) > 0);
    } else {
        println!("{name}/revert: 0 cut points (overwrite-only has no revert)");
    }
    assert!(power_cut_during_confirm_boots_old_or_new(name, map, images) > 0);
}

/// Images as large as MCUboot allows reach into the swap unit that holds the trailer: the
/// bootloader swaps that unit's image bytes through the scratch area (with the status in the
/// scratch area's trailer) and reverts and confirms them, whatever the power does.
#[test]
fn power_cut_sweep_slot_filling_images() {
    println!("power-cut seed {:#x} (OTA_POWERCUT_SEED to replay)", seed());
    for (erased, scratch_units, overwrite) in [(0xff, 1, false), (0x00, 2, false), (0xff, 1, true)]
    {
        let map = common::trailer_unit_map(erased, scratch_units, overwrite);
        map.validate_for_boot().unwrap();
        let max = map.max_image_size();
        assert!(max > map.download_max_image_size());
        let name = format!("trailer-unit-{erased:#x}-scratch{scratch_units}-overwrite{overwrite}");
        // Old image also reaching into the trailer unit, new one filling the slot.
        let images = (image_of(0, max - 0x300), image_of(1, max));
        swap_revert_confirm(&name, map, &images);
    }
}
