//! PEM files as C string literals, the form `ota_app_config.h` expects: one quoted string per
//! line ending in `\n`, joined by a trailing backslash on every line but the last, so the
//! compiler concatenates them back into the exact file contents.
//!
//! A header may also carry the OTA agent's three request templates with a device's own
//! `SerialNumber` ([`request_templates`]): the example firmware hard-codes `ABC213450001` in them
//! (spec §2.1), so without this every board looks the same to the publisher.

use std::fmt::Write as _;
use std::path::Path;

use super::{CertsError, Result};
use ota_core::protocol::{DeviceIdentity, MessageKind};
use rustls::pki_types::pem::SectionKind;

/// Macro names of the header [`c_header`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CNames {
    /// The root CA certificate (default `ROOT_CA_CERTIFICATE`).
    pub ca: String,
    /// The client certificate (default `CLIENT_CERTIFICATE`).
    pub cert: String,
    /// The client private key (default `CLIENT_KEY`).
    pub key: String,
}

impl Default for CNames {
    fn default() -> Self {
        Self {
            ca: "ROOT_CA_CERTIFICATE".into(),
            cert: "CLIENT_CERTIFICATE".into(),
            key: "CLIENT_KEY".into(),
        }
    }
}

/// What a PEM file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PemKind {
    /// At least one certificate, no key.
    Certificate,
    /// A private key, no certificate.
    PrivateKey,
    /// Both.
    Mixed,
}

/// Checks that `data` (read from `path`) is PEM with at least one certificate or private key.
///
/// # Errors
/// Not UTF-8 text, invalid PEM, or no certificate or key; the message names `path`.
pub fn pem_kind(path: &Path, data: &[u8]) -> Result<PemKind> {
    if std::str::from_utf8(data).is_err() {
        return Err(CertsError::NotText(path.to_path_buf()));
    }
    let (mut certs, mut keys) = (0, 0);
    let kinds = super::pem::section_kinds(data).map_err(|source| CertsError::BadPem {
        path: path.to_path_buf(),
        source,
    })?;
    for kind in kinds {
        match kind {
            SectionKind::Certificate => certs += 1,
            SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
                keys += 1;
            }
            _ => {}
        }
    }
    Ok(match (certs, keys) {
        (0, 0) => return Err(CertsError::NoPemBlock(path.to_path_buf())),
        (_, 0) => PemKind::Certificate,
        (0, _) => PemKind::PrivateKey,
        _ => PemKind::Mixed,
    })
}

fn escape(line: &[u8], out: &mut String) {
    for &b in line {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            // '?' escaped so no trigraph can form.
            b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
}

/// `data` as C string literals, one per line (each ending in `\n` except a final line without
/// one), with ` \` after every line but the last. Empty input gives `""`.
#[must_use]
pub fn c_literal(data: &[u8]) -> String {
    if data.is_empty() {
        return "\"\"".into();
    }
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let mut out = String::with_capacity(data.len() + lines.len() * 6);
    for (i, line) in lines.iter().enumerate() {
        out.push('"');
        escape(line, &mut out);
        out.push('"');
        if i + 1 < lines.len() {
            out.push_str(" \\");
        }
        out.push('\n');
    }
    out
}

/// The longest `SerialNumber` a device can carry: the 32-byte field of its JSON parser minus
/// the terminating NUL (spec §4.2).
pub const SERIAL_MAX: usize = 31;

/// The `SerialNumber` every board built from the example's templates sends (spec §2.1).
pub const TEMPLATE_SERIAL: &str = DeviceIdentity::APP.serial_number;

/// The subject CN AWS IoT Core gives every device certificate it issues (create-keys-and-certificate
/// and create-certificate-from-csr alike): the same on every board.
pub const AWS_CERTIFICATE_CN: &str = "AWS IoT Certificate";

/// Why a name cannot be a device's `SerialNumber`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// Nothing to send.
    #[error("the SerialNumber must not be empty")]
    Empty,
    /// Longer than the device's field.
    #[error(
        "SerialNumber {serial:?} is {len} bytes; the device's SerialNumber field holds at most {SERIAL_MAX}"
    )]
    TooLong {
        /// The name.
        serial: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character the device's `sprintf` would turn into broken JSON or a wrong conversion.
    #[error(
        "SerialNumber {serial:?} contains {what}; the device builds its requests with sprintf and \
         no JSON escaping, so it would send broken JSON"
    )]
    BadChar {
        /// The name.
        serial: String,
        /// The character, described.
        what: String,
    },
    /// The example's template value, which every board sends.
    #[error(
        "SerialNumber {TEMPLATE_SERIAL} is the example's template value that every board sends; \
         it cannot identify a device"
    )]
    Template,
    /// The CN of every AWS IoT Core certificate.
    #[error(
        "{AWS_CERTIFICATE_CN:?} is the CN AWS IoT Core gives every certificate it issues; it cannot \
         identify a device"
    )]
    AwsCertificate,
}

