//! Job documents ("Update Available", spec §2.3) from a template with the example's fields and
//! spelling (`templates/ota_update.json`).
//!
//! The template gives the order and the fixed fields; the publisher always overwrites
//! `Message`, `Board`, `Version` (from the image header) and `UniqueTopicName`. `Broker` and
//! `Port` left empty mean "the broker you asked on" to the device.

use std::path::Path;

use ota_core::protocol::codec::JobEncodeError;

/// Why a job template or document is not usable.
#[derive(Debug, thiserror::Error)]
pub enum JobTemplateError {
    /// Not one flat JSON object.
    #[error("{0}")]
    Json(String),
    /// A value that is not a plain string.
    #[error("field {0:?}: values must be plain strings without escapes (devices read only those)")]
    NotPlain(String),
    /// The template file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The template file's contents are not usable.
    #[error("{}: not a usable job template", path.display())]
    Template {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<JobTemplateError>,
    },
    /// A field the device could not read.
    #[error("job field {key:?}")]
    Field {
        /// The field.
        key: String,
        /// Why.
        #[source]
        source: JobEncodeError,
    },
    /// The whole document.
    #[error("job document")]
    Document(#[source] JobEncodeError),
}

type Result<T> = std::result::Result<T, JobTemplateError>;
use ota_core::protocol::codec::JobWriter;
use ota_core::protocol::json;
use ota_core::protocol::{AppVersion, MessageKind, JOB_DOC_MAX};

/// The built-in template (the example's `ota_update.json`, with an empty Broker and Port).
pub const EXAMPLE_TEMPLATE: &str = include_str!("../../templates/ota_update.json");

/// Ordered `key: "value"` pairs of a job template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTemplate {
    fields: Vec<(String, String)>,
}

impl Default for JobTemplate {
    fn default() -> Self {
        Self::parse(EXAMPLE_TEMPLATE.as_bytes()).expect("the built-in template is valid")
    }
}

impl JobTemplate {
    /// Parses a template: one flat JSON object with string values only (what the device reads).
    ///
    /// # Errors
    /// Malformed JSON, nested or non-string values, or escapes.
    pub fn parse(text: &[u8]) -> Result<Self> {
        let mut fields = Vec::new();
        let mut bad: Option<String> = None;
        json::scan(text, |f| match f.value.as_plain_str() {
            Some(v) if f.depth == 0 => fields.push((f.key.to_string(), v.to_string())),
            _ => {
                bad.get_or_insert_with(|| f.key.to_string());
            }
        })
        .map_err(|e| JobTemplateError::Json(e.to_string()))?;
        if let Some(key) = bad {
            return Err(JobTemplateError::NotPlain(key));
        }
        Ok(Self { fields })
    }

    /// Reads a template file.
    ///
    /// # Errors
    /// Unreadable or invalid file (named).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| JobTemplateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| JobTemplateError::Template {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Sets (or appends) a field.
    pub fn set(&mut self, key: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            Some(f) => f.1 = value.to_string(),
            None => self.fields.push((key.to_string(), value.to_string())),
        }
    }

    /// The job document for a device on `board` at `unique_topic`, offering `version`.
    ///
    /// # Errors
    /// A field that needs escaping, or a document longer than devices accept.
    pub fn render(&self, board: &str, version: AppVersion, unique_topic: &str) -> Result<Vec<u8>> {
        let mut t = self.clone();
        t.set("Message", MessageKind::UpdateAvailable.as_str());
        t.set("Board", board);
        t.set("Version", &version.to_string());
        t.set("UniqueTopicName", unique_topic);
        let mut buf = vec![0u8; JOB_DOC_MAX + 64];
        let mut w = JobWriter::new(&mut buf);
        for (k, v) in &t.fields {
            w.field(k, v).map_err(|source| JobTemplateError::Field {
                key: k.clone(),
                source,
            })?;
        }
        let n = w.finish().map_err(JobTemplateError::Document)?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_example_fields_in_order() {
        let t = JobTemplate::default();
        let doc = t
            .render(
                "APP_CY8CPROTO_062S2_43439",
                AppVersion::new(1, 2, 3),
                "P/B/OTAImage/7",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(doc).unwrap(),
            r#"{"Message": "Update Available", "Manufacturer": "Infineon", "ManufacturerId": "ABCD123", "Product": "EFGH456", "SerialNumber": "ABC213450001", "Board": "APP_CY8CPROTO_062S2_43439", "Version": "1.2.3", "Connection": "MQTT", "Broker": "", "Port": "", "UniqueTopicName": "P/B/OTAImage/7"}"#
        );
    }

    #[test]
    fn rejects_templates_devices_cannot_read() {
        assert!(JobTemplate::parse(br#"{"Port": 8884}"#).is_err());
        assert!(JobTemplate::parse(br#"{"A": {"B": "c"}}"#).is_err());
        assert!(JobTemplate::parse(br#"{"A": "x\"y"}"#).is_err());
        assert!(JobTemplate::parse(b"{").is_err());
    }
}
