//! Encrypted images (`sign -E`, issue 16 item 2) against the real imgtool 2.5.0: for ECIES-P256
//! and ECIES-X25519, imgtool's encrypted images decrypt in otactl to exactly the plaintext and
//! verify through the key; otactl's decrypt with an independent implementation
//! (`tests/util/mcuboot_decrypt.py`, over `cryptography`) to an image `imgtool verify` accepts,
//! and their `--clear` form passes `imgtool verify` as it is; both tools' outputs differ only in
//! what is random (the AES key, the ephemeral key, ECDSA signatures); keys made by either tool
//! work in the other and `getpub`/`getpriv` print the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ota_core::image::enc::EncScheme;
use ota_core::image::{ImageFlags, ParsedImage, TlvKind};
use otactl::sign::enc::{load_enc_key, EncKeyFile};

use super::keytypes::{imgtool, ok, ours, s};
use crate::util::{run, tool, vectors_dir};

const SIGN: &[&str] = &[
    "--pad-header",
    "-H",
    "0x400",
    "--align",
    "8",
    "-S",
    "0x20000",
    "-v",
    "1.2.3+4",
];

/// (otactl keygen type, imgtool keygen type, signing key type that goes with it)
const SCHEMES: [(EncScheme, &str, &str, &str); 2] = [
    (EncScheme::EcP256, "enc-ec256", "ecdsa-p256", "ecdsa-p256"),
    (EncScheme::X25519, "enc-x25519", "x25519", "ed25519"),
];

/// imgtool and a temporary directory (`None`: skip, as [`tool`] says).
fn with_imgtool() -> Option<(PathBuf, tempfile::TempDir)> {
    Some((tool("imgtool")?, tempfile::tempdir().unwrap()))
}

/// `sign [-k KEY] -E ENC SIGN… EXTRA… INPUT OUTPUT`, for either tool (both let a later option
/// override an earlier one).
fn sign_args<'a>(
    key: Option<&'a Path>,
    enc: &'a Path,
    extra: &[&'a str],
    input: &'a Path,
    out: &'a Path,
) -> Vec<&'a str> {
    let mut args = vec!["sign"];
    if let Some(k) = key {
        args.extend(["-k", s(k)]);
    }
    args.extend(["-E", s(enc)]);
    args.extend_from_slice(SIGN);
    args.extend_from_slice(extra);
    args.extend([s(input), s(out)]);
    args
}

/// Inputs: the 64 KiB vector payload and one whose length is not a multiple of 16.
fn payloads(d: &Path) -> Vec<PathBuf> {
    let odd = d.join("payload-odd.bin");
    let data: Vec<u8> = (0..1000 + 7).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&odd, data).unwrap();
    vec![vectors_dir().join("payload-64k.bin"), odd]
}

fn private(path: &Path) -> ota_core::image::enc::EncPrivateKey {
    match load_enc_key(path).unwrap() {
        EncKeyFile::Private(k) => k,
        EncKeyFile::Public(_) => panic!("{}: public", path.display()),
    }
}

/// Keys for one scheme, made by imgtool: (encryption key, signing key).
fn imgtool_keys(bin: &Path, d: &Path, enc_ty: &str, sign_ty: &str) -> (PathBuf, PathBuf) {
    let enc = d.join(format!("imgtool-enc-{enc_ty}.pem"));
    let sig = d.join(format!("imgtool-sign-{sign_ty}.pem"));
    ok(
        &imgtool(bin, &["keygen", "-t", enc_ty, "-k", s(&enc)]),
        enc_ty,
    );
    ok(
        &imgtool(bin, &["keygen", "-t", sign_ty, "-k", s(&sig)]),
        sign_ty,
    );
    (enc, sig)
}

