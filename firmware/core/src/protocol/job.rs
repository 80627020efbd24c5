//! The device's handling of a job document (spec §4): which fields it reads, how, and what it
//! decides. Used by the OTA agent, and by tests that play the device.
//!
//! Parser rules (`cy_JSON_parser` + `cy_OTA_JSON_callback`):
//! - keys match case-insensitively with exact length, at **any** depth;
//! - only JSON **string** values count (`"Port": 8884` is ignored);
//! - a value longer than its C field is cut to field size − 1;
//! - duplicate keys overwrite;
//! - `Version` is `atoi` of up to three dot-separated parts ([`AppVersion::parse_device`]);
//! - `Connection` is a case-insensitive **prefix** of `MQTT`, `HTTP` or `HTTPS` (`""` → MQTT);
//!   anything else is ignored;
//! - `Broker`/`Server` count only when non-empty; `Port` is `atoi` (`""` → 0, "unchanged").

use super::codes::ErrorCode;
use super::json::{self, Value};
use super::messages::AppVersion;
use super::JOB_DOC_MAX;

/// `connect_type` of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// MQTT.
    Mqtt,
    /// HTTP.
    Http,
    /// HTTPS.
    Https,
}

impl Connection {
    /// The device's rule: `strncasecmp(value, X, len(value)) == 0` against MQTT, HTTP, HTTPS.
    #[must_use]
    pub fn parse_device(value: &str) -> Option<Self> {
        let prefix_of = |name: &str| {
            value.len() <= name.len() && name[..value.len()].eq_ignore_ascii_case(value)
        };
        if prefix_of("MQTT") {
            Some(Self::Mqtt)
        } else if prefix_of("HTTP") {
            Some(Self::Http)
        } else if prefix_of("HTTPS") {
            Some(Self::Https)
        } else {
            None
        }
    }
}

/// The fields of a job document as the device stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobDoc<'a> {
    /// `Message` (never used by the device).
    pub message: Option<&'a str>,
    /// `Version` by the device's rule; 0.0.0 when absent.
    pub version: AppVersion,
    /// `Board`.
    pub board: Option<&'a str>,
    /// `Connection`, if it matched a known type.
    pub connection: Option<Connection>,
    /// `Broker` or `Server`, if non-empty.
    pub broker: Option<&'a str>,
    /// `Port` by `atoi`, if it was a string.
    pub port: Option<u16>,
    /// `File`.
    pub file: Option<&'a str>,
    /// `UniqueTopicName` (never used by the device).
    pub unique_topic: Option<&'a str>,
}

/// What the device knows about itself when it judges a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceContext<'a> {
    /// The running version.
    pub running: AppVersion,
    /// `CY_TARGET_BOARD_STRING`.
    pub board: &'a str,
    /// The current connection type.
    pub connection: Connection,
    /// The current broker host.
    pub host: &'a str,
    /// The current broker port.
    pub port: u16,
}

/// The device's decision (spec §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobVerdict<'a> {
    /// Download from the same broker.
    Accept,
    /// Download from another server (`CHANGING_SERVER`).
    ChangeServer {
        /// Connection type to use.
        connection: Connection,
        /// Host.
        host: &'a str,
        /// Port.
        port: u16,
    },
    /// No update: [`ErrorCode::InvalidVersion`] or [`ErrorCode::WrongBoard`].
    Reject(ErrorCode),
}

/// Cuts `v` the way the C copy does: longer than `size` → `size − 1` bytes.
fn clip(v: &str, size: usize) -> &str {
    if v.len() <= size {
        return v;
    }
    let mut n = size - 1;
    while !v.is_char_boundary(n) {
        n -= 1;
    }
    &v[..n]
}

impl<'a> JobDoc<'a> {
    /// Parses a job document by the device's rules.
    ///
    /// # Errors
    /// [`ErrorCode::BadArg`] for an empty payload, [`ErrorCode::MalformedJobDoc`] for a document
    /// over 1024 bytes or not a well-formed JSON object.
    pub fn parse(doc: &'a [u8]) -> Result<Self, ErrorCode> {
        if doc.is_empty() {
            return Err(ErrorCode::BadArg);
        }
        if doc.len() > JOB_DOC_MAX {
            return Err(ErrorCode::MalformedJobDoc);
        }
        let mut job = Self::default();
        json::scan(doc, |f| {
            if let Value::Str(v) = f.value {
                job.apply(f.key, v);
            }
        })
        .map_err(|_| ErrorCode::MalformedJobDoc)?;
        Ok(job)
    }

