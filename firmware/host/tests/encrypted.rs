//! Encrypted images in the simulated bootloader (MCUboot's `MCUBOOT_ENC_IMAGES`), overwrite-only
//! and swap upgrades: for ECIES-P256 and ECIES-X25519 the secondary slot keeps the encrypted
//! image, the primary receives the plaintext; in swap mode the image moved out of the primary is
//! encrypted again (the secondary never holds plaintext of an encrypted image), a test image
//! reverts to the old one, the AES keys sit in the status trailer at MCUboot's offsets, and a
//! power cut anywhere in an install or a revert (or a second cut while recovering) still ends
//! with the right image; an image the device cannot decrypt (no key, another device's key,
//! another scheme) is refused and the old image keeps running.

mod common;

use common::{app, device_with, enc_key, encrypted_app, holds, matrix, public_key};
use ota_core::boot::app as bootapp;
use ota_core::boot::BootError;
use ota_core::flashmap::{FlashMap, UpgradeMode};
use ota_core::image::enc::{EncPrivateKey, EncScheme};
use ota_core::image::trailer::SwapType;
use ota_host::sim::SimDevice;

/// The matrix's maps of `mode`, for a bootloader built with `MCUBOOT_ENC_IMAGES` (in swap
/// mode, trailers with the AES key fields).
fn maps(mode: UpgradeMode) -> Vec<(String, FlashMap)> {
    matrix()
        .into_iter()
        .filter(|(_, m)| m.mode == mode)
        .map(|(n, mut m)| {
            m.enc_images = true;
            (n, m)
        })
        .collect()
}

fn stage(dev: &mut SimDevice, img: &[u8]) {
    stage_as(dev, img, true);
}

fn stage_as(dev: &mut SimDevice, img: &[u8], permanent: bool) {
    dev.secondary.program(0, img);
    let layout = dev.secondary_layout();
    bootapp::set_pending(&mut dev.secondary, &layout, permanent).unwrap();
}

fn boot(dev: &mut SimDevice, key: Option<&EncPrivateKey>) -> SwapType {
    dev.boot_with(&[public_key(0)], true, key)
        .unwrap()
        .swap_type
}

#[test]
fn encrypted_update_is_installed_as_plaintext_and_the_secondary_stays_encrypted() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        let (stored, plain) = encrypted_app(&key, 1, 3001);
        assert_ne!(stored, plain);
        for (name, map) in maps(UpgradeMode::Overwrite) {
            let name = format!("{scheme:?} {name}");
            let old = app(1, 0, 2000);
            let mut dev = device_with(map, &old);
            stage(&mut dev, &stored);
            // What the agent stored is validated through the key before anything changes.
            assert!(holds(dev.secondary.data(), &stored), "{name}");
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Perm, "{name}");
            assert!(
                holds(dev.primary.data(), &plain),
                "{name}: plaintext in the primary"
            );
            let out = dev.boot_with(&[public_key(0)], true, Some(&key)).unwrap();
            assert_eq!(out.swap_type, SwapType::None, "{name}: installed once");
            assert_eq!(out.image.header.version.minor, 1, "{name}");
        }
    }
}

#[test]
fn an_image_the_device_cannot_decrypt_is_refused_and_the_old_image_keeps_running() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        let (stored, _) = encrypted_app(&key, 1, 3001);
        let other_scheme = EncScheme::ALL.into_iter().find(|s| *s != scheme).unwrap();
        let wrong = [
            ("another device's key", Some(enc_key(scheme, 2))),
            ("another scheme's key", Some(enc_key(other_scheme, 1))),
            ("no key", None),
        ];
        let cases = maps(UpgradeMode::Overwrite)
            .into_iter()
            .chain(maps(UpgradeMode::Swap))
            .flat_map(|m| wrong.iter().map(move |w| (m.clone(), w)));
        for ((name, map), (why, bad)) in cases {
            let bad = bad.as_ref();
            let name = format!("{scheme:?} {name}: {why}");
            let old = app(1, 0, 2000);
            let mut dev = device_with(map, &old);
            stage(&mut dev, &stored);
            assert_eq!(boot(&mut dev, bad), SwapType::None, "{name}");
            assert!(
                holds(dev.primary.data(), &old),
                "{name}: the old image stays"
            );
            assert_eq!(
                boot(&mut dev, bad),
                SwapType::None,
                "{name}: and stays refused"
            );
            assert!(holds(dev.primary.data(), &old), "{name}");
        }
    }
}