#[test]
fn imgtool_encrypted_images_decrypt_to_the_plaintext_and_verify_through_the_key() {
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let d = dir.path();
    for (scheme, _, enc_ty, sign_ty) in SCHEMES {
        let (enc, sig) = imgtool_keys(&bin, d, enc_ty, sign_ty);
        for input in payloads(d) {
            let what = format!("{scheme:?} {}", input.display());
            let out = d.join("imgtool-enc.bin");
            let args = sign_args(Some(&sig), &enc, &[], &input, &out);
            ok(&imgtool(&bin, &args), &what);
            let image = std::fs::read(&out).unwrap();
            let parsed = ParsedImage::parse(&image).unwrap();
            assert!(parsed.header.flags.contains(ImageFlags::ENCRYPTED_AES128));
            assert_eq!(
                parsed.find(scheme.tlv()).unwrap().value.len(),
                scheme.tlv_len()
            );

            let plain = otactl::assemble::decrypt_image(&image, &private(&enc)).unwrap();
            let want = std::fs::read(&input).unwrap();
            let payload = &plain[0x400..0x400 + parsed.header.img_size as usize];
            assert_eq!(&payload[..want.len()], &want[..], "{what}: plaintext");
            assert!(
                payload[want.len()..].iter().all(|b| *b == 0) && payload.len().is_multiple_of(16),
                "{what}: zero padding to 16 bytes"
            );
            // The decrypted image is what the primary slot holds: imgtool verifies it.
            let plain_file = d.join("plain.bin");
            std::fs::write(&plain_file, &plain).unwrap();
            ok(
                &imgtool(&bin, &["verify", "-k", s(&sig), s(&plain_file)]),
                &what,
            );
            // otactl verifies the encrypted image through the key, and explains without it.
            let args = ["verify", "-k", s(&sig), "--enc-key", s(&enc), s(&out)];
            ok(&ours(&args), &what);
            let o = ours(&["verify", "-k", s(&sig), s(&out)]);
            assert_eq!(o.status.code(), Some(1), "{what}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("--enc-key"),
                "{what}: {o:?}"
            );
        }
    }
}

#[test]
fn otactl_encrypted_images_pass_imgtool_verify_once_decrypted_independently() {
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let python = bin.with_file_name("python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/mcuboot_decrypt.py");
    let d = dir.path();
    for (scheme, ours_ty, _, sign_ty) in SCHEMES {
        let enc = d.join(format!("otactl-{ours_ty}.pem"));
        let sig = d.join(format!("otactl-{sign_ty}.pem"));
        ok(&ours(&["keygen", "-t", ours_ty, "-k", s(&enc)]), ours_ty);
        ok(&ours(&["keygen", "-t", sign_ty, "-k", s(&sig)]), sign_ty);
        // Encrypting needs only the public half.
        let enc_pub = d.join(format!("otactl-{ours_ty}.pub.pem"));
        ok(
            &ours(&["getpub", "-k", s(&enc), "-e", "pem", "-o", s(&enc_pub)]),
            ours_ty,
        );
        for input in payloads(d) {
            let what = format!("{scheme:?} {}", input.display());
            let out = d.join("otactl-enc.bin");
            ok(
                &ours(&sign_args(Some(&sig), &enc_pub, &[], &input, &out)),
                &what,
            );
            let plain = d.join("otactl-plain.bin");
            let o = run(Command::new(&python).args([s(&script), s(&enc), s(&out), s(&plain)]));
            ok(&o, &what);
            ok(&imgtool(&bin, &["verify", "-k", s(&sig), s(&plain)]), &what);
            let image = std::fs::read(&out).unwrap();
            assert_eq!(
                otactl::assemble::decrypt_image(&image, &private(&enc)).unwrap(),
                std::fs::read(&plain).unwrap(),
                "{what}: otactl and the independent decryption agree"
            );
            // Encrypted as stored, the hash (over the plaintext) does not match: imgtool says so.
            let o = imgtool(&bin, &["verify", "-k", s(&sig), s(&out)]);
            assert!(
                String::from_utf8_lossy(&o.stdout).contains("invalid hash"),
                "{what}: {o:?}"
            );
            // --clear: flag, TLV and padding, payload in plaintext: imgtool verifies it as it is.
            let clear = d.join("otactl-clear.bin");
            let args = sign_args(Some(&sig), &enc_pub, &["--clear"], &input, &clear);
            ok(&ours(&args), &what);
            ok(&imgtool(&bin, &["verify", "-k", s(&sig), s(&clear)]), &what);
        }
    }
}

