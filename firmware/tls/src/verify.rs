//! The broker verifier (webpki under a fixed or the connected name, or `insecure`), the
//! [`NameMismatch`] it explains a wrong name with, and the x509-parser helpers both use.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SigningKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::TlsError;

/// Verifies the broker: webpki chain and name checks under `name` (else the host connected
/// to), or nothing but handshake signatures when insecure (the connection is then encrypted to
/// whoever holds the certificate's key).
#[derive(Debug)]
pub(super) struct BrokerVerifier {
    /// `None`: insecure.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// The server-name override.
    name: Option<ServerName<'static>>,
    advice: NameAdvice,
    algorithms: WebPkiSupportedAlgorithms,
}

impl BrokerVerifier {
    /// `roots: None` is insecure.
    pub(super) fn new(
        roots: Option<RootCertStore>,
        name: Option<ServerName<'static>>,
        advice: NameAdvice,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let webpki = match roots {
            None => None,
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .build()
                    .map_err(TlsError::Verifier)?,
            ),
        };
        Ok(Self {
            webpki,
            name,
            advice,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for BrokerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let name = self.name.as_ref().unwrap_or(server_name);
        webpki
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            .map_err(|e| match e {
                // webpki checks the name only after the chain, so the chain is good here.
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => rustls::Error::Other(rustls::OtherError(Arc::new(NameMismatch::new(
                    end_entity,
                    name.to_str().into_owned(),
                    self.name.is_some(),
                    self.advice.clone(),
                )))),
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// How the user sets the server-name override, for the advice of a [`NameMismatch`].
///
/// With `setting: "--tls-server-name"` and `elsewhere: "OTACTL_TLS_SERVER_NAME"`, a mismatch
/// ends "…; to verify it under one of its names, pass --tls-server-name mosquitto_server (or
/// set OTACTL_TLS_SERVER_NAME)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAdvice {
    /// The flag (or setting) that takes the name; a name given through it is shown after it.
    pub setting: String,
    /// Other places the name can be set, shown as "(or set …)"; empty for none.
    pub elsewhere: String,
}

impl Default for NameAdvice {
    /// `--tls-server-name`, the flag of otactl and of the simulated board.
    fn default() -> Self {
        Self {
            setting: "--tls-server-name".into(),
            elsewhere: String::new(),
        }
    }
}

/// The broker's certificate chains to the CA but is not valid for the name it was checked
/// under.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NameMismatch {
    /// The name checked: the host connected to, or the server-name override.
    pub expected: String,
    /// Whether `expected` is the server-name override.
    pub overridden: bool,
    /// The certificate's subjectAltName entries as openssl prints them (`DNS:…`,
    /// `IP Address:…`).
    pub names: Vec<String>,
    /// A DNS name of the certificate that the server-name override accepts.
    pub suggestion: Option<String>,
    /// How to set the override.
    pub advice: NameAdvice,
}

impl NameMismatch {
    fn new(
        end_entity: &CertificateDer<'_>,
        expected: String,
        overridden: bool,
        advice: NameAdvice,
    ) -> Self {
        let names = subject_alt_names(end_entity);
        let suggestion = names.iter().find_map(|n| {
            let dns = n.strip_prefix("DNS:")?;
            matches!(ServerName::try_from(dns), Ok(ServerName::DnsName(_))).then(|| dns.to_owned())
        });
        Self {
            expected,
            overridden,
            names,
            suggestion,
            advice,
        }
    }
}

impl fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setting = &self.advice.setting;
        let how = if self.overridden {
            format!("{setting} ")
        } else {
            String::new()
        };
        write!(
            f,
            "the broker's certificate is signed by the CA but is not valid for {how}{}: ",
            self.expected
        )?;
        if self.names.is_empty() {
            return f.write_str(
                "it has no subjectAltName entries (names are only checked there); issue it with \
                 the broker's address or name",
            );
        }
        write!(f, "it names {}", self.names.join(", "))?;
        if let Some(n) = self.names.iter().find(|n| n.starts_with("DNS:IP:")) {
            write!(
                f,
                " (\"{n}\" is a DNS name that reads \"{}\", not an IP address entry)",
                &n[4..]
            )?;
        }
        match &self.suggestion {
            Some(s) if !self.overridden => {
                write!(
                    f,
                    "; to verify it under one of its names, pass {setting} {s}"
                )?;
                match self.advice.elsewhere.as_str() {
                    "" => Ok(()),
                    more => write!(f, " (or set {more})"),
                }
            }
            Some(s) => write!(f, "; pass one of them, e.g. {setting} {s}"),
            None => f.write_str("; issue it with the broker's address or a host name"),
        }
    }
}

/// Whether `key` is the private half of `cert`'s public key.
#[must_use]
pub fn key_matches(key: &dyn SigningKey, cert: &X509Certificate<'_>) -> bool {
    key.public_key().is_some_and(|spki| {
        SubjectPublicKeyInfo::from_der(&spki).is_ok_and(|(_, k)| {
            k.subject_public_key.data == cert.public_key().subject_public_key.data
        })
    })
}

/// The subjectAltName entries of a DER certificate, as `openssl x509 -text` prints them
/// (`DNS:…`, `IP Address:…`, `URI:…`); none when it does not parse.
#[must_use]
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(s) => format!("DNS:{s}"),
            GeneralName::IPAddress(b) => match ip_address(b) {
                Some(ip) => format!("IP Address:{ip}"),
                None => "IP Address:<invalid>".to_owned(),
            },
            GeneralName::URI(s) => format!("URI:{s}"),
            GeneralName::RFC822Name(s) => format!("email:{s}"),
            GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
            _ => "<unsupported name>".to_owned(),
        })
        .collect()
}

fn ip_address(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}