/// One boot with the test signing key and the decryption key `key`: the running minor version.
fn boot_minor(dev: &mut SimDevice, key: Option<&EncPrivateKey>) -> Result<u8, String> {
    dev.boot_with(&[public_key(0)], true, key)
        .map(|o| o.image.header.version.minor)
        .map_err(|e| e.to_string())
}

/// Cuts the power at every flash operation of a boot of `start` with `key`, alone and again
/// with a second cut somewhere in the first recovery boot; boots until a boot completes, then
/// calls `check(dev, what, last)`. `last`: the run may have been cut at a boot's last
/// operation (the `copy_done` write of a test swap: the next boot then reverts, as in MCUboot).
/// Returns the number of cut points.
fn sweep(
    name: &str,
    start: &SimDevice,
    key: &EncPrivateKey,
    check: &dyn Fn(&mut SimDevice, &str, bool),
) -> u64 {
    let mut clean = start.fork(1);
    let before = clean.ops();
    boot_minor(&mut clean, Some(key)).unwrap_or_else(|e| panic!("{name}: clean run: {e}"));
    let n = clean.ops() - before;
    for i in 0..n {
        for second in [None, Some((i * 7 + 3) % n)] {
            let then = second.map_or(String::new(), |j| format!(", then {j}"));
            let what = format!("{name}: cut {i}/{n}{then}");
            let mut dev = start.fork(0x5eed ^ i);
            dev.rail.cut_after(i);
            assert!(boot_minor(&mut dev, Some(key)).is_err(), "{what}: not cut");
            dev.rail.restore();
            if let Some(j) = second {
                dev.rail.cut_after(j);
            }
            let first = boot_minor(&mut dev, Some(key));
            dev.rail.restore();
            if let Err(e) = first {
                assert!(second.is_some(), "{what}: recovery boot: {e}");
                boot_minor(&mut dev, Some(key)).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            check(&mut dev, &what, second.is_some() || i + 1 == n);
        }
    }
    println!("{name}: {n} cut points");
    n
}

#[test]
fn a_power_cut_anywhere_in_an_encrypted_install_still_installs_the_plaintext() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        let (stored, plain) = encrypted_app(&key, 1, 3001);
        for (name, map) in maps(UpgradeMode::Overwrite) {
            let mut start = device_with(map, &app(1, 0, 2000));
            stage(&mut start, &stored);
            let check = |dev: &mut SimDevice, what: &str, _: bool| {
                assert!(holds(dev.primary.data(), &plain), "{what}: as plaintext");
                assert_eq!(boot(dev, Some(&key)), SwapType::None, "{what}: stable");
                assert_eq!(
                    boot_minor(dev, Some(&key)),
                    Ok(1),
                    "{what}: the new image runs"
                );
            };
            assert!(sweep(&format!("{scheme:?} {name}"), &start, &key, &check) > 0);
        }
    }
}

