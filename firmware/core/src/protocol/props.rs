//! Property tests: decoders never panic on any bytes; encoders and decoders agree.

use proptest::prelude::*;

use super::codec::{encode_chunk_request, encode_request};
use super::messages::{AppVersion, DeviceIdentity, MessageKind};
use super::{accept_chunk, decode_request, ChunkHeader, ChunkSize, JobDoc};

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_request(&bytes);
        let _ = JobDoc::parse(&bytes);
        let _ = accept_chunk(&bytes, AppVersion::new(1, 0, 0));
        let _ = super::json::scan(&bytes, |_| {});
    }

    #[test]
    fn json_like_inputs_never_panic(s in "[{}\\[\\]\":, a-zA-Z0-9.\\\\-]{0,200}") {
        let _ = decode_request(s.as_bytes());
        let _ = JobDoc::parse(s.as_bytes());
    }

    #[test]
    fn device_requests_decode_to_what_was_encoded(
        v in (any::<u16>(), any::<u16>(), any::<u16>()),
        tick in any::<u16>(),
        offset in 0u32..u32::MAX,
        size in prop_oneof![Just(-1i64), 1i64..100_000],
    ) {
        let version = AppVersion::new(v.0, v.1, v.2);
        let topic = super::topics::unique_topic("MyUniqueTopic", "APP_B", u32::from(tick)).unwrap();
        let mut buf = [0u8; 600];
        let id = &DeviceIdentity::APP;
        let n = encode_request(&mut buf, MessageKind::RequestUpdate, id, version, &topic).unwrap();
        let r = decode_request(&buf[..n]).unwrap();
        prop_assert_eq!(r.unique_topic, Some(topic.as_str()));
        prop_assert_eq!(AppVersion::parse_device(r.version.unwrap()), version);
        let n = encode_chunk_request(&mut buf, id, version, &topic, "", i64::from(offset), size).unwrap();
        let r = decode_request(&buf[..n]).unwrap();
        prop_assert_eq!(r.offset, Some(u64::from(offset)));
        let want = if size == -1 { ChunkSize::Rest } else { ChunkSize::Bytes(size as u64) };
        prop_assert_eq!(r.size, Some(want));
    }

    #[test]
    fn chunk_headers_round_trip(
        v in (any::<u16>(), any::<u16>(), any::<u16>()),
        total in 1u32..100_000_000,
        index in 0u32..20_000,
        size in 1u16..=4096,
    ) {
        let off = index * 4096;
        if let Some(h) = ChunkHeader::for_chunk(AppVersion::new(v.0, v.1, v.2), total, off, size, 4096) {
            prop_assert_eq!(ChunkHeader::parse(&h.to_bytes()).unwrap(), h);
        }
    }
}
