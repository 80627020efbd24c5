//! Job documents ("Update Available", spec §2.3) from a template with the example's fields and
//! spelling (`templates/ota_update.json`).
//!
//! The template gives the order and the fixed fields; the publisher always overwrites
//! `Message`, `Board`, `Version` (from the image header) and `UniqueTopicName`. `Broker` and
//! `Port` left empty mean "the broker you asked on" to the device.

use std::path::Path;

use anyhow::{bail, Context, Result};
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
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(key) = bad {
            bail!("field {key:?}: values must be plain strings without escapes (devices read only those)");
        }
        Ok(Self { fields })
    }

    /// Reads a template file.
    ///
    /// # Errors
    /// Unreadable or invalid file (named).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}: not a usable job template", path.display()))
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
            w.field(k, v).with_context(|| format!("job field {k:?}"))?;
        }
        let n = w.finish().context("job document")?;
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