#[test]
fn the_agent_downloads_an_encrypted_image_and_the_bootloader_installs_it() {
    use common::publisher::{agent_config, run, End, Publisher};
    use ota_core::agent::{Agent, BootReport};
    use ota_core::protocol::AppVersion;
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        let (stored, plain) = encrypted_app(&key, 1, 3001);
        let mut tampered = stored.clone();
        tampered[0x200] ^= 0x10;
        let all = maps(UpgradeMode::Overwrite)
            .into_iter()
            .chain(maps(UpgradeMode::Swap));
        for (name, map) in all {
            let name = format!("{scheme:?} {name}");
            for (image, installs) in [(&stored, true), (&tampered, false)] {
                let old = app(1, 0, 2000);
                let mut dev = device_with(map, &old);
                let keys = [public_key(0)];
                let cfg = agent_config(dev.map, &keys, AppVersion::new(1, 0, 0));
                let mut agent = Agent::new(cfg, 99).unwrap();
                let report = agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
                assert_eq!(report, BootReport::Normal, "{name}");
                let publ = Publisher::new(image.clone(), AppVersion::new(1, 1, 0));
                let mut now = 0;
                let end = run(&mut agent, &mut dev.secondary, &publ, &mut now, 200).unwrap();
                // The agent cannot tell a tampered ciphertext: the bootloader can.
                assert_eq!(end, End::Reboot, "{name}");
                assert!(
                    holds(dev.secondary.data(), image),
                    "{name}: stored encrypted"
                );
                let out = dev.boot_with(&keys, true, Some(&key)).unwrap();
                let runs = if installs { &plain } else { &old };
                assert!(
                    holds(dev.primary.data(), runs),
                    "{name}: installs {installs}"
                );
                assert_eq!(out.image.header.version.minor, u8::from(installs), "{name}");
            }
        }
    }
}

#[test]
fn without_the_decryption_key_the_recorded_hash_must_still_be_signed_by_a_trusted_key() {
    use ota_core::image::verify::{validate, validate_encrypted_as_stored, VerifyError};
    let key = enc_key(EncScheme::X25519, 1);
    let (stored, plain) = encrypted_app(&key, 1, 3001);
    let cap = stored.len() as u32;
    assert_eq!(
        validate(&mut stored.as_slice(), cap, &[public_key(0)]).unwrap_err(),
        VerifyError::HashMismatch,
        "hashed as stored"
    );
    let ok = validate_encrypted_as_stored(&mut stored.as_slice(), cap, &[public_key(0)]).unwrap();
    assert_eq!(ok.key_index, Some(0));
    let foreign = validate_encrypted_as_stored(&mut stored.as_slice(), cap, &[public_key(1)]);
    assert_eq!(foreign.unwrap_err(), VerifyError::UnknownKey);
    // A recorded hash changed after signing: the signature no longer matches it.
    let parsed = ota_core::image::ParsedImage::parse(&stored).unwrap();
    let sha_off = parsed
        .find(ota_core::image::TlvKind::SHA256)
        .unwrap()
        .offset as usize;
    let mut forged = stored.clone();
    forged[sha_off + 4] ^= 1; // the first byte of the digest
    assert_eq!(
        validate_encrypted_as_stored(&mut forged.as_slice(), cap, &[public_key(0)]).unwrap_err(),
        VerifyError::BadSignature
    );
    let plain_cap = plain.len() as u32;
    assert_eq!(
        validate_encrypted_as_stored(&mut plain.as_slice(), plain_cap, &[public_key(0)]).unwrap(),
        validate(&mut plain.as_slice(), plain_cap, &[public_key(0)]).unwrap(),
        "the decrypted image's recorded hash is its hash"
    );
}

/// The swap-mode maps of the matrix and two whose first trailer unit also holds image bytes
/// (their images below fill the slot: the swap status then starts in the scratch area's
/// trailer, with the keys), each with the AES key fields.
fn swap_maps() -> Vec<(String, FlashMap)> {
    let mut out = maps(UpgradeMode::Swap);
    for (erased, units) in [(0xff, 1), (0x00, 2)] {
        let mut m = common::trailer_unit_map(erased, units, false);
        m.enc_images = true;
        m.validate_for_boot().unwrap();
        out.push((format!("trailer-unit-{erased:#x}-scratch{units}"), m));
    }
    out
}

/// Encrypted images v1.1 and v1.2 for `map`: ~3 KiB, or as large as the map allows (minus
/// 0x300 for the old one) on the trailer-unit maps, so both reach into the trailer unit.
fn old_new(key: &EncPrivateKey, name: &str, map: &FlashMap) -> [(Vec<u8>, Vec<u8>); 2] {
    if !name.starts_with("trailer-unit") {
        return [encrypted_app(key, 1, 2500), encrypted_app(key, 2, 3001)];
    }
    let max = map.max_image_size() as usize;
    let overhead = encrypted_app(key, 1, 16).0.len() - 16;
    let fill = |minor, total: usize| encrypted_app(key, minor, (total - overhead - 2) / 16 * 16);
    let imgs = [fill(1, max - 0x300), fill(2, max)];
    let unit = map.trailer_sector_off(&map.primary) as usize;
    for (stored, _) in &imgs {
        assert!(stored.len() > unit && stored.len() <= max, "{name}");
    }
    imgs
}

