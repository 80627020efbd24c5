//! The publisher's tolerant decoder for what devices send on `PFX/BRD/publish_notify`.
//!
//! Accepts every spelling of spec §2.11: keys case-insensitively (`ManufacturerID` /
//! `ManufacturerId`), `ProductID` / `Product`, `BoardName` / `Board`, `Size` / `Length`,
//! `Filename` / `File`; numbers as JSON strings or numbers; surrounding whitespace and trailing
//! NULs. Only top-level members are read. Nothing here panics on any input.

use super::json::{self, JsonError, Value};
use super::messages::MessageKind;
use super::topics::{check_reply_topic, TopicError};

/// The `Size` of a chunk request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkSize {
    /// `-1`: everything from `Offset` to the end.
    Rest,
    /// A byte count (may be 0 or absurd; the publisher decides what to do).
    Bytes(u64),
}

/// A decoded device request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// What the device wants.
    pub kind: MessageKind,
    /// Where to reply (checked with [`check_reply_topic`]); `None` only for "Send Direct Update".
    pub unique_topic: Option<&'a str>,
    /// `Version` as sent (the device's running version).
    pub version: Option<&'a str>,
    /// `Board` (rarely sent by devices).
    pub board: Option<&'a str>,
    /// `BoardName` (a fixed template literal; informational only).
    pub board_name: Option<&'a str>,
    /// `SerialNumber` (a template literal; the closest thing to an identity the device sends).
    pub serial_number: Option<&'a str>,
    /// `Offset` of a chunk request.
    pub offset: Option<u64>,
    /// `Size` (or `Length`) of a chunk request.
    pub size: Option<ChunkSize>,
    /// `Filename` (or `File`).
    pub filename: Option<&'a str>,
}

/// Why a message on the request topic was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not a JSON object.
    Json(JsonError),
    /// No string `Message`.
    NoMessage,
    /// A `Message` this publisher does not know.
    UnknownMessage,
    /// A message only publishers send (e.g. "Update Available").
    NotARequest(MessageKind),
    /// No string `UniqueTopicName`.
    NoTopic,
    /// A `UniqueTopicName` we must not publish to.
    BadTopic(TopicError),
    /// `Offset` or `Size` is not an integer in range (the field name).
    BadNumber(&'static str),
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "malformed JSON: {e}"),
            Self::NoMessage => f.write_str("no \"Message\" string"),
            Self::UnknownMessage => f.write_str("unknown \"Message\""),
            Self::NotARequest(k) => write!(f, "\"{}\" is not a device request", k.as_str()),
            Self::NoTopic => f.write_str("no \"UniqueTopicName\" string"),
            Self::BadTopic(e) => write!(f, "unusable \"UniqueTopicName\": {e}"),
            Self::BadNumber(field) => write!(f, "\"{field}\" is not a usable integer"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RequestError {}

fn number(v: Value<'_>, field: &'static str) -> Result<i64, RequestError> {
    let text = match v {
        Value::Str(s) | Value::Number(s) => s.trim(),
        _ => return Err(RequestError::BadNumber(field)),
    };
    text.parse::<i64>()
        .map_err(|_| RequestError::BadNumber(field))
}

#[derive(Default)]
struct Raw<'a> {
    message: Option<&'a str>,
    topic: Option<&'a str>,
    version: Option<&'a str>,
    board: Option<&'a str>,
    board_name: Option<&'a str>,
    serial_number: Option<&'a str>,
    offset: Option<Value<'a>>,
    size: Option<Value<'a>>,
    filename: Option<&'a str>,
}

impl<'a> Raw<'a> {
    fn take(&mut self, key: &str, v: Value<'a>) {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        let s = v.as_plain_str();
        if is("Message") {
            self.message = s;
        } else if is("UniqueTopicName") {
            self.topic = s;
        } else if is("Version") {
            self.version = s;
        } else if is("Board") {
            self.board = s;
        } else if is("BoardName") {
            self.board_name = s;
        } else if is("SerialNumber") {
            self.serial_number = s;
        } else if is("Offset") {
            self.offset = Some(v);
        } else if is("Size") || is("Length") {
            self.size = Some(v);
        } else if is("Filename") || is("File") {
            self.filename = s;
        }
    }
}

