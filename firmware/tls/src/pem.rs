//! PEM sections read with rustls-pki-types' `PemObject`, for otactl and the host device
//! application (it replaced the unmaintained rustls-pemfile, RUSTSEC-2025-0134, which was a
//! wrapper around the same parser). Text outside the `-----BEGIN`/`-----END` lines and sections
//! of other kinds are skipped; a malformed section of any kind is an error.

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why PEM text does not parse, in words (the lines and markers quoted as text, not bytes).
#[derive(Debug)]
pub struct PemError(String);

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PemError {}

impl From<pem::Error> for PemError {
    fn from(e: pem::Error) -> Self {
        let text = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
        Self(match e {
            pem::Error::MissingSectionEnd { end_marker } => {
                format!("section end {} missing", text(&end_marker))
            }
            pem::Error::IllegalSectionStart { line } => {
                format!("illegal section start: {}", text(&line))
            }
            pem::Error::Base64Decode(e) => e,
            other => other.to_string(),
        })
    }
}

/// Every `CERTIFICATE` section of `pem`, in order (none is not an error).
///
/// # Errors
/// A malformed PEM section.
pub fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(PemError::from)
}

/// The first `CERTIFICATE` section of `pem`; sections after it are not read.
///
/// # Errors
/// A malformed PEM section before it.
pub fn first_cert(pem: &[u8]) -> Option<Result<CertificateDer<'static>, PemError>> {
    CertificateDer::pem_slice_iter(pem)
        .next()
        .map(|r| r.map_err(PemError::from))
}

/// The first private key of `pem`: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or
/// `EC PRIVATE KEY` (SEC1). `None` when there is none.
///
/// # Errors
/// A malformed PEM section before it.
pub fn private_key(pem: &[u8]) -> Result<Option<PrivateKeyDer<'static>>, PemError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(Some(key)),
        Err(pem::Error::NoItemsFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The kind of every section of `pem`, in order, including kinds otactl does not use.
///
/// # Errors
/// A malformed PEM section.
pub fn section_kinds(pem: &[u8]) -> Result<Vec<SectionKind>, PemError> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .map(|r| r.map(|(kind, _)| kind).map_err(PemError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Short bodies: the parser only decodes base64, it does not parse the DER.
    const CERT_A: &str = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
    const CERT_B: &str = "-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n";

    #[test]
    fn certs_in_order_with_text_and_other_sections_between() {
        let pem = format!(
            "Bag Attributes\n{CERT_A}junk line\r\n-----BEGIN X509 CRL-----\nBwgJ\n\
             -----END X509 CRL-----\n-----BEGIN SOMETHING ELSE-----\nCgsM\n\
             -----END SOMETHING ELSE-----\n{CERT_B}"
        );
        let found = certs(pem.as_bytes()).unwrap();
        let ders: Vec<&[u8]> = found.iter().map(|c| c.as_ref()).collect();
        assert_eq!(ders, [&[1u8, 2, 3][..], &[4, 5, 6]]);
        assert_eq!(
            first_cert(pem.as_bytes()).unwrap().unwrap().as_ref(),
            [1, 2, 3]
        );
        assert_eq!(
            section_kinds(pem.as_bytes()).unwrap(),
            [
                SectionKind::Certificate,
                SectionKind::Crl,
                SectionKind::Certificate
            ]
        );
        assert!(certs(b"no PEM here").unwrap().is_empty());
        assert!(first_cert(b"").is_none());
    }

    #[test]
    fn private_key_of_each_kind_after_a_certificate() {
        for (label, expect) in [
            ("PRIVATE KEY", "Pkcs8"),
            ("RSA PRIVATE KEY", "Pkcs1"),
            ("EC PRIVATE KEY", "Sec1"),
        ] {
            let pem = format!("{CERT_A}-----BEGIN {label}-----\nAQID\n-----END {label}-----\n");
            let key = private_key(pem.as_bytes()).unwrap().unwrap();
            let kind = match key {
                PrivateKeyDer::Pkcs8(_) => "Pkcs8",
                PrivateKeyDer::Pkcs1(_) => "Pkcs1",
                PrivateKeyDer::Sec1(_) => "Sec1",
                _ => "other",
            };
            assert_eq!(kind, expect, "{label}");
            assert_eq!(key.secret_der(), [1, 2, 3]);
        }
        assert!(private_key(CERT_A.as_bytes()).unwrap().is_none());
    }

    #[test]
    fn errors_in_words() {
        let missing = "-----BEGIN CERTIFICATE-----\nAQID\n";
        assert_eq!(
            certs(missing.as_bytes()).unwrap_err().to_string(),
            r#"section end "CERTIFICATE" missing"#
        );
        let start = "-----BEGIN CERTIFICATE----\nAQID\n-----END CERTIFICATE-----\n";
        assert_eq!(
            private_key(start.as_bytes()).unwrap_err().to_string(),
            r#"illegal section start: "-----BEGIN CERTIFICATE----""#
        );
        let bad = "-----BEGIN CERTIFICATE-----\nA!ID\n-----END CERTIFICATE-----\n";
        assert!(!section_kinds(bad.as_bytes())
            .unwrap_err()
            .to_string()
            .is_empty());
    }
}