/// The offset of slot `slot`'s AES key as MCUboot computes it (`boot_enc_key_off`): below
/// the magic area `align_up(16, A)`, the four `A`-sized fields and `slot + 1` key fields.
fn mcuboot_enc_key_off(layout: &ota_core::image::trailer::TrailerLayout, slot: u32) -> usize {
    let key_field = 16u32.div_ceil(layout.max_align) * layout.max_align;
    (layout.slot_size - key_field - 4 * layout.max_align - (slot + 1) * key_field) as usize
}

#[test]
fn encrypted_swaps_decrypt_into_the_primary_and_keep_ciphertext_in_the_secondary() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        for (name, map) in swap_maps() {
            let name = format!("{scheme:?} {name}");
            let [(stored1, plain1), (stored2, plain2)] = old_new(&key, &name, &map);
            // A plain image first: an encrypted update is swapped in and, unconfirmed, back out.
            let v0 = app(1, 0, 2000);
            let mut dev = device_with(map, &v0);
            stage_as(&mut dev, &stored1, false);
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Test, "{name}");
            assert!(holds(dev.primary.data(), &plain1), "{name}: plaintext in");
            assert!(
                holds(dev.secondary.data(), &v0),
                "{name}: a plain image stays plain"
            );
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Revert, "{name}");
            assert!(holds(dev.primary.data(), &v0), "{name}: reverted");
            assert!(
                holds(dev.secondary.data(), &stored1),
                "{name}: re-encrypted"
            );
            // Installed for good this time.
            stage_as(&mut dev, &stored1, true);
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Perm, "{name}");
            assert!(holds(dev.primary.data(), &plain1), "{name}");
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::None, "{name}");
            // Encrypted over encrypted, as a test: the old image leaves the primary encrypted
            // with its own key (slot 0), i.e. exactly as it was once downloaded.
            stage_as(&mut dev, &stored2, false);
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Test, "{name}");
            assert!(holds(dev.primary.data(), &plain2), "{name}: new plaintext");
            assert!(
                holds(dev.secondary.data(), &stored1),
                "{name}: old ciphertext"
            );
            assert!(
                !holds(dev.secondary.data(), &plain1),
                "{name}: no plaintext"
            );
            let layout = dev.primary_layout();
            assert_eq!(
                layout.enc_keys_size(),
                2 * (mcuboot_enc_key_off(&layout, 0) - mcuboot_enc_key_off(&layout, 1)) as u32
            );
            for (slot, minor) in [(0, 1u8), (1, 2)] {
                let off = mcuboot_enc_key_off(&layout, slot);
                assert_eq!(layout.enc_key_off(slot) as usize, off, "{name}");
                assert_eq!(
                    dev.primary.data()[off..off + 16],
                    [minor ^ 0x5a; 16],
                    "{name}: the AES key of slot {slot} in the primary trailer"
                );
            }
            // Not confirmed: the old image comes back, decrypted again.
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::Revert, "{name}");
            assert!(holds(dev.primary.data(), &plain1), "{name}: old plaintext");
            assert!(
                holds(dev.secondary.data(), &stored2),
                "{name}: new ciphertext"
            );
            assert_eq!(
                boot_minor(&mut dev, Some(&key)),
                Ok(1),
                "{name}: old image runs"
            );
            assert_eq!(boot(&mut dev, Some(&key)), SwapType::None, "{name}");
        }
    }
}