/// Checks that `serial` can stand in the device's request templates as `SerialNumber`: 1 to
/// [`SERIAL_MAX`] bytes, no `"`, `\`, `%` or control characters, not [`TEMPLATE_SERIAL`] or
/// [`AWS_CERTIFICATE_CN`].
///
/// # Errors
/// The first rule `serial` breaks.
pub fn check_serial(serial: &str) -> Result<(), SerialError> {
    if serial.is_empty() {
        return Err(SerialError::Empty);
    }
    let bad = |what: String| SerialError::BadChar {
        serial: serial.into(),
        what,
    };
    if let Some(c) = serial
        .chars()
        .find(|c| matches!(c, '"' | '\\' | '%') || c.is_control())
    {
        return Err(bad(match c {
            '"' => "a double quote".into(),
            '\\' => "a backslash".into(),
            '%' => "'%' (a printf conversion)".into(),
            c => format!("a control character (U+{:04X})", u32::from(c)),
        }));
    }
    if serial.len() > SERIAL_MAX {
        return Err(SerialError::TooLong {
            serial: serial.into(),
            len: serial.len(),
        });
    }
    if serial == TEMPLATE_SERIAL {
        return Err(SerialError::Template);
    }
    if serial == AWS_CERTIFICATE_CN {
        return Err(SerialError::AwsCertificate);
    }
    Ok(())
}

/// The OTA agent's request templates this module overrides: macro name, `Message`, and whether
/// the template ends with `UniqueTopicName` (the direct request does not, spec §2.8).
const TEMPLATES: [(&str, MessageKind, bool); 3] = [
    (
        "CY_OTA_SUBSCRIBE_UPDATES_AVAIL",
        MessageKind::UpdateAvailability,
        true,
    ),
    ("CY_OTA_DOWNLOAD_REQUEST", MessageKind::RequestUpdate, true),
    (
        "CY_OTA_DOWNLOAD_DIRECT_REQUEST",
        MessageKind::SendDirectUpdate,
        false,
    ),
];

/// The pieces of one template's JSON text, printf conversions included: `{"Message":"…", `,
/// `"Manufacturer": "…", `, …, and the ending (spec §2.1: the first key is followed by `:`,
/// every later one by `: `, pairs are joined by `, `).
fn template_pieces(message: MessageKind, serial: &str, topic: bool) -> Vec<String> {
    // Literal text in a printf format: a '%' must be doubled to print as itself.
    let lit = |s: &str| s.replace('%', "%%");
    let app = DeviceIdentity::APP;
    let mut pieces = vec![format!("{{\"Message\":\"{}\", ", lit(message.as_str()))];
    for (key, value) in [
        ("Manufacturer", app.manufacturer),
        ("ManufacturerID", app.manufacturer_id),
        ("ProductID", app.product_id),
        ("SerialNumber", serial),
        ("BoardName", app.board_name),
    ] {
        pieces.push(format!("\"{key}\": \"{}\", ", lit(value)));
    }
    if topic {
        pieces.push("\"Version\": \"%d.%d.%d\", ".into());
        pieces.push("\"UniqueTopicName\": \"%s\"}".into());
    } else {
        pieces.push("\"Version\": \"%d.%d.%d\" }".into());
    }
    pieces
}

