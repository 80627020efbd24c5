//! Properties of otactl's image assembler: whatever the options, the output parses, validates
//! with the signing key, carries the requested trailer, and its HEX form holds the same bytes.

use ota_core::image::verify::validate;
use ota_core::image::{FlagState, MagicState, ParsedImage, PublicKey, Version};
use otactl::assemble::{self, hex, read_trailer, Payload, SecurityCounter, SignOptions, Signer};
use proptest::prelude::*;

fn options() -> impl Strategy<Value = SignOptions> {
    (
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u32>()),
        prop::sample::select(vec![0x20u32, 0x80, 0x200, 0x400]),
        prop::sample::select(vec![1u32, 2, 4, 8, 16, 32]),
        prop::sample::select(vec![0x00u8, 0xff]),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<u32>(), prop::option::of(any::<u32>())),
    )
        .prop_map(
            |((ma, mi, rev, b), h, align, erased, (pad, confirm, ovw, full), (load, sc))| {
                let mut o = SignOptions::new(
                    Version {
                        major: ma,
                        minor: mi,
                        revision: rev,
                        build_num: b,
                    },
                    h,
                    0x40000,
                );
                o.pad_header = true;
                o.align = align;
                o.erased_val = erased;
                o.pad = pad;
                o.confirm = confirm;
                o.overwrite_only = ovw;
                o.load_addr = load;
                o.max_sectors = 16;
                o.security_counter = sc.map(SecurityCounter::Value);
                if full {
                    o.public_key_format = otactl::assemble::PublicKeyFormat::Full;
                }
                o
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn assembled_images_validate_and_carry_the_requested_trailer(
        opts in options(),
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
    ) {
        let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let pk = PublicKey::from_verifying_key(*key.verifying_key());
        let key = otactl::sign::SigningKey::from(key);
        let input = Payload { data: payload.clone(), base_addr: Some(0x1000_0000) };
        let img = assemble::build(&opts, input, &Signer::Key(&key)).unwrap();
        let bin = img.to_bin();
        let p = ParsedImage::parse(&bin).unwrap();
        prop_assert_eq!(p.header.version, opts.version);
        prop_assert_eq!(p.payload(), &payload[..]);
        let mut r: &[u8] = &bin;
        let v = validate(&mut r, bin.len() as u32, &[pk]).unwrap();
        prop_assert_eq!(v.key_index, Some(0));
        prop_assert_eq!(v.security_counter, opts.security_counter.map(|s| s.value(&opts.version)));
        if opts.padded() {
            prop_assert_eq!(bin.len() as u32, opts.slot_size);
            let t = read_trailer(&bin, p.len(), Some(opts.erased_val)).unwrap();
            prop_assert_eq!(t.magic, MagicState::Good);
            let confirmed = opts.confirm && !opts.overwrite_only;
            prop_assert_eq!(t.image_ok.1, if confirmed { FlagState::Set } else { FlagState::Unset });
        } else {
            prop_assert_eq!(bin.len(), p.len());
            // HEX holds the same bytes, at the input's address minus the header.
            let text = img.to_hex(None).unwrap();
            let (base, back) = hex::parse(&text).unwrap();
            prop_assert_eq!(base, 0x1000_0000 - opts.header_size);
            prop_assert_eq!(back, bin);
        }
    }
}
