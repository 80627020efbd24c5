//! Whether a CA certificate, a certificate and its key belong together (`otactl certs check`,
//! and `otactl cert-to-c` before it writes a board's header): the key matches the certificate,
//! the certificate is signed by the CA, its usage fits the role (client or broker), a broker's
//! certificate names the address clients use, the dates are good, and its X.509 version works.
//!
//! Each answer is a [`Finding`] in plain words; [`Report::usable`] is false when any of them is a
//! [`Severity::Problem`]. Old but working material (X.509 version 1 client certificates, as
//! Infineon's `generate_ssl_cert.sh` makes them) gets a [`Severity::Warning`]. Files that cannot
//! be read as PEM certificates or keys are a [`CheckError`].
//!
//! Signatures are checked with the CA's public key directly (x509-parser over ring), not with
//! webpki, which refuses version 1 certificates.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ota_tls::{key_matches, FileError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::SigningKey;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

mod names;
mod rules;

/// Warn when a certificate expires within this many days.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// What the certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A board's or the publisher's client certificate (mutual TLS).
    Client,
    /// The broker's server certificate.
    Server,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "broker (server)",
        })
    }
}

/// One input file: its path (for messages) and its contents.
#[derive(Clone, Copy, Debug)]
pub struct Pem<'a> {
    /// Where it came from.
    pub path: &'a Path,
    /// The PEM text.
    pub data: &'a [u8],
}

/// What to check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Client or broker certificate.
    pub role: Role,
    /// The address clients reach the broker at (host, `host:port` or a URL); checked against a
    /// broker certificate's names.
    pub broker: Option<String>,
    /// Whether the certificate must be signed by the CA. Off when the CA only verifies the
    /// broker (AWS IoT Core: AmazonRootCA1.pem, while AWS's intermediate issues the device's).
    pub chain: bool,
    /// The clock the validity dates are checked against.
    pub now: OffsetDateTime,
}

/// A file that cannot be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Not PEM, or no certificate or key in it.
    #[error(transparent)]
    File(#[from] FileError),
    /// A `CERTIFICATE` block that is not X.509.
    #[error("{}: not a readable X.509 certificate", path.display())]
    NotX509 {
        /// The file.
        path: PathBuf,
    },
    /// A key of a kind TLS cannot use (or an encrypted one).
    #[error("{}: not an RSA, ECDSA (P-256/P-384) or Ed25519 private key", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
    },
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Worth knowing; nothing to do.
    Note,
    /// Works, but old or about to stop working.
    Warning,
    /// Does not work: the files do not belong together or cannot be used in this role.
    Problem,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Problem => "problem",
        })
    }
}

/// One answer, in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// What was found.
    pub text: String,
}

/// Every finding, in the order checked.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
    /// The CA did not sign the certificate (one of the problems).
    pub not_issued_by_ca: bool,
}

impl Report {
    /// No problems (warnings allowed).
    #[must_use]
    pub fn usable(&self) -> bool {
        self.of(Severity::Problem).next().is_none()
    }

    /// The findings of one severity.
    pub fn of(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == severity)
    }

    fn push(&mut self, severity: Severity, text: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            text: text.into(),
        });
    }
}

/// The certificates of a PEM file (at least one), as DER.
fn certificates(pem: Pem<'_>) -> Result<Vec<CertificateDer<'static>>, CheckError> {
    let certs = ota_tls::certs_in(pem.path, pem.data)?;
    for der in &certs {
        if X509Certificate::from_der(der).is_err() {
            return Err(CheckError::NotX509 {
                path: pem.path.to_path_buf(),
            });
        }
    }
    Ok(certs)
}

/// The signing key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn signing_key(pem: Pem<'_>) -> Result<Arc<dyn SigningKey>, CheckError> {
    let der: PrivateKeyDer<'static> = ota_tls::key_in(pem.path, pem.data)?;
    rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|_| CheckError::UnsupportedKey {
            path: pem.path.to_path_buf(),
        })
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    // `certificates` parsed every one already.
    X509Certificate::from_der(der).map_or_else(|_| unreachable!("parsed before"), |(_, c)| c)
}

/// Checks `cert` (with `key`) against `ca` for `opts.role`.
///
/// # Errors
/// A file that is not PEM, has no certificate or key, or holds one that cannot be parsed.
pub fn check(
    ca: Pem<'_>,
    cert: Pem<'_>,
    key: Pem<'_>,
    opts: &Options,
) -> Result<Report, CheckError> {
    let ca_ders = certificates(ca)?;
    let cert_ders = certificates(cert)?;
    let signing = signing_key(key)?;
    let cas: Vec<X509Certificate<'_>> = ca_ders.iter().map(parse).collect();
    let chain: Vec<X509Certificate<'_>> = cert_ders.iter().map(parse).collect();
    let leaf = &chain[0];
    let (ca_path, cert_path, key_path) =
        (ca.path.display(), cert.path.display(), key.path.display());
    let mut r = Report::default();

    if key_matches(signing.as_ref(), leaf) {
        r.push(
            Severity::Ok,
            format!("the key {key_path} belongs to the certificate {cert_path}"),
        );
    } else {
        r.push(
            Severity::Problem,
            format!(
                "the key {key_path} does not belong to the certificate {cert_path} ({}): it is \
                 the key of another certificate (another device's, or the broker's?); use the key \
                 file that was made together with this certificate",
                leaf.subject()
            ),
        );
    }
    if opts.chain {
        rules::signed_by_ca(
            &mut r,
            &cas,
            &chain,
            &ca_path.to_string(),
            &cert_path.to_string(),
        );
    } else {
        r.push(
            Severity::Note,
            format!("not checked whether the CA {ca_path} issued {cert_path} (it only verifies the broker)"),
        );
    }
    for c in &cas {
        rules::is_a_ca(&mut r, c, &ca_path.to_string());
        rules::dates(
            &mut r,
            c,
            &format!("the CA certificate {ca_path}"),
            opts.now,
        );
    }
    rules::version(&mut r, leaf, opts.role, &cert_path.to_string());
    rules::usage(&mut r, leaf, opts.role, &cert_path.to_string());
    if opts.role == Role::Server {
        names::names(
            &mut r,
            &cert_ders[0],
            opts.broker.as_deref(),
            &cert_path.to_string(),
        );
    } else if let Some(b) = &opts.broker {
        r.push(
            Severity::Note,
            format!("the broker address {b} is checked against a broker's certificate (--server), not a client's"),
        );
    }
    rules::dates(&mut r, leaf, &cert_path.to_string(), opts.now);
    rules::key_size(&mut r, leaf, &cert_path.to_string());
    Ok(r)
}

#[cfg(test)]
mod tests;