/// `CY_OTA_SUBSCRIBE_UPDATES_AVAIL`, `CY_OTA_DOWNLOAD_REQUEST` and
/// `CY_OTA_DOWNLOAD_DIRECT_REQUEST` as the example application defines them (APP
/// `configs/cy_ota_config.h`: Manufacturer "Infineon", ManufacturerID "ABCD123", ProductID
/// "EFGH456", BoardName "CY8CPROTO_062_4343W"), but with `serial` as `SerialNumber`. Each is
/// `#undef`'d first, so the text may follow the example's or the library's definitions.
///
/// The agent prints the first two with `snprintf(buf, size, TEMPLATE, APP_VERSION_MAJOR,
/// APP_VERSION_MINOR, APP_VERSION_BUILD, unique_topic)` (`%d.%d.%d`, then `%s`); the direct
/// request, which no library code prints, takes only the version.
///
/// # Errors
/// `serial` fails [`check_serial`].
pub fn request_templates(serial: &str) -> Result<String, SerialError> {
    check_serial(serial)?;
    let mut out = String::new();
    for (macro_name, message, topic) in TEMPLATES {
        let _ = write!(out, "\n#undef {macro_name}\n#define {macro_name}");
        for piece in template_pieces(message, serial, topic) {
            out.push_str(" \\\n    \"");
            escape(piece.as_bytes(), &mut out);
            out.push('"');
        }
        out.push('\n');
    }
    Ok(out)
}

/// `text` with every `*/` broken up, so it can stand inside a C comment.
#[must_use]
pub fn comment_safe(text: &str) -> String {
    text.replace("*/", "*\\/")
}

/// Whether `name` is a C identifier (usable as a macro name).
fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The comment lines of a header with request templates: what they do and where to include it.
fn templates_howto(serial: &str, header_name: &str) -> String {
    format!(
        " * The request templates at the end make the OTA agent send SerialNumber {}, so the
 * publisher can tell this board from the others. The agent's code sees them only through
 * cy_ota_config.h, so include this header at the end of configs/cy_ota_config.h, after the
 * example's request templates and before its closing #endif:
 *     #include \"{}\"
 * and delete the three certificate #defines from configs/ota_app_config.h: it includes
 * cy_ota_config.h first and gets them from here. Each template is #undef'd before it is
 * defined, so the header may also follow the library's defaults (cy_ota_defaults.h), and the
 * templates stay outside the include guard, so every inclusion applies them again.
",
        comment_safe(serial),
        comment_safe(header_name)
    )
}

