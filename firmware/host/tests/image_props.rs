//! Property tests for the MCUboot image format: parsing is total, build → parse round-trips,
//! sign → verify holds and any flipped bit in the hashed region is caught, trailer layouts are
//! consistent for every alignment and erased value.

use ota_core::image::tlv::{TlvWriter, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use ota_core::image::trailer::{decode_swap_info, encode_swap_info, FLAG_SET};
use ota_core::image::verify::{validate, VerifyError};
use ota_core::image::{
    FlagState, ImageFlags, ImageHeader, MagicState, ParsedImage, PublicKey, SwapType, TlvKind,
    TrailerLayout, Version,
};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn area(magic: u16, entries: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut buf = vec![0u8; 4 + entries.iter().map(|e| 4 + e.1.len()).sum::<usize>()];
    let mut w = TlvWriter::new(&mut buf, magic).unwrap();
    for (k, v) in entries {
        w.push(TlvKind(*k), v).unwrap();
    }
    let n = w.finish();
    assert_eq!(n, buf.len());
    buf
}

/// Builds an image the way imgtool lays it out; returns it and the offset U.
fn build(
    mut header: ImageHeader,
    payload: &[u8],
    prot: &[(u16, Vec<u8>)],
    key: Option<&SigningKey>,
) -> (Vec<u8>, usize) {
    let prot_area = if prot.is_empty() {
        Vec::new()
    } else {
        area(TLV_PROT_INFO_MAGIC, prot)
    };
    header.img_size = payload.len() as u32;
    header.protect_tlv_size = prot_area.len() as u16;
    let mut img = vec![0xffu8; usize::from(header.hdr_size)];
    img[..32].copy_from_slice(&header.to_bytes());
    img.extend_from_slice(payload);
    img.extend_from_slice(&prot_area);
    let u = img.len();
    let digest: [u8; 32] = Sha256::digest(&img).into();
    let mut unprot = vec![(TlvKind::SHA256.0, digest.to_vec())];
    if let Some(k) = key {
        let pk = PublicKey::from_verifying_key(*k.verifying_key());
        let sig: Signature = k.sign_prehash(&digest).unwrap();
        unprot.push((TlvKind::KEYHASH.0, pk.key_hash().to_vec()));
        unprot.push((TlvKind::ECDSA_SIG.0, sig.to_der().as_bytes().to_vec()));
    }
    img.extend_from_slice(&area(TLV_INFO_MAGIC, &unprot));
    (img, u)
}

fn header_strategy() -> impl Strategy<Value = ImageHeader> {
    (
        any::<u32>(),
        32u16..0x600,
        any::<u32>(),
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u32>()),
    )
        .prop_map(
            |(load_addr, hdr_size, flags, (major, minor, revision, build_num))| ImageHeader {
                load_addr,
                hdr_size,
                protect_tlv_size: 0,
                img_size: 0,
                flags: ImageFlags(flags),
                version: Version {
                    major,
                    minor,
                    revision,
                    build_num,
                },
            },
        )
}

fn prot_strategy() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    proptest::collection::vec(
        (
            0x40u16..0xfffe,
            proptest::collection::vec(any::<u8>(), 0..40),
        ),
        0..4,
    )
}