/// (type, length) of every TLV, protected first.
fn tlv_shape(p: &ParsedImage<'_>) -> Vec<(u16, usize)> {
    p.tlvs()
        .map(|t| t.unwrap())
        .map(|t| {
            // ECDSA DER signatures vary in length (70 to 72 bytes) with their random values.
            let len = if t.kind == TlvKind::ECDSA_SIG {
                0
            } else {
                t.value.len()
            };
            (t.kind.0, len)
        })
        .collect()
}

#[test]
fn otactl_and_imgtool_encrypted_images_differ_only_in_their_random_parts() {
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let d = dir.path();
    for (scheme, _, enc_ty, sign_ty) in SCHEMES {
        let (enc, sig) = imgtool_keys(&bin, d, enc_ty, sign_ty);
        let key = private(&enc);
        for input in payloads(d) {
            let what = format!("{scheme:?} {}", input.display());
            let (theirs, mine) = (d.join("theirs.bin"), d.join("mine.bin"));
            for (out, ours_run) in [(&theirs, false), (&mine, true)] {
                let args = sign_args(Some(&sig), &enc, &["--pad"], &input, out);
                if ours_run {
                    ok(&ours(&args), &what);
                } else {
                    ok(&imgtool(&bin, &args), &what);
                }
            }
            let (a, b) = (
                std::fs::read(&theirs).unwrap(),
                std::fs::read(&mine).unwrap(),
            );
            assert_eq!(a.len(), b.len(), "{what}: padded size (the trailer)");
            let (pa, pb) = (
                ParsedImage::parse(&a).unwrap(),
                ParsedImage::parse(&b).unwrap(),
            );
            assert_eq!(pa.header, pb.header, "{what}: header");
            assert_eq!(a[..0x400], b[..0x400], "{what}: header bytes");
            assert_eq!(
                tlv_shape(&pa),
                tlv_shape(&pb),
                "{what}: TLV types and sizes"
            );
            for kind in [TlvKind::SHA256, TlvKind::KEYHASH] {
                assert_eq!(pa.find(kind), pb.find(kind), "{what}: {kind:?}");
            }
            if scheme == EncScheme::X25519 {
                // Ed25519 is deterministic: the same plaintext digest, the same signature.
                assert_eq!(
                    pa.find(TlvKind::ED25519),
                    pb.find(TlvKind::ED25519),
                    "{what}"
                );
            }
            assert_ne!(
                pa.find(scheme.tlv()),
                pb.find(scheme.tlv()),
                "{what}: fresh keys"
            );
            assert_ne!(pa.payload(), pb.payload(), "{what}: different AES keys");
            let (da, db) = (
                otactl::assemble::decrypt_image(&a, &key).unwrap(),
                otactl::assemble::decrypt_image(&b, &key).unwrap(),
            );
            let plain_end = 0x400 + pa.header.img_size as usize;
            assert!(da[..plain_end] == db[..plain_end], "{what}: plaintext");
            // After the images (whose ECDSA signatures may differ in length): padding, trailer.
            let tail = a.len() - pa.len().max(pb.len());
            assert!(
                a[a.len() - tail..] == b[b.len() - tail..],
                "{what}: trailer area"
            );
        }
    }
}

