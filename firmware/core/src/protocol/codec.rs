//! Encoders: the device's requests, byte-exact with the C templates (G1–G3, G6), and the
//! publisher's replies: job documents in `json.dumps` style (G4), "No Update Available" (G5) and
//! "Result Received".
//!
//! The decoders live in [`super::job`] (the device's job-document rules) and [`super::request`]
//! (the publisher's tolerant request decoder); they are re-exported here.

use core::fmt::Write as _;

use super::messages::{AppVersion, DeviceIdentity, MessageKind};
use super::{BufferTooSmall, SliceWriter};

pub use super::job::{Connection, DeviceContext, JobDoc, JobVerdict};
pub use super::request::{decode_request, ChunkSize, Request, RequestError};

fn finish(
    buf: &mut [u8],
    f: impl FnOnce(&mut SliceWriter<'_>) -> core::fmt::Result,
) -> Result<usize, BufferTooSmall> {
    let mut w = SliceWriter::new(buf);
    f(&mut w).map_err(|_| BufferTooSmall)?;
    Ok(w.len())
}

/// Writes the device fields shared by every request template, from `Message` to `Version`
/// (no closing brace): `{"Message":"<m>", "Manufacturer": "…", …, "Version": "a.b.c"`.
fn write_identity(
    w: &mut SliceWriter<'_>,
    kind: MessageKind,
    id: &DeviceIdentity<'_>,
    version: AppVersion,
) -> core::fmt::Result {
    write!(
        w,
        "{{\"Message\":\"{}\", \"Manufacturer\": \"{}\", \"ManufacturerID\": \"{}\", \
         \"ProductID\": \"{}\", \"SerialNumber\": \"{}\", \"BoardName\": \"{}\", \
         \"Version\": \"{}\"",
        kind.as_str(),
        id.manufacturer,
        id.manufacturer_id,
        id.product_id,
        id.serial_number,
        id.board_name,
        version
    )
}

/// "Update Availability" (G1) or "Request Update" (G2), exactly as the C templates print them
/// (`sprintf`, no escaping, no trailing NUL). Any other `kind` is printed with the same template.
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_request(
    buf: &mut [u8],
    kind: MessageKind,
    id: &DeviceIdentity<'_>,
    version: AppVersion,
    unique_topic: &str,
) -> Result<usize, BufferTooSmall> {
    finish(buf, |w| {
        write_identity(w, kind, id, version)?;
        write!(w, ", \"UniqueTopicName\": \"{unique_topic}\"}}")
    })
}

/// "Send Direct Update" (APP's `CY_OTA_DOWNLOAD_DIRECT_REQUEST`): ends after `Version` with
/// `" }"` and has no `UniqueTopicName`.
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_direct_request(
    buf: &mut [u8],
    id: &DeviceIdentity<'_>,
    version: AppVersion,
) -> Result<usize, BufferTooSmall> {
    finish(buf, |w| {
        write_identity(w, MessageKind::SendDirectUpdate, id, version)?;
        w.write_str(" }")
    })
}

/// "Request Data Chunk" (G6): the request template plus `Filename`, `Offset` and `Size` (all
/// strings; `size` -1 means "the rest").
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_chunk_request(
    buf: &mut [u8],
    id: &DeviceIdentity<'_>,
    version: AppVersion,
    unique_topic: &str,
    filename: &str,
    offset: i64,
    size: i64,
) -> Result<usize, BufferTooSmall> {
    finish(buf, |w| {
        write_identity(w, MessageKind::RequestDataChunk, id, version)?;
        write!(
            w,
            ", \"UniqueTopicName\": \"{unique_topic}\", \"Filename\": \"{filename}\", \
             \"Offset\": \"{offset}\", \"Size\": \"{size}\"}}"
        )
    })
}

/// The result message (G3): `{"Message":"Success", "UniqueTopicName": "<t>"}` (or `Failure`).
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_result(
    buf: &mut [u8],
    success: bool,
    unique_topic: &str,
) -> Result<usize, BufferTooSmall> {
    let kind = if success {
        MessageKind::Success
    } else {
        MessageKind::Failure
    };
    finish(buf, |w| {
        write!(
            w,
            "{{\"Message\":\"{}\", \"UniqueTopicName\": \"{unique_topic}\"}}",
            kind.as_str()
        )
    })
}

/// G5, the recommended "no update" reply: no `Version` and no `Board`, so the device ends the
/// session with `INVALID_VERSION` whatever it runs.
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_no_update(buf: &mut [u8], unique_topic: &str) -> Result<usize, BufferTooSmall> {
    finish(buf, |w| {
        write!(
            w,
            "{{\"Message\":\"No Update Available\",\"UniqueTopicName\":\"{unique_topic}\"}}"
        )
    })
}

/// "Result Received", shaped like G5 (no `Version`, no `Board`) so that a device can never
/// mistake it for a job.
///
/// # Errors
/// [`BufferTooSmall`].
pub fn encode_result_received(buf: &mut [u8], unique_topic: &str) -> Result<usize, BufferTooSmall> {
    finish(buf, |w| {
        write!(
            w,
            "{{\"Message\":\"Result Received\",\"UniqueTopicName\":\"{unique_topic}\"}}"
        )
    })
}

/// Why a job document could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEncodeError {
    /// The buffer is full.
    BufferTooSmall,
    /// A key or value would need a JSON escape (`"`, `\`, control or non-ASCII characters);
    /// the device's parser does not support escapes.
    NeedsEscape,
    /// The document is longer than the device accepts ([`super::JOB_DOC_MAX`] − 1 bytes).
    TooLong(usize),
}

