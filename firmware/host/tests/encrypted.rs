//! Encrypted images in the simulated bootloader (MCUboot's `MCUBOOT_ENC_IMAGES`, overwrite-only
//! upgrades): for ECIES-P256 and ECIES-X25519 the secondary slot keeps the encrypted image, the
//! primary receives the plaintext, and a power cut anywhere in the install still ends with the
//! plaintext installed; an image the device cannot decrypt (no key, another device's key,
//! another scheme, swap mode) is refused and the old image keeps running.

mod common;

use common::{app, device_with, enc_key, encrypted_app, holds, matrix, public_key};
use ota_core::boot::app as bootapp;
use ota_core::flashmap::{FlashMap, UpgradeMode};
use ota_core::image::enc::{EncPrivateKey, EncScheme};
use ota_core::image::trailer::SwapType;
use ota_host::sim::SimDevice;

fn maps(mode: UpgradeMode) -> Vec<(String, FlashMap)> {
    matrix()
        .into_iter()
        .filter(|(_, m)| m.mode == mode)
        .collect()
}

fn stage(dev: &mut SimDevice, img: &[u8]) {
    dev.secondary.program(0, img);
    let layout = dev.secondary_layout();
    bootapp::set_pending(&mut dev.secondary, &layout, true).unwrap();
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
            .flat_map(|m| wrong.iter().map(move |w| (m.clone(), w)))
            .chain(maps(UpgradeMode::Swap).into_iter().map(|m| (m, &wrong[2])));
        for ((name, map), (why, bad)) in cases {
            // In swap mode even the right key is refused: only overwrite upgrades decrypt.
            let bad = if map.mode == UpgradeMode::Swap {
                Some(&key)
            } else {
                bad.as_ref()
            };
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

#[test]
fn a_power_cut_anywhere_in_an_encrypted_install_still_installs_the_plaintext() {
    for scheme in EncScheme::ALL {
        let key = enc_key(scheme, 1);
        let (stored, plain) = encrypted_app(&key, 1, 3001);
        for (name, map) in maps(UpgradeMode::Overwrite) {
            let mut start = device_with(map, &app(1, 0, 2000));
            stage(&mut start, &stored);
            let mut clean = start.fork(1);
            let before = clean.ops();
            assert_eq!(boot(&mut clean, Some(&key)), SwapType::Perm);
            let n = clean.ops() - before;
            for i in 0..n {
                let what = format!("{scheme:?} {name} cut {i}/{n}");
                let mut dev = start.fork(0x5eed ^ i);
                dev.rail.cut_after(i);
                assert!(
                    dev.boot_with(&[public_key(0)], true, Some(&key)).is_err(),
                    "{what}"
                );
                dev.rail.restore();
                let out = dev.boot_with(&[public_key(0)], true, Some(&key)).unwrap();
                assert_eq!(
                    out.image.header.version.minor, 1,
                    "{what}: the new image runs"
                );
                assert!(holds(dev.primary.data(), &plain), "{what}: as plaintext");
                assert_eq!(boot(&mut dev, Some(&key)), SwapType::None, "{what}: stable");
            }
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
        for (name, map) in maps(UpgradeMode::Overwrite) {
            let name = format!("{scheme:?} {name}");
            for (image, installs) in [(&stored, true), (&tampered, false)] {
                let old = app(1, 0, 2000);
                let mut dev = device_with(map, &old);
                let keys = [public_key(0)];
                let cfg = agent_config(dev.map, &keys, AppVersion::new(1, 0, 0));
                let mut agent = Agent::new::<()>(cfg, 99).unwrap();
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
