//! The simulated bootloader installs images signed with every key type imgtool makes (ECDSA
//! P-256/P-384, Ed25519, RSA-2048/3072, each with its hash, KEYHASH and signature TLV) and
//! refuses them when the signature is broken or made by another key.

mod common;

use common::{device_with, holds, image_signed, matrix};
use ota_core::boot::app as bootapp;
use ota_core::image::trailer::SwapType;
use ota_core::image::{ImageHash, KeyType, PublicKey, Version};
use rand_core::OsRng;

type SignFn = Box<dyn Fn(&ImageHash) -> Vec<u8>>;

/// A key pair of `kind`: the public key and a function that signs a digest as imgtool does.
fn key_pair(kind: KeyType, seed: u8) -> (PublicKey, SignFn) {
    match kind {
        KeyType::EcdsaP256 => {
            let k = common::signing_key(seed);
            let pk = PublicKey::from_verifying_key(*k.verifying_key());
            (pk, Box::new(move |d| common_sig_p256(&k, d)))
        }
        KeyType::EcdsaP384 => {
            use p384::ecdsa::signature::hazmat::PrehashSigner;
            let k = p384::ecdsa::SigningKey::from_slice(&[seed | 0x20; 48]).unwrap();
            let pk = PublicKey::from_p384(*k.verifying_key());
            let sign = move |d: &ImageHash| {
                let s: p384::ecdsa::Signature = k.sign_prehash(d).unwrap();
                s.to_der().as_bytes().to_vec()
            };
            (pk, Box::new(sign))
        }
        KeyType::Ed25519 => {
            use ed25519_dalek::Signer;
            let k = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
            let pk = PublicKey::from_ed25519(k.verifying_key());
            (pk, Box::new(move |d| k.sign(d).to_bytes().to_vec()))
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 => {
            use rsa::pkcs1::EncodeRsaPublicKey;
            let bits = if kind == KeyType::Rsa2048 { 2048 } else { 3072 };
            let k = rsa::RsaPrivateKey::new(&mut OsRng, bits).unwrap();
            let der = k.to_public_key().to_pkcs1_der().unwrap();
            let pk = PublicKey::from_pkcs1_der(der.as_bytes()).unwrap();
            let sign = move |d: &ImageHash| {
                let pss = rsa::Pss::new_with_salt::<sha2::Sha256>(32);
                k.sign_with_rng(&mut OsRng, pss, d).unwrap()
            };
            (pk, Box::new(sign))
        }
    }
}

fn common_sig_p256(k: &p256::ecdsa::SigningKey, d: &ImageHash) -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let s: p256::ecdsa::Signature = k.sign_prehash(d).unwrap();
    s.to_der().as_bytes().to_vec()
}

fn stage(dev: &mut ota_host::sim::SimDevice, img: &[u8]) {
    dev.secondary.program(0, img);
    let layout = dev.secondary_layout();
    bootapp::set_pending(&mut dev.secondary, &layout, true).unwrap();
}

#[test]
fn every_key_type_is_installed_and_a_broken_or_foreign_signature_is_not() {
    for kind in KeyType::ALL {
        let (pk, sign) = key_pair(kind, 1);
        let (other_pk, other_sign) = key_pair(kind, 2);
        assert_eq!(pk.key_type(), kind);
        let old = image_signed(&pk, Version::new(1, 0, 0), 1500, 1, &sign);
        let new = image_signed(&pk, Version::new(1, 1, 0), 1700, 2, &sign);
        let mut broken = image_signed(&pk, Version::new(1, 2, 0), 1700, 3, &sign);
        let last = broken.len() - 1;
        broken[last] ^= 0x01;
        let foreign = image_signed(&other_pk, Version::new(1, 3, 0), 1700, 4, &other_sign);
        let keys = [pk];
        for (name, map) in matrix() {
            let name = format!("{kind:?} {name}");
            for refused in [&broken, &foreign] {
                let mut dev = device_with(map, &old);
                stage(&mut dev, refused);
                let out = dev.boot(&keys, true).unwrap();
                assert_eq!(out.swap_type, SwapType::None, "{name}: refused");
                assert!(holds(dev.primary.data(), &old), "{name}: old stays");
            }
            let mut dev = device_with(map, &old);
            assert_eq!(dev.boot(&keys, true).unwrap().swap_type, SwapType::None);
            stage(&mut dev, &new);
            let out = dev.boot(&keys, true).unwrap();
            assert_eq!(out.swap_type, SwapType::Perm, "{name}");
            assert_eq!(out.image.header.version.minor, 1, "{name}");
            assert_eq!(out.image.hash.alg(), kind.hash_alg(), "{name}");
            assert!(holds(dev.primary.data(), &new), "{name}");
        }
    }
}