/// A header defining the three macros from the CA certificate, client certificate and client
/// key files (each `(path, contents)`); checks that each file holds what its macro says. With
/// `serial`, the header also overrides the agent's request templates with that `SerialNumber`
/// ([`request_templates`]); `header_name` is the file name its comment tells to `#include`.
///
/// # Errors
/// A file that is not PEM or holds the wrong kind of block, a macro name that is not a C
/// identifier (or two equal names), or a `serial` that fails [`check_serial`].
pub fn c_header(
    names: &CNames,
    files: [(&Path, &[u8]); 3],
    serial: Option<(&str, &str)>,
) -> Result<String> {
    let macros = [&names.ca, &names.cert, &names.key];
    for (i, m) in macros.iter().enumerate() {
        if !is_c_identifier(m) {
            return Err(CertsError::MacroName((*m).clone()));
        }
        if macros[..i].contains(m) {
            return Err(CertsError::MacroTwice((*m).clone()));
        }
    }
    let wants = [
        PemKind::Certificate,
        PemKind::Certificate,
        PemKind::PrivateKey,
    ];
    let mut out = String::from("/* Generated by otactl cert-to-c from:\n");
    for (path, _) in &files {
        let _ = writeln!(out, " *   {}", comment_safe(&path.display().to_string()));
    }
    out.push_str(" * Do not edit: run otactl cert-to-c again.\n");
    let templates = match serial {
        Some((serial, header_name)) => {
            let text = request_templates(serial)?;
            out.push_str(" *\n");
            out.push_str(&templates_howto(serial, header_name));
            Some(text)
        }
        None => None,
    };
    out.push_str(" */\n");
    out.push_str("#ifndef OTACTL_TLS_CREDENTIALS_H\n#define OTACTL_TLS_CREDENTIALS_H\n");
    for ((path, data), (macro_name, want)) in files.iter().zip(macros.iter().zip(wants)) {
        let kind = pem_kind(path, data)?;
        if kind != want {
            let what = if want == PemKind::PrivateKey {
                "a private key only"
            } else {
                "certificates only"
            };
            return Err(CertsError::WrongPemKind {
                path: path.to_path_buf(),
                macro_name: (*macro_name).clone(),
                what,
            });
        }
        let _ = write!(out, "\n#define {macro_name} \\\n{}", c_literal(data));
    }
    out.push_str("\n#endif /* OTACTL_TLS_CREDENTIALS_H */\n");
    if let Some(text) = templates {
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lines_and_backslashes() {
        assert_eq!(c_literal(b"a\nb\n"), "\"a\\n\" \\\n\"b\\n\"\n");
        assert_eq!(c_literal(b"a\nb"), "\"a\\n\" \\\n\"b\"\n");
        assert_eq!(c_literal(b""), "\"\"");
        assert_eq!(
            c_literal(b"q\"\\?\r\n\x01"),
            "\"q\\\"\\\\\\?\\r\\n\" \\\n\"\\001\"\n"
        );
    }

    #[test]
    fn non_pem_is_an_error_naming_the_file() {
        let p = Path::new("dir/x.der");
        let e = pem_kind(p, b"\x30\x82\x01\xff").unwrap_err().to_string();
        assert!(e.contains("dir/x.der"), "{e}");
        let e = pem_kind(p, b"hello\n").unwrap_err().to_string();
        assert!(e.contains("dir/x.der") && e.contains("not a PEM"), "{e}");
    }

    #[test]
    fn serials() {
        for ok in ["DEVICE-0001", "a b", "Zürich", &"x".repeat(SERIAL_MAX)] {
            check_serial(ok).unwrap();
        }
        let bad = |s: &str| check_serial(s).unwrap_err().to_string();
        assert!(bad("").contains("empty"));
        assert!(bad(&"x".repeat(SERIAL_MAX + 1)).contains("at most 31"));
        // 16 two-byte characters: 32 bytes.
        assert!(bad(&"ü".repeat(16)).contains("32 bytes"));
        assert!(bad("a\"b").contains("double quote"));
        assert!(bad("a\\b").contains("backslash"));
        assert!(bad("%s").contains("'%'"));
        assert!(bad("a\nb").contains("U+000A"));
        assert!(bad("a\u{85}b").contains("U+0085"));
        assert_eq!(check_serial(TEMPLATE_SERIAL), Err(SerialError::Template));
        assert_eq!(
            check_serial(AWS_CERTIFICATE_CN),
            Err(SerialError::AwsCertificate)
        );
    }

    /// The templates, with the conversions done the way the agent's `snprintf` does them, are
    /// the simulated device's requests (which are G1/G2 with the template serial).
    #[test]
    fn templates_print_what_the_simulated_device_sends() {
        use ota_core::protocol::codec::{encode_direct_request, encode_request};
        use ota_core::protocol::AppVersion;
        let topic = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234";
        for serial in [TEMPLATE_SERIAL, "board-7"] {
            let id = DeviceIdentity {
                serial_number: serial,
                ..DeviceIdentity::APP
            };
            let v = AppVersion::new(1, 0, 0);
            let mut buf = [0u8; 1024];
            for (_, message, topic_field) in TEMPLATES {
                let printed = template_pieces(message, serial, topic_field)
                    .concat()
                    .replace("%d.%d.%d", "1.0.0")
                    .replace("%s", topic);
                let n = if topic_field {
                    encode_request(&mut buf, message, &id, v, topic).unwrap()
                } else {
                    encode_direct_request(&mut buf, &id, v).unwrap()
                };
                assert_eq!(printed.as_bytes(), &buf[..n], "{serial} {message:?}");
            }
        }
    }

    #[test]
    fn macro_names_must_be_identifiers() {
        assert!(is_c_identifier("ROOT_CA_1") && is_c_identifier("_x"));
        assert!(!is_c_identifier("1X") && !is_c_identifier("A-B") && !is_c_identifier(""));
    }
}