impl core::fmt::Display for JobEncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("output buffer too small"),
            Self::NeedsEscape => f.write_str(
                "a job field contains '\"', '\\', a control or non-ASCII character (devices cannot parse escapes)",
            ),
            Self::TooLong(n) => write!(f, "job document is {n} bytes; devices accept at most 1023"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JobEncodeError {}

/// Writes a job document the way `publisher.py`'s `json.dumps` does: `{"k": "v", "k2": "v2"}`,
/// keys in the order given, string values only (G4).
pub struct JobWriter<'a> {
    w: SliceWriter<'a>,
    first: bool,
}

fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl<'a> JobWriter<'a> {
    /// Starts a document in `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self {
            w: SliceWriter::new(buf),
            first: true,
        }
    }

    /// Appends `"key": "value"`.
    ///
    /// # Errors
    /// [`JobEncodeError::NeedsEscape`] or [`JobEncodeError::BufferTooSmall`].
    pub fn field(&mut self, key: &str, value: &str) -> Result<&mut Self, JobEncodeError> {
        if !plain(key) || !plain(value) {
            return Err(JobEncodeError::NeedsEscape);
        }
        let sep = if self.first { "{" } else { ", " };
        self.first = false;
        write!(self.w, "{sep}\"{key}\": \"{value}\"")
            .map_err(|_| JobEncodeError::BufferTooSmall)?;
        Ok(self)
    }

    /// Closes the document and returns its length.
    ///
    /// # Errors
    /// [`JobEncodeError::BufferTooSmall`], or [`JobEncodeError::TooLong`] past 1023 bytes.
    pub fn finish(mut self) -> Result<usize, JobEncodeError> {
        let close = if self.first { "{}" } else { "}" };
        self.w
            .write_str(close)
            .map_err(|_| JobEncodeError::BufferTooSmall)?;
        let n = self.w.len();
        if n >= super::JOB_DOC_MAX {
            return Err(JobEncodeError::TooLong(n));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234";
    const T2: &str = "OTAUpdate/APP_CY8CPROTO_062_4343W/OTAImage/4242";
    const V100: AppVersion = AppVersion::new(1, 0, 0);

    fn s(buf: &[u8], n: usize) -> &str {
        core::str::from_utf8(&buf[..n]).unwrap()
    }

    #[test]
    fn g1_g2_g3_device_requests() {
        let mut b = [0u8; 512];
        let app = &DeviceIdentity::APP;
        let n = encode_request(&mut b, MessageKind::UpdateAvailability, app, V100, T).unwrap();
        assert_eq!(n, 279);
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Update Availability", "Manufacturer": "Infineon", "ManufacturerID": "ABCD123", "ProductID": "EFGH456", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        let lib = &DeviceIdentity::LIB;
        let n = encode_request(&mut b, MessageKind::UpdateAvailability, lib, V100, T2).unwrap();
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Update Availability", "Manufacturer": "Express Widgits Corporation", "ManufacturerID": "EWCO", "ProductID": "Easy Widgit", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "OTAUpdate/APP_CY8CPROTO_062_4343W/OTAImage/4242"}"#
        );
        let n = encode_request(&mut b, MessageKind::RequestUpdate, app, V100, T).unwrap();
        assert_eq!(n, 274);
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Request Update", "Manufacturer": "Infineon", "ManufacturerID": "ABCD123", "ProductID": "EFGH456", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        let n = encode_result(&mut b, true, T).unwrap();
        assert_eq!(n, 98);
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Success", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        let n = encode_result(&mut b, false, T).unwrap();
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Failure", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        assert_eq!(encode_result(&mut b[..97], true, T), Err(BufferTooSmall));
    }

    #[test]
    fn g6_chunk_requests_and_direct() {
        let mut b = [0u8; 512];
        let lib = &DeviceIdentity::LIB;
        let n = encode_chunk_request(&mut b, lib, V100, T2, "", 0, 4096).unwrap();
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Request Data Chunk", "Manufacturer": "Express Widgits Corporation", "ManufacturerID": "EWCO", "ProductID": "Easy Widgit", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "OTAUpdate/APP_CY8CPROTO_062_4343W/OTAImage/4242", "Filename": "", "Offset": "0", "Size": "4096"}"#
        );
        let n = encode_chunk_request(&mut b, lib, V100, T2, "", 8192, -1).unwrap();
        assert!(s(&b, n).ends_with(r#", "Offset": "8192", "Size": "-1"}"#));
        let n = encode_direct_request(&mut b, &DeviceIdentity::APP, V100).unwrap();
        assert_eq!(
            s(&b, n),
            r#"{"Message":"Send Direct Update", "Manufacturer": "Infineon", "ManufacturerID": "ABCD123", "ProductID": "EFGH456", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0" }"#
        );
    }

    #[test]
    fn g4_g5_publisher_replies() {
        let mut b = [0u8; 1024];
        let mut w = JobWriter::new(&mut b);
        for (k, v) in [
            ("Message", "Update Available"),
            ("Manufacturer", "Infineon"),
            ("ManufacturerId", "ABCD123"),
            ("Product", "EFGH456"),
            ("SerialNumber", "ABC213450001"),
            ("Board", "APP_CY8CPROTO_062S2_43439"),
            ("Version", "1.0.0"),
            ("Connection", "MQTT"),
            ("Broker", "192.168.0.10"),
            ("Port", "8884"),
            ("UniqueTopicName", T),
        ] {
            w.field(k, v).unwrap();
        }
        let n = w.finish().unwrap();
        assert_eq!(n, 341);
        assert_eq!(
            s(&b, n),
            r#"{"Message": "Update Available", "Manufacturer": "Infineon", "ManufacturerId": "ABCD123", "Product": "EFGH456", "SerialNumber": "ABC213450001", "Board": "APP_CY8CPROTO_062S2_43439", "Version": "1.0.0", "Connection": "MQTT", "Broker": "192.168.0.10", "Port": "8884", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        let n = encode_no_update(&mut b, T).unwrap();
        assert_eq!(
            s(&b, n),
            r#"{"Message":"No Update Available","UniqueTopicName":"MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#
        );
        let mut w = JobWriter::new(&mut b);
        assert_eq!(
            w.field("Board", "a\"b").err(),
            Some(JobEncodeError::NeedsEscape)
        );
        let mut big = [0u8; 2048];
        let mut w = JobWriter::new(&mut big);
        let long = core::str::from_utf8(&[b'x'; 1100]).unwrap();
        w.field("Broker", long).unwrap();
        assert_eq!(w.finish(), Err(JobEncodeError::TooLong(1114)));
        assert_eq!(JobWriter::new(&mut b).finish(), Ok(2));
    }
}