#[test]
fn a_power_cut_anywhere_in_an_encrypted_swap_or_its_revert_ends_with_the_right_image() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        for (name, map) in swap_maps() {
            let name = format!("{scheme:?} {name}");
            let [(stored1, plain1), (stored2, plain2)] = old_new(&key, &name, &map);
            // The old image as an earlier encrypted install left it; the new one as a test.
            let mut start = device_with(map, &plain1);
            stage_as(&mut start, &stored2, false);
            let swapped = |dev: &mut SimDevice, what: &str, last: bool| {
                if holds(dev.primary.data(), &plain2) {
                    assert!(
                        holds(dev.secondary.data(), &stored1),
                        "{what}: old ciphertext"
                    );
                } else {
                    // Cut at `copy_done`: the recovery boot found the test image done and
                    // reverted it.
                    assert!(last, "{what}: the primary must hold the new plaintext");
                    assert!(holds(dev.primary.data(), &plain1), "{what}: old plaintext");
                    assert!(
                        holds(dev.secondary.data(), &stored2),
                        "{what}: new ciphertext"
                    );
                }
            };
            assert!(sweep(&format!("{name}/swap"), &start, &key, &swapped) > 0);
            let mut tested = start.fork(2);
            assert_eq!(boot(&mut tested, Some(&key)), SwapType::Test, "{name}");
            let reverted = |dev: &mut SimDevice, what: &str, _: bool| {
                assert!(holds(dev.primary.data(), &plain1), "{what}: old plaintext");
                assert!(
                    holds(dev.secondary.data(), &stored2),
                    "{what}: new ciphertext"
                );
                assert_eq!(boot(dev, Some(&key)), SwapType::None, "{what}: stable");
                assert_eq!(boot_minor(dev, Some(&key)), Ok(1), "{what}: old image runs");
            };
            assert!(sweep(&format!("{name}/revert"), &tested, &key, &reverted) > 0);
        }
    }
}

#[test]
fn a_resumed_swap_decrypts_with_the_keys_in_its_trailer_not_the_device_key() {
    let key = enc_key(EncScheme::EcP256, 1);
    for (name, map) in swap_maps() {
        let [(stored1, plain1), (stored2, plain2)] = old_new(&key, &name, &map);
        let mut start = device_with(map, &plain1);
        stage_as(&mut start, &stored2, true);
        let mut clean = start.fork(1);
        let before = clean.ops();
        boot(&mut clean, Some(&key));
        let n = clean.ops() - before;
        // Cut halfway (units are being swapped), then resume with no decryption key at all.
        let mut dev = start.fork(2);
        dev.rail.cut_after(n / 2);
        assert!(boot_minor(&mut dev, Some(&key)).is_err(), "{name}");
        dev.rail.restore();
        let out = dev.boot_with(&[public_key(0)], true, None).unwrap();
        assert!(out.resumed, "{name}: resumed");
        assert_eq!(out.image.header.version.minor, 2, "{name}");
        assert!(holds(dev.primary.data(), &plain2), "{name}: decrypted");
        assert!(holds(dev.secondary.data(), &stored1), "{name}: encrypted");
    }
}

#[test]
fn a_decryption_key_in_swap_mode_needs_a_map_with_the_key_fields() {
    let key = enc_key(EncScheme::X25519, 1);
    let (stored, _) = encrypted_app(&key, 1, 3001);
    for (name, mut map) in maps(UpgradeMode::Swap) {
        map.enc_images = false;
        let old = app(1, 0, 2000);
        let mut dev = device_with(map, &old);
        stage(&mut dev, &stored);
        let before = (dev.primary.data().to_vec(), dev.secondary.data().to_vec());
        let err = dev
            .boot_with(&[public_key(0)], true, Some(&key))
            .unwrap_err();
        assert!(matches!(err, BootError::EncKeysNotInMap), "{name}: {err}");
        assert!(err.to_string().contains("enc_images"), "{name}: {err}");
        let after = (dev.primary.data().to_vec(), dev.secondary.data().to_vec());
        assert!(before == after, "{name}: nothing written");
        // The same bootloader without a key (built without MCUBOOT_ENC_IMAGES) refuses the
        // image and boots the old one.
        assert_eq!(boot(&mut dev, None), SwapType::None, "{name}");
        assert!(holds(dev.primary.data(), &old), "{name}");
    }
}