fn key() -> SigningKey {
    SigningKey::from_slice(&[0x42; 32]).unwrap()
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = ImageHeader::parse(&data);
        if let Ok(p) = ParsedImage::parse(&data) {
            for t in p.tlvs() {
                let _ = t;
            }
            let _ = p.payload();
        }
        let mut r: &[u8] = &data;
        let _ = validate(&mut r, data.len() as u32, &[]);
        let pk = PublicKey::from_verifying_key(*key().verifying_key());
        let mut r: &[u8] = &data;
        let _ = validate(&mut r, data.len() as u32, &[pk]);
    }

    #[test]
    fn parsing_mutated_images_never_panics(
        payload_len in 0usize..300,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let h = ImageHeader { hdr_size: 32, ..ImageHeader::default() };
        let (mut img, _) = build(h, &vec![7u8; payload_len], &[(0x50, vec![1, 2, 3, 4])], None);
        for (i, b) in edits {
            let at = i.index(img.len());
            img[at] = b;
        }
        img.truncate(cut.index(img.len() + 1));
        let _ = ParsedImage::parse(&img).map(|p| p.tlvs().count());
        let mut r: &[u8] = &img;
        let _ = validate(&mut r, img.len() as u32, &[]);
    }

    #[test]
    fn build_then_parse_round_trips(
        header in header_strategy(),
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        prot in prot_strategy(),
    ) {
        let (img, u) = build(header, &payload, &prot, None);
        let p = ParsedImage::parse(&img).unwrap();
        prop_assert_eq!(p.header.load_addr, header.load_addr);
        prop_assert_eq!(p.header.hdr_size, header.hdr_size);
        prop_assert_eq!(p.header.flags, header.flags);
        prop_assert_eq!(p.header.version, header.version);
        prop_assert_eq!(p.header.img_size as usize, payload.len());
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.len(), img.len());
        let got: Vec<(u16, Vec<u8>)> = p
            .tlvs()
            .map(|t| t.unwrap())
            .filter(|t| t.protected)
            .map(|t| (t.kind.0, t.value.to_vec()))
            .collect();
        prop_assert_eq!(got, prot);
        prop_assert_eq!(p.header.unprotected_tlv_offset() as usize, u);
        // Header encode/decode is the identity for every field.
        prop_assert_eq!(ImageHeader::parse(&p.header.to_bytes()).unwrap(), p.header);
    }

    #[test]
    fn hash_only_validation_accepts_built_images(
        header in header_strategy(),
        payload in proptest::collection::vec(any::<u8>(), 0..1024),
        prot in prot_strategy(),
    ) {
        // Flags the validator refuses are cleared: they are checked separately below.
        let header = ImageHeader { flags: ImageFlags(header.flags.0 & ImageFlags::RAM_LOAD), ..header };
        let (img, u) = build(header, &payload, &prot, None);
        let mut r: &[u8] = &img;
        let v = validate(&mut r, img.len() as u32, &[]).unwrap();
        let digest: [u8; 32] = Sha256::digest(&img[..u]).into();
        prop_assert_eq!(v.hash, digest);
        prop_assert_eq!(v.end as usize, img.len());
        // One byte less of room than the image needs: too large.
        let mut r: &[u8] = &img;
        let too_large = matches!(validate(&mut r, img.len() as u32 - 1, &[]), Err(VerifyError::TooLarge { .. }));
        prop_assert!(too_large);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn signed_images_verify_and_any_flipped_bit_in_the_hashed_region_is_caught(
        payload in proptest::collection::vec(any::<u8>(), 1..512),
        prot in prot_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let k = key();
        let pk = PublicKey::from_verifying_key(*k.verifying_key());
        let h = ImageHeader { hdr_size: 32, ..ImageHeader::default() };
        let (img, u) = build(h, &payload, &prot, Some(&k));
        let mut r: &[u8] = &img;
        let v = validate(&mut r, img.len() as u32, &[pk]).unwrap();
        prop_assert_eq!(v.key_index, Some(0));
        let b = bit.index(u * 8);
        let mut bad = img.clone();
        bad[b / 8] ^= 1 << (b % 8);
        let mut r: &[u8] = &bad;
        prop_assert!(validate(&mut r, bad.len() as u32, &[pk]).is_err());
    }

    #[test]
    fn trailer_layout_is_consistent_for_every_alignment_and_erased_value(
        align_pow in 0u32..6,
        erased in prop::sample::select(vec![0x00u8, 0xff]),
        sectors in 1u32..4096,
        overwrite_only in any::<bool>(),
        slot_kib in 64u32..4096,
    ) {
        let w = 1u32 << align_pow;
        let t = TrailerLayout::new(slot_kib * 1024, w, sectors, erased, overwrite_only);
        // A trailer larger than the slot is an invalid layout (FlashMap::validate refuses it).
        prop_assume!(t.trailer_size() < t.slot_size);
        prop_assert_eq!(t.max_align, w.max(8));
        let fields = [t.magic_off(), t.image_ok_off(), t.copy_done_off(), t.swap_info_off(), t.swap_size_off()];
        for pair in fields.windows(2) {
            prop_assert!(pair[0] > pair[1]);
        }
        if !overwrite_only {
            prop_assert!(t.status_off() + sectors * 3 * w <= t.swap_size_off());
        }
        prop_assert_eq!(t.magic_state(&t.magic()), MagicState::Good);
        prop_assert_eq!(t.magic_state(&[erased; 16]), MagicState::Unset);
        prop_assert_eq!(t.flag_state(erased), FlagState::Unset);
        prop_assert_eq!(t.flag_state(FLAG_SET), FlagState::Set);
        let (rec, n) = t.flag_record(FLAG_SET);
        prop_assert_eq!(n as u32, t.max_align);
        prop_assert!(rec[1..n].iter().all(|b| *b == erased));
        for st in [SwapType::Test, SwapType::Perm, SwapType::Revert] {
            prop_assert_eq!(decode_swap_info(encode_swap_info(st, 0), erased), (st, 0));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The DER signature decoder (the `ecdsa` crate's) takes what imgtool writes, with or
    /// without `--pad-sig` zeros after it, and nothing else: no other trailing byte, no
    /// truncation.
    #[test]
    fn der_signatures_decode_with_pad_sig_zeros_and_nothing_else(
        digest in any::<[u8; 32]>(),
        pad in 0usize..4,
        junk in 1u8..=255,
    ) {
        use ota_core::image::verify::signature_from_der;
        let key = SigningKey::from_slice(&[9; 32]).unwrap();
        let sig: Signature = key.sign_prehash(&digest).unwrap();
        let der = sig.to_der();
        let der = der.as_bytes();
        let mut padded = der.to_vec();
        padded.resize(der.len() + pad, 0);
        prop_assert_eq!(signature_from_der(&padded), Some(sig));
        let pk = PublicKey::from_verifying_key(*key.verifying_key());
        prop_assert!(pk.verify_digest(&digest, &padded));
        padded.push(junk);
        prop_assert_eq!(signature_from_der(&padded), None);
        prop_assert_eq!(signature_from_der(&der[..der.len() - 1]), None);
        prop_assert_eq!(signature_from_der(&[]), None);
    }
}