#[test]
fn encryption_keys_interoperate_with_imgtool_getpub_and_getpriv() {
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let d = dir.path();
    for (scheme, ours_ty, theirs_ty, _) in SCHEMES {
        let theirs = d.join(format!("imgtool-{theirs_ty}.pem"));
        let mine = d.join(format!("otactl-{ours_ty}.pem"));
        ok(
            &imgtool(&bin, &["keygen", "-t", theirs_ty, "-k", s(&theirs)]),
            theirs_ty,
        );
        ok(&ours(&["keygen", "-t", ours_ty, "-k", s(&mine)]), ours_ty);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&mine).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{scheme:?}");
        }
        for key in [&theirs, &mine] {
            let what = format!("{scheme:?} {}", key.display());
            for enc in ["pem", "raw", "lang-c", "lang-rust"] {
                let args = ["getpub", "-k", s(key), "-e", enc];
                assert_eq!(
                    ok(&ours(&args), &what),
                    ok(&imgtool(&bin, &args), &what),
                    "{what} {enc}"
                );
            }
            let args = ["getpriv", "-k", s(key)];
            assert_eq!(
                ok(&ours(&args), &what),
                ok(&imgtool(&bin, &args), &what),
                "{what} getpriv"
            );
        }
    }
}

#[test]
fn unsupported_encryption_keys_and_pairs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = vectors_dir().join("payload-64k.bin");
    let out = d.join("out.bin");
    let key = |ty: &str| {
        let p = d.join(format!("{ty}.pem"));
        ok(&ours(&["keygen", "-t", ty, "-k", s(&p)]), ty);
        p
    };
    let (rsa, p256, x25519) = (key("rsa-2048"), key("ecdsa-p256"), key("enc-x25519"));
    let sign = |k: &Path, e: &Path| ours(&sign_args(Some(k), e, &[], &input, &out));
    let o = sign(&p256, &rsa);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        err.contains("rsa-2048.pem") && err.contains("RSA-OAEP"),
        "{err}"
    );
    let o = sign(&p256, &x25519);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{o:?}");
    assert!(
        err.contains("ECIES-X25519") && err.contains("P-256"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn info_shows_the_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (enc, out) = (d.join("enc.pem"), d.join("out.bin"));
    ok(
        &ours(&["keygen", "-t", "enc-x25519", "-k", s(&enc)]),
        "keygen",
    );
    let input = vectors_dir().join("payload-64k.bin");
    ok(&ours(&sign_args(None, &enc, &[], &input, &out)), "sign");
    let text = String::from_utf8(ok(&ours(&["info", s(&out)]), "info")).unwrap();
    assert!(text.contains("ENCRYPTED_AES128"), "{text}");
    assert!(
        text.contains("encryption: AES-128-CTR payload, key by ECIES-X25519 (ENCX25519 TLV)"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&ours(&["info", "--json", s(&out)]), "info")).unwrap();
    assert_eq!(json["encryption"]["key_exchange"], "ECIES-X25519");
    assert!(json["trailer"].is_null(), "no --pad, no trailer");
    // A padded image: the key fields of a swap trailer are still erased.
    let padded = d.join("padded.bin");
    let args = sign_args(None, &enc, &["--pad"], &input, &padded);
    ok(&ours(&args), "sign --pad");
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&ours(&["info", "--json", s(&padded)]), "info")).unwrap();
    assert_eq!(
        json["trailer"]["enc_keys"],
        serde_json::json!(["erased", "erased"])
    );
    let text = String::from_utf8(ok(&ours(&["info", s(&padded)]), "info")).unwrap();
    assert!(
        text.contains("enc keys:  slot 0 erased, slot 1 erased"),
        "{text}"
    );
}

/// Signs `input` with otactl's flash-map recipe for `map` (plus `extra`), returns the image.
fn sign_for_map(map: &Path, extra: &[&str], input: &Path, out: &Path, version: &str) -> Vec<u8> {
    let mut args = vec!["sign", "--flashmap", s(map), "-v", version];
    args.extend_from_slice(extra);
    args.extend([s(input), s(out)]);
    ok(&ours(&args), "sign for the map");
    std::fs::read(out).unwrap()
}

/// One scheme's images for a host-simulation flash map: the device key (made by imgtool), the
/// trusted signing key, an old plain image (otactl's recipe for the map, v1.0.0), imgtool's
/// `sign -E` output (`imgtool_extra`, v1.1.0) and otactl's `sign --flashmap -E` (`mine_version`).
struct MapImages {
    device_key: ota_core::image::enc::EncPrivateKey,
    trusted: [ota_core::image::verify::PublicKey; 1],
    old: Vec<u8>,
    theirs: Vec<u8>,
    mine: Vec<u8>,
}