    fn apply(&mut self, key: &str, v: &'a str) {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        if is("Message") {
            self.message = Some(clip(v, 32));
        } else if is("Version") {
            self.version = AppVersion::parse_device(clip(v, 16));
        } else if is("Board") {
            self.board = Some(clip(v, 48));
        } else if is("Connection") {
            if let Some(c) = Connection::parse_device(v) {
                self.connection = Some(c);
            }
        } else if is("Broker") || is("Server") {
            if !v.is_empty() {
                self.broker = Some(clip(v, 256));
            }
        } else if is("Port") {
            self.port = Some(super::messages::atoi_u16(v));
        } else if is("File") {
            self.file = Some(clip(v, 256));
        } else if is("UniqueTopicName") {
            self.unique_topic = Some(clip(v, 256));
        }
    }

    /// The device's decision order: version (must be newer), board (must be equal), then
    /// same-server or redirect.
    #[must_use]
    pub fn evaluate(&self, dev: &DeviceContext<'a>) -> JobVerdict<'a> {
        if !dev.running.accepts(self.version) {
            return JobVerdict::Reject(ErrorCode::InvalidVersion);
        }
        if self.board != Some(dev.board) {
            return JobVerdict::Reject(ErrorCode::WrongBoard);
        }
        let connection = self.connection.unwrap_or(dev.connection);
        let host = self.broker.unwrap_or(dev.host);
        let port = match self.port {
            None | Some(0) => dev.port,
            Some(p) => p,
        };
        if connection == dev.connection && host == dev.host && port == dev.port {
            JobVerdict::Accept
        } else {
            JobVerdict::ChangeServer {
                connection,
                host,
                port,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G4: &str = r#"{"Message": "Update Available", "Manufacturer": "Infineon", "ManufacturerId": "ABCD123", "Product": "EFGH456", "SerialNumber": "ABC213450001", "Board": "APP_CY8CPROTO_062S2_43439", "Version": "1.0.0", "Connection": "MQTT", "Broker": "192.168.0.10", "Port": "8884", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#;
    const G5: &str = r#"{"Message":"No Update Available","UniqueTopicName":"MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#;
    const BRD: &str = "APP_CY8CPROTO_062S2_43439";

    fn dev(running: (u16, u16, u16), host: &str, port: u16) -> DeviceContext<'_> {
        DeviceContext {
            running: AppVersion::new(running.0, running.1, running.2),
            board: BRD,
            connection: Connection::Mqtt,
            host,
            port,
        }
    }

    #[test]
    fn g4_verdicts() {
        let job = JobDoc::parse(G4.as_bytes()).unwrap();
        assert_eq!(job.version, AppVersion::new(1, 0, 0));
        assert_eq!(
            job.evaluate(&dev((1, 0, 0), "192.168.0.10", 8884)),
            JobVerdict::Reject(ErrorCode::InvalidVersion)
        );
        assert_eq!(
            job.evaluate(&dev((0, 9, 9), "192.168.0.10", 8884)),
            JobVerdict::Accept
        );
        assert_eq!(
            job.evaluate(&dev((0, 9, 9), "192.168.0.10", 8883)),
            JobVerdict::ChangeServer {
                connection: Connection::Mqtt,
                host: "192.168.0.10",
                port: 8884
            }
        );
        let numeric_port = G4.replace(r#""Port": "8884""#, r#""Port": 8884"#);
        let job = JobDoc::parse(numeric_port.as_bytes()).unwrap();
        assert_eq!(job.port, None);
        assert_eq!(
            job.evaluate(&dev((0, 9, 9), "192.168.0.10", 8883)),
            JobVerdict::Accept
        );
    }

    #[test]
    fn g5_is_no_update_for_any_running_version() {
        let job = JobDoc::parse(G5.as_bytes()).unwrap();
        for run in [(0, 0, 0), (1, 0, 0), (9, 9, 9)] {
            assert_eq!(
                job.evaluate(&dev(run, "h", 1883)),
                JobVerdict::Reject(ErrorCode::InvalidVersion)
            );
        }
    }

    #[test]
    fn parser_rules() {
        let doc = br#"{"BOARD":"APP_CY8CPROTO_062S2_43439","version":"2","nested":{"Port":"1883"},"Connection":"m","Broker":"","BoardName":"x"}"#;
        let job = JobDoc::parse(doc).unwrap();
        assert_eq!(job.board, Some(BRD));
        assert_eq!(job.version, AppVersion::new(2, 0, 0));
        assert_eq!(job.port, Some(1883));
        assert_eq!(job.connection, Some(Connection::Mqtt));
        assert_eq!(job.broker, None);
        assert_eq!(job.evaluate(&dev((1, 0, 0), "h", 1883)), JobVerdict::Accept);
        let wrong = br#"{"Version":"2.0.0","BoardName":"APP_CY8CPROTO_062S2_43439"}"#;
        assert_eq!(
            JobDoc::parse(wrong)
                .unwrap()
                .evaluate(&dev((1, 0, 0), "h", 1883)),
            JobVerdict::Reject(ErrorCode::WrongBoard)
        );
        let number_version = br#"{"Version":2.0,"Board":"APP_CY8CPROTO_062S2_43439"}"#;
        assert_eq!(
            JobDoc::parse(number_version).unwrap().version,
            AppVersion::default()
        );
        assert_eq!(Connection::parse_device("h"), Some(Connection::Http));
        assert_eq!(Connection::parse_device("HTTPS"), Some(Connection::Https));
        assert_eq!(Connection::parse_device("mqttx"), None);
        assert_eq!(JobDoc::parse(b""), Err(ErrorCode::BadArg));
        assert_eq!(
            JobDoc::parse(b"{\"Version\":\"2\""),
            Err(ErrorCode::MalformedJobDoc)
        );
        assert_eq!(
            JobDoc::parse(&[b' '; 1025]),
            Err(ErrorCode::MalformedJobDoc)
        );
        let long = [&b"{\"Board\":\""[..], &[b'a'; 60], b"\"}"].concat();
        assert_eq!(JobDoc::parse(&long).unwrap().board.map(str::len), Some(47));
    }
}