/// Decodes a message from the request topic.
///
/// # Errors
/// [`RequestError`] naming what is wrong; never panics.
pub fn decode_request(payload: &[u8]) -> Result<Request<'_>, RequestError> {
    let mut end = payload.len();
    while end > 0 && payload[end - 1] == 0 {
        end -= 1;
    }
    let mut raw = Raw::default();
    json::scan(&payload[..end], |f| {
        if f.depth == 0 {
            raw.take(f.key, f.value);
        }
    })
    .map_err(RequestError::Json)?;
    let kind = MessageKind::parse(raw.message.ok_or(RequestError::NoMessage)?)
        .ok_or(RequestError::UnknownMessage)?;
    if !kind.is_request() {
        return Err(RequestError::NotARequest(kind));
    }
    let unique_topic = match (raw.topic, kind) {
        (Some(t), _) => {
            check_reply_topic(t).map_err(RequestError::BadTopic)?;
            Some(t)
        }
        (None, MessageKind::SendDirectUpdate) => None,
        (None, _) => return Err(RequestError::NoTopic),
    };
    let offset = raw
        .offset
        .map(|v| number(v, "Offset"))
        .transpose()?
        .map(|o| u64::try_from(o).map_err(|_| RequestError::BadNumber("Offset")))
        .transpose()?;
    let size = match raw.size.map(|v| number(v, "Size")).transpose()? {
        None => None,
        Some(-1) => Some(ChunkSize::Rest),
        Some(n) => Some(ChunkSize::Bytes(
            u64::try_from(n).map_err(|_| RequestError::BadNumber("Size"))?,
        )),
    };
    Ok(Request {
        kind,
        unique_topic,
        version: raw.version,
        board: raw.board,
        board_name: raw.board_name,
        serial_number: raw.serial_number,
        offset,
        size,
        filename: raw.filename,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{encode_chunk_request, encode_direct_request, encode_request};
    use crate::protocol::messages::{AppVersion, DeviceIdentity};

    const T: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234";

    #[test]
    fn decodes_every_device_template() {
        let mut b = [0u8; 512];
        let v = AppVersion::new(1, 0, 0);
        let id = &DeviceIdentity::APP;
        for kind in [MessageKind::UpdateAvailability, MessageKind::RequestUpdate] {
            let n = encode_request(&mut b, kind, id, v, T).unwrap();
            let r = decode_request(&b[..n]).unwrap();
            assert_eq!(
                (r.kind, r.unique_topic, r.version),
                (kind, Some(T), Some("1.0.0"))
            );
            assert_eq!(r.board_name, Some("CY8CPROTO_062_4343W"));
            assert_eq!(r.serial_number, Some("ABC213450001"));
        }
        let n = encode_chunk_request(&mut b, id, v, T, "", 8192, -1).unwrap();
        let r = decode_request(&b[..n]).unwrap();
        assert_eq!((r.offset, r.size), (Some(8192), Some(ChunkSize::Rest)));
        let n = encode_direct_request(&mut b, id, v).unwrap();
        let r = decode_request(&b[..n]).unwrap();
        assert_eq!(
            (r.kind, r.unique_topic),
            (MessageKind::SendDirectUpdate, None)
        );
    }

    #[test]
    fn tolerates_spelling_variants() {
        let doc = br#"  {"message": "request data chunk", "uniquetopicname": "a/b/OTAImage/1", "Length": 4096, "Offset": 12288, "ManufacturerId": "x", "Product": "y", "Board": "B"}  "#;
        let r = decode_request(doc).unwrap();
        assert_eq!(r.kind, MessageKind::RequestDataChunk);
        assert_eq!(
            (r.offset, r.size),
            (Some(12288), Some(ChunkSize::Bytes(4096)))
        );
        assert_eq!(r.board, Some("B"));
        let with_nul = b"{\"Message\":\"Success\",\"UniqueTopicName\":\"t/1\"}\0";
        assert_eq!(decode_request(with_nul).unwrap().kind, MessageKind::Success);
    }

    #[test]
    fn rejects_bad_requests_without_panicking() {
        let cases: [(&[u8], RequestError); 9] = [
            (b"", RequestError::Json(JsonError::Empty)),
            (b"{\"Message\":", RequestError::Json(JsonError::Syntax(11))),
            (b"{}", RequestError::NoMessage),
            (b"{\"Message\":\"Hello\"}", RequestError::UnknownMessage),
            (
                b"{\"Message\":\"Update Available\"}",
                RequestError::NotARequest(MessageKind::UpdateAvailable),
            ),
            (b"{\"Message\":\"Request Update\"}", RequestError::NoTopic),
            (
                b"{\"Message\":\"Request Update\",\"UniqueTopicName\":\"a/#\"}",
                RequestError::BadTopic(TopicError::BadCharacter),
            ),
            (
                b"{\"Message\":\"Request Data Chunk\",\"UniqueTopicName\":\"a\",\"Offset\":\"-5\"}",
                RequestError::BadNumber("Offset"),
            ),
            (
                b"{\"Message\":\"Request Data Chunk\",\"UniqueTopicName\":\"a\",\"Size\":\"x\"}",
                RequestError::BadNumber("Size"),
            ),
        ];
        for (doc, err) in cases {
            assert_eq!(
                decode_request(doc),
                Err(err),
                "{:?}",
                core::str::from_utf8(doc)
            );
        }
        assert_eq!(
            decode_request(b"{\"Message\":\"Request Update\",\"UniqueTopicName\":\"\"}"),
            Err(RequestError::BadTopic(TopicError::Empty))
        );
    }
}