fn map_images(
    bin: &Path,
    d: &Path,
    map_file: &Path,
    (enc_ty, sign_ty): (&str, &str),
    imgtool_extra: &[&str],
    mine_version: &str,
) -> MapImages {
    let (enc, sig) = imgtool_keys(bin, d, enc_ty, sign_ty);
    let input = vectors_dir().join("payload-64k.bin");
    let old = sign_for_map(
        map_file,
        &["-k", s(&sig)],
        &input,
        &d.join("old.bin"),
        "1.0.0",
    );
    let theirs = d.join("theirs.bin");
    let mut extra = imgtool_extra.to_vec();
    extra.extend(["-v", "1.1.0"]);
    let args = sign_args(Some(&sig), &enc, &extra, &input, &theirs);
    ok(&imgtool(bin, &args), "imgtool sign -E");
    let args = ["-k", s(&sig), "-E", s(&enc)];
    let mine = sign_for_map(map_file, &args, &input, &d.join("mine.bin"), mine_version);
    MapImages {
        device_key: private(&enc),
        trusted: [otactl::sign::load_key(&sig).unwrap().public_key()],
        old,
        theirs: std::fs::read(&theirs).unwrap(),
        mine,
    }
}

#[test]
fn encrypted_images_of_both_tools_boot_on_the_simulated_board() {
    use ota_core::boot::app::set_pending;
    use ota_host::sim::SimDevice;
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let d = dir.path();
    let map_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("flashmap/psoc62_2m_ext_overwrite_sim.json");
    let map = ota_core::flashmap::infineon::load(&map_file, None).unwrap();
    let slot = format!("{:#x}", map.primary.size);
    for (scheme, _, enc_ty, sign_ty) in SCHEMES {
        let extra = ["--overwrite-only", "-S", &slot];
        let m = map_images(&bin, d, &map_file, (enc_ty, sign_ty), &extra, "1.1.0");
        let (device_key, old) = (&m.device_key, &m.old);
        for (who, stored) in [("imgtool", &m.theirs), ("otactl", &m.mine)] {
            let what = format!("{scheme:?} {who}");
            let plain = otactl::assemble::decrypt_image(stored, device_key).unwrap();
            for (key, installs) in [(None, false), (Some(device_key), true)] {
                let mut dev = SimDevice::new(map, 1);
                dev.primary.program(0, old);
                dev.secondary.program(0, stored);
                let layout = dev.secondary_layout();
                set_pending(&mut dev.secondary, &layout, true).unwrap();
                let out = dev.boot_with(&m.trusted, false, key).unwrap();
                let runs = if installs { &plain } else { old };
                assert!(
                    dev.primary.data()[..runs.len()] == runs[..],
                    "{what}: key {key:?}"
                );
                let minor = out.image.header.version.minor;
                assert_eq!(minor, u8::from(installs), "{what}: key {key:?}");
            }
        }
    }
}

