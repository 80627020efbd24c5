//! The one rustls client configuration for MQTT over TLS, used by otactl (`publish`, `job`,
//! `device`) and by the host device application (`devapp`).
//!
//! [`ClientTls`] takes the CA (a PEM file, or the system's roots), an optional client
//! certificate and key, a server-name override, `insecure` and ALPN protocols, and builds a
//! [`rustls::ClientConfig`] with the ring provider (TLS 1.2 and 1.3):
//!
//! - The broker's chain is always verified against the CA by rustls's webpki verifier, under
//!   the host the client connects to or, when [`ClientTls::server_name`] is set, under that name
//!   (for certificates that do not name the address, such as the `DNS:mosquitto_server` ones
//!   Infineon's `generate_ssl_cert.sh` makes). [`ClientTls::insecure`] is the only way to skip it;
//!   the handshake signatures are still verified then.
//! - When the chain is good and only the name is wrong, the handshake fails with a
//!   [`NameMismatch`] that lists the names the certificate carries and says how to pass one
//!   (the caller's [`NameAdvice`]).
//! - Client certificates are sent as the bytes in the file, so X.509 version 1 certificates
//!   (what `openssl x509 -req` makes without an extensions file) work. rustls's own
//!   `with_client_auth_cert` parses the certificate with webpki only to compare its key with the
//!   private key, and webpki refuses version 1; the same comparison is made here with
//!   x509-parser, which reads every version. Keys: RSA (PKCS#1 or PKCS#8), ECDSA (SEC1 or
//!   PKCS#8), Ed25519.
//!
//! Errors ([`TlsError`]) name the file and what is wrong with it; callers put their own name
//! for the setting (a flag, an environment variable) in front.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::pem::PemError;

pub mod pem;
mod verify;

pub use verify::{key_matches, subject_alt_names, NameAdvice, NameMismatch};

/// Where the CA certificates the broker's chain must end in come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// Every certificate in a PEM file (at least one).
    File(PathBuf),
    /// The operating system's root certificates (rustls-native-certs).
    System,
}

/// A client certificate chain and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// The certificate chain, leaf first (X.509 version 1 or 3).
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// The settings of one TLS client; [`ClientTls::build`] turns them into a rustls config.
///
/// ```no_run
/// use ota_tls::{ClientTls, Roots};
/// let config = ClientTls::new(Roots::File("certs/ca.crt".into()))
///     .client_auth("certs/device.crt", "certs/device.key")
///     .server_name("mosquitto_server")
///     .build()?;
/// # Ok::<(), ota_tls::TlsError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientTls {
    roots: Roots,
    client: Option<ClientAuth>,
    server_name: Option<String>,
    insecure: bool,
    alpn: Vec<Vec<u8>>,
    advice: NameAdvice,
}

impl ClientTls {
    /// A client that verifies the broker against `roots`, without a client certificate.
    #[must_use]
    pub fn new(roots: Roots) -> Self {
        Self {
            roots,
            client: None,
            server_name: None,
            insecure: false,
            alpn: Vec::new(),
            advice: NameAdvice::default(),
        }
    }

    /// Sends the client certificate in `cert` with the key in `key` (mutual TLS).
    #[must_use]
    pub fn client_auth(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client = Some(ClientAuth {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Verifies the broker's certificate for `name` instead of the host connected to.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Skips the verification of the broker's chain and name (the CA is not read).
    #[must_use]
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Offers these ALPN protocols (e.g. `x-amzn-mqtt-ca` for AWS IoT Core on port 443).
    #[must_use]
    pub fn alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// How a [`NameMismatch`] tells the user to set the server name.
    #[must_use]
    pub fn name_advice(mut self, advice: NameAdvice) -> Self {
        self.advice = advice;
        self
    }

    /// Builds the rustls client config (ring provider, TLS 1.2 and 1.3).
    ///
    /// # Errors
    /// An invalid server name, unreadable or invalid CA, certificate or key files, no system
    /// roots, or a key that is unsupported or does not belong to the certificate.
    pub fn build(&self) -> Result<ClientConfig, TlsError> {
        let provider = provider();
        let verifier = self.verifier_with(&provider)?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Versions)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let certified = client_cert(auth, &provider)?;
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
        };
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(config)
    }

    /// The broker verifier alone, as [`ClientTls::build`] installs it.
    ///
    /// # Errors
    /// See [`ClientTls::build`] (everything but the client certificate).
    pub fn verifier(&self) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        self.verifier_with(&provider())
    }

