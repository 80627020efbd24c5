//! Shared test helpers: signing keys, signed test images, simulated devices.
#![allow(dead_code)]

pub mod publisher;

use ota_core::flashmap::{infineon, FlashMap, UpgradeMode};
use ota_core::image::enc::{wrap_key, EncPrivateKey, EncScheme, ImageKey};
use ota_core::image::header::{ImageFlags, ImageHeader, Version};
use ota_core::image::tlv::{encode_entry_header, encode_info, TlvKind, TLV_INFO_MAGIC};
use ota_core::image::verify::PublicKey;
use ota_core::image::ImageHash;
use ota_host::sim::SimDevice;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};

/// Header size of test images.
pub const HDR: u16 = 0x80;

/// A deterministic P-256 signing key (`n` selects one of several).
pub fn signing_key(n: u8) -> SigningKey {
    let mut bytes = [0x11u8; 32];
    bytes[31] = n.wrapping_add(1);
    SigningKey::from_slice(&bytes).expect("valid scalar")
}

/// The public key of [`signing_key`].
pub fn public_key(n: u8) -> PublicKey {
    PublicKey::from_verifying_key(*signing_key(n).verifying_key())
}

/// A signed MCUboot image: header (0x80), `len` payload bytes derived from `seed`, then the
/// unprotected TLVs SHA256, KEYHASH and ECDSA_SIG (as imgtool orders them).
pub fn image(key: &SigningKey, version: Version, len: usize, seed: u8) -> Vec<u8> {
    let pubkey = PublicKey::from_verifying_key(*key.verifying_key());
    image_signed(&pubkey, version, len, seed, |digest| {
        let sig: Signature = key.sign_prehash(digest).expect("sign");
        sig.to_der().as_bytes().to_vec()
    })
}

/// A MCUboot image signed by `sign` for `pubkey`'s type, as imgtool builds it: header (0x80),
/// payload from `seed`, then the hash TLV of the key's algorithm, KEYHASH and the key type's
/// signature TLV.
pub fn image_signed(
    pubkey: &PublicKey,
    version: Version,
    len: usize,
    seed: u8,
    sign: impl Fn(&ImageHash) -> Vec<u8>,
) -> Vec<u8> {
    image_with(pubkey, version, len, seed, 0, &sign, None)
}