/// Swap mode, from the otactl side: imgtool's and otactl's encrypted images (for a swap map's
/// slot) are swapped in as plaintext by a bootloader built with `MCUBOOT_ENC_IMAGES`; the image
/// moved out of the primary is encrypted again with its own key, so after otactl's image
/// replaces imgtool's the secondary holds imgtool's output byte for byte; an unconfirmed image
/// reverts and leaves its download encrypted in the secondary; `otactl info` on the primary
/// slot dump shows the two AES key fields the swap wrote; without the key nothing changes.
#[test]
fn encrypted_images_of_both_tools_swap_and_revert_on_the_simulated_board() {
    use ota_core::boot::app::{set_confirmed, set_pending};
    use ota_host::sim::SimDevice;
    let Some((bin, dir)) = with_imgtool() else {
        return;
    };
    let d = dir.path();
    let map_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("flashmap/psoc62_2m_ext_swap_sim.json");
    let mut map = ota_core::flashmap::infineon::load(&map_file, None).unwrap();
    map.enc_images = true;
    let slot = format!("{:#x}", map.primary.size);
    let has = |data: &[u8], img: &[u8]| data[..img.len()] == img[..];
    for (scheme, _, enc_ty, sign_ty) in SCHEMES {
        let m = map_images(
            &bin,
            d,
            &map_file,
            (enc_ty, sign_ty),
            &["-S", &slot],
            "1.2.0",
        );
        let MapImages {
            device_key,
            trusted,
            old,
            theirs,
            mine,
        } = m;
        let plain = |img: &[u8]| otactl::assemble::decrypt_image(img, &device_key).unwrap();
        let what = format!("{scheme:?}");
        let mut dev = SimDevice::new(map, 1);
        dev.primary.program(0, &old);
        let stage = |dev: &mut SimDevice, img: &[u8], permanent: bool| {
            dev.secondary.program(0, img);
            let layout = dev.secondary_layout();
            set_pending(&mut dev.secondary, &layout, permanent).unwrap();
        };
        let boot = |dev: &mut SimDevice, key| {
            let out = dev.boot_with(&trusted, false, key).unwrap();
            (out.swap_type, out.image.header.version.minor)
        };
        use ota_core::image::trailer::SwapType::{None as Stay, Revert, Test};
        // No key: refused, the old image runs.
        stage(&mut dev, &theirs, false);
        assert_eq!(boot(&mut dev, None), (Stay, 0), "{what}");
        assert!(has(dev.primary.data(), &old), "{what}");
        // imgtool's image as a test, reverted: its download is back in the secondary.
        stage(&mut dev, &theirs, false);
        assert_eq!(boot(&mut dev, Some(&device_key)), (Test, 1), "{what}");
        assert!(has(dev.primary.data(), &plain(&theirs)), "{what}");
        assert!(has(dev.secondary.data(), &old), "{what}: plain stays plain");
        assert_eq!(boot(&mut dev, Some(&device_key)), (Revert, 0), "{what}");
        assert!(
            has(dev.secondary.data(), &theirs),
            "{what}: imgtool's bytes"
        );
        // Installed and confirmed; then otactl's image over it, as a test.
        stage(&mut dev, &theirs, false);
        assert_eq!(boot(&mut dev, Some(&device_key)), (Test, 1), "{what}");
        let layout = dev.primary_layout();
        set_confirmed(&mut dev.primary, &layout).unwrap();
        assert_eq!(boot(&mut dev, Some(&device_key)), (Stay, 1), "{what}");
        stage(&mut dev, &mine, false);
        assert_eq!(boot(&mut dev, Some(&device_key)), (Test, 2), "{what}");
        assert!(has(dev.primary.data(), &plain(&mine)), "{what}");
        assert!(
            has(dev.secondary.data(), &theirs),
            "{what}: imgtool's image re-encrypted to imgtool's bytes"
        );
        let dump = d.join("primary.bin");
        std::fs::write(&dump, dev.primary.data()).unwrap();
        let erased = if map.primary.erase_value == 0 {
            "0"
        } else {
            "0xff"
        };
        let json: serde_json::Value = serde_json::from_slice(&ok(
            &ours(&["info", "--json", "-R", erased, s(&dump)]),
            "info",
        ))
        .unwrap();
        let t = &json["trailer"];
        assert_eq!(t["copy_done"], "set", "{what}: {t}");
        assert_eq!(
            t["enc_keys"],
            serde_json::json!(["written", "written"]),
            "{what}"
        );
        // Not confirmed: imgtool's image runs again, otactl's download is in the secondary.
        assert_eq!(boot(&mut dev, Some(&device_key)), (Revert, 1), "{what}");
        assert!(has(dev.primary.data(), &plain(&theirs)), "{what}");
        assert!(has(dev.secondary.data(), &mine), "{what}: otactl's bytes");
        assert_eq!(boot(&mut dev, Some(&device_key)), (Stay, 1), "{what}");
    }
}