    fn verifier_with(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        let name = match &self.server_name {
            None => None,
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|_| TlsError::ServerName { name: n.clone() })?,
            ),
        };
        let roots = if self.insecure {
            None
        } else {
            Some(roots(&self.roots)?)
        };
        let v = verify::BrokerVerifier::new(roots, name, self.advice.clone(), provider)?;
        Ok(Arc::new(v))
    }
}

/// What is wrong with one PEM file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A section of the file is not valid PEM.
    #[error("{}: invalid PEM", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: PemError,
    },
    /// The file has no `CERTIFICATE` section.
    #[error("{}: no CERTIFICATE found", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file has no private key section.
    #[error("{}: no PRIVATE KEY found", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate in the file cannot be used as a trust anchor.
    #[error("{}: unusable CA certificate", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

/// Why a client certificate and its key cannot be used together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// The key is of a kind rustls cannot sign with.
    #[error("the key is not an RSA, ECDSA (P-256/P-384) or Ed25519 private key")]
    UnsupportedKey,
    /// The first certificate of the chain does not parse as X.509.
    #[error("the first certificate is not a readable X.509 certificate")]
    UnreadableCertificate,
    /// The key is not the private half of the certificate's public key.
    #[error("the key does not belong to the certificate")]
    KeyMismatch,
}

/// Why a TLS client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server-name override does not parse.
    #[error("TLS server name {name:?}: not a host name or IP address")]
    ServerName {
        /// The name given.
        name: String,
    },
    /// The CA file cannot be used.
    #[error("CA certificate file")]
    Ca(#[source] FileError),
    /// [`Roots::System`] and the system has no root certificate rustls can use.
    #[error("no system root certificates found")]
    NoSystemRoots,
    /// webpki refuses the set of CA certificates.
    #[error("no usable CA certificate")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
    /// The client certificate file cannot be used.
    #[error("client certificate file")]
    Cert(#[source] FileError),
    /// The client key file cannot be used.
    #[error("client key file")]
    Key(#[source] FileError),
    /// The client certificate and key do not go together.
    #[error("{} / {}: unusable client certificate or key", cert.display(), key.display())]
    ClientAuth {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        #[source]
        source: ClientAuthError,
    },
    /// The provider supports no protocol version (a build without TLS 1.2 and 1.3).
    #[error("no usable protocol version")]
    Versions(#[source] rustls::Error),
}

/// `e` and every cause under it, joined by `": "` (what anyhow's `{:#}` prints), for callers
/// without anyhow.
#[must_use]
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    // Bounded: rustls and io chains are a few levels deep.
    for _ in 0..16 {
        let Some(c) = cause else { break };
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file (at least one).
///
/// # Errors
/// Unreadable file, bad PEM, or no certificate; the error names the file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    certs_in(path, &read(path)?)
}

/// Every certificate in `pem` (at least one), the text of the file `path`.
///
/// # Errors
/// Bad PEM, or no certificate; the error names `path`.
pub fn certs_in(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let certs = pem::certs(pem).map_err(|source| FileError::Pem {
        path: path.to_owned(),
        source,
    })?;
    if certs.is_empty() {
        return Err(FileError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
///
/// # Errors
/// Unreadable file, bad PEM, or no private key; the error names the file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    key_in(path, &read(path)?)
}

/// The first private key in `pem`, the text of the file `path`.
///
/// # Errors
/// Bad PEM, or no private key; the error names `path`.
pub fn key_in(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, FileError> {
    pem::private_key(pem)
        .map_err(|source| FileError::Pem {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| FileError::NoPrivateKey {
            path: path.to_owned(),
        })
}

/// The one crypto provider of every TLS client (ring; never the process default).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in load_certs(path).map_err(TlsError::Ca)? {
                store.add(cert).map_err(|source| {
                    TlsError::Ca(FileError::BadCa {
                        path: path.clone(),
                        source,
                    })
                })?;
            }
        }
        Roots::System => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots);
            }
        }
    }
    Ok(store)
}

/// The client certificate chain and its key, checked to belong together.
fn client_cert(auth: &ClientAuth, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(&auth.cert).map_err(TlsError::Cert)?;
    let key_der = load_key(&auth.key).map_err(TlsError::Key)?;
    let unusable = |source| TlsError::ClientAuth {
        cert: auth.cert.clone(),
        key: auth.key.clone(),
        source,
    };
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|_| unusable(ClientAuthError::UnsupportedKey))?;
    let (_, leaf) = X509Certificate::from_der(&chain[0])
        .map_err(|_| unusable(ClientAuthError::UnreadableCertificate))?;
    if !key_matches(signing.as_ref(), &leaf) {
        return Err(unusable(ClientAuthError::KeyMismatch));
    }
    Ok(CertifiedKey::new(chain, signing))
}

#[cfg(test)]
mod tests;