/// [`image_signed`] with header `flags` and one more unprotected TLV after the signature (as
/// imgtool adds the key-exchange TLV of an encrypted image).
pub fn image_with(
    pubkey: &PublicKey,
    version: Version,
    len: usize,
    seed: u8,
    flags: u32,
    sign: &dyn Fn(&ImageHash) -> Vec<u8>,
    extra: Option<(TlvKind, &[u8])>,
) -> Vec<u8> {
    let header = ImageHeader {
        load_addr: 0,
        hdr_size: HDR,
        protect_tlv_size: 0,
        img_size: len as u32,
        flags: ImageFlags(flags),
        version,
    };
    let mut img = vec![0u8; usize::from(HDR)];
    img[..32].copy_from_slice(&header.to_bytes());
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    img.extend((0..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let kind = pubkey.key_type();
    let digest = kind.hash_alg().digest(&img);
    let sig = sign(&digest);
    let keyhash = pubkey.keyhash_tlv();
    let mut tlvs = Vec::new();
    tlvs.extend(encode_entry_header(digest.alg().tlv(), digest.len() as u16));
    tlvs.extend_from_slice(&digest);
    tlvs.extend(encode_entry_header(TlvKind::KEYHASH, keyhash.len() as u16));
    tlvs.extend_from_slice(&keyhash);
    tlvs.extend(encode_entry_header(kind.sig_tlv(), sig.len() as u16));
    tlvs.extend(sig);
    if let Some((k, v)) = extra {
        tlvs.extend(encode_entry_header(k, v.len() as u16));
        tlvs.extend_from_slice(v);
    }
    img.extend(encode_info(TLV_INFO_MAGIC, (tlvs.len() + 4) as u16));
    img.extend(tlvs);
    img
}

/// An image of exactly `total` bytes (header, payload and TLVs). The DER signature is 70 to
/// 72 bytes, so payload lengths and contents are tried until one fits.
pub fn image_of(minor: u8, total: u32) -> Vec<u8> {
    let total = total as usize;
    let key = signing_key(0);
    let version = Version::new(1, minor, 0);
    let overhead = image(&key, version, 0, 0).len();
    (0..=u8::MAX)
        .flat_map(|seed| (total - overhead - 2..total - overhead + 2).map(move |len| (seed, len)))
        .map(|(seed, len)| image(&key, version, len, seed))
        .find(|img| img.len() == total)
        .unwrap_or_else(|| panic!("no payload gives {total} bytes"))
}

/// Test image v`major.minor.0` of ~`len` payload bytes, signed with key 0.
pub fn app(major: u8, minor: u8, len: usize) -> Vec<u8> {
    image(
        &signing_key(0),
        Version::new(major, minor, 0),
        len,
        major ^ minor.rotate_left(4),
    )
}

/// Loads a host-simulation flash map from `flashmap/`.
pub fn sim_map(name: &str) -> FlashMap {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../flashmap")
        .join(name);
    infineon::load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// All host-simulation layouts.
pub const SIM_MAPS: [&str; 6] = [
    "psoc62_2m_int_swap_sim.json",
    "psoc62_2m_int_overwrite_sim.json",
    "xmcsim_int_swap_sim.json",
    "xmcsim_int_overwrite_sim.json",
    "psoc62_2m_ext_swap_sim.json",
    "psoc62_2m_ext_overwrite_sim.json",
];

/// The flash-map matrix of the sweeps: every host-simulation layout, plus variants of two
/// of them with write sizes 16 and 32 (trailer alignment `A` > 8: other magic, wider records).
pub fn matrix() -> Vec<(String, FlashMap)> {
    let mut out: Vec<(String, FlashMap)> = SIM_MAPS
        .iter()
        .map(|n| (n.trim_end_matches(".json").to_string(), sim_map(n)))
        .collect();
    for (name, w) in [
        ("xmcsim_int_swap_sim.json", 16),
        ("xmcsim_int_swap_sim.json", 32),
        ("psoc62_2m_int_overwrite_sim.json", 32),
    ] {
        let mut m = sim_map(name);
        for a in [&mut m.primary, &mut m.secondary] {
            a.write_size = w;
        }
        if let Some(x) = m.scratch.as_mut() {
            x.write_size = w;
        }
        m.validate_for_boot().expect("variant map");
        out.push((format!("{}_w{w}", name.trim_end_matches(".json")), m));
    }
    out
}

/// A map whose swap unit holding the trailer also holds image bytes: 16 KiB slots, the
/// primary in 512-byte rows, the secondary and scratch in 4 KiB sectors (the trailer,
/// 32·3·8 + 48 = 816 bytes, starts at 0x3cd0 in the unit at 0x3000).
pub fn trailer_unit_map(erased: u8, scratch_units: u32, overwrite: bool) -> FlashMap {
    use ota_core::flashmap::{Area, Device};
    let ext = |address, size| Area::new(address, size, 0x1000, erased, 8, Device::External);
    FlashMap {
        bootloader: Area::new(0x1000_0000, 0x1_0000, 0x200, 0x00, 8, Device::Internal),
        primary: Area::new(0x1001_0000, 0x4000, 0x200, erased, 8, Device::Internal),
        secondary: ext(0x1800_0000, 0x4000),
        scratch: Some(ext(0x1801_0000, scratch_units * 0x1000)),
        status: None,
        mode: if overwrite {
            UpgradeMode::Overwrite
        } else {
            UpgradeMode::Swap
        },
        internal_base: 0x1000_0000,
        enc_images: false,
    }
}

/// A device whose primary slot holds `img` (programmed by a "factory programmer").
pub fn device_with(map: FlashMap, img: &[u8]) -> SimDevice {
    let mut dev = SimDevice::new(map, 1);
    dev.primary.program(0, img);
    dev
}

/// The first `img.len()` bytes of a flash.
pub fn holds(data: &[u8], img: &[u8]) -> bool {
    data.get(..img.len()) == Some(img)
}

/// A device decryption key of `scheme` (`n` selects one of several).
pub fn enc_key(scheme: EncScheme, n: u8) -> EncPrivateKey {
    let mut bytes = [0x22u8; 32];
    bytes[31] = n.wrapping_add(1);
    match scheme {
        EncScheme::EcP256 => EncPrivateKey::EcP256(p256::SecretKey::from_slice(&bytes).unwrap()),
        EncScheme::X25519 => EncPrivateKey::X25519(x25519_dalek::StaticSecret::from(bytes)),
    }
}

/// An encrypted image as imgtool's `sign -E` makes it for `device`'s key, signed with key 0:
/// `(as stored in the secondary slot, as the primary slot holds it once decrypted)`.
/// `len` is rounded up to a multiple of 16 (imgtool pads the plaintext).
pub fn encrypted_app(device: &EncPrivateKey, minor: u8, len: usize) -> (Vec<u8>, Vec<u8>) {
    let key = signing_key(0);
    let pubkey = PublicKey::from_verifying_key(*key.verifying_key());
    let sign = |d: &ImageHash| -> Vec<u8> {
        let sig: Signature = key.sign_prehash(d).expect("sign");
        sig.to_der().as_bytes().to_vec()
    };
    let image_key = ImageKey::new([minor ^ 0x5a; 16]);
    // The ephemeral half of the key exchange (fixed: tests are deterministic).
    let (eph_public, shared) = match device {
        EncPrivateKey::EcP256(k) => {
            let eph = p256::SecretKey::from_slice(&[0x33; 32]).unwrap();
            let point = p256::EncodedPoint::from(eph.public_key());
            let s = p256::ecdh::diffie_hellman(eph.to_nonzero_scalar(), k.public_key().as_affine());
            let mut shared = [0u8; 32];
            shared.copy_from_slice(s.raw_secret_bytes());
            (point.as_bytes().to_vec(), shared)
        }
        EncPrivateKey::X25519(k) => {
            let eph = x25519_dalek::StaticSecret::from([0x33; 32]);
            let public = x25519_dalek::PublicKey::from(&eph);
            let shared = eph
                .diffie_hellman(&x25519_dalek::PublicKey::from(k))
                .to_bytes();
            (public.as_bytes().to_vec(), shared)
        }
    };
    let (tag, wrapped) = wrap_key(&shared, &image_key);
    let tlv = [&eph_public[..], &tag, &wrapped].concat();
    let len = len.div_ceil(16) * 16;
    let version = Version::new(1, minor, 0);
    let plain = image_with(
        &pubkey,
        version,
        len,
        minor,
        ImageFlags::ENCRYPTED_AES128,
        &sign,
        Some((device.scheme().tlv(), &tlv)),
    );
    let mut stored = plain.clone();
    image_key.apply(0, &mut stored[usize::from(HDR)..usize::from(HDR) + len]);
    (stored, plain)
}
