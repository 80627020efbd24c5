//! The rustls client config for `mqtts://` brokers: CA, client certificate, server name.
//!
//! - The broker's chain is always verified against `--ca` (or the system roots) by rustls's
//!   webpki verifier, under the name in the URL or, with `--tls-server-name NAME`, under `NAME`
//!   (for certificates that do not name the address, such as the `DNS:mosquitto_server` ones
//!   Infineon's `generate_ssl_cert.sh` makes). `--insecure` is the only way to skip it.
//! - When the chain is good and only the name is wrong, the error lists the names the
//!   certificate carries and suggests `--tls-server-name` ([`NameMismatch`]).
//! - Client certificates are sent as the bytes in the file: X.509 version 1 certificates (what
//!   `openssl x509 -req` makes without an extensions file) work. rustls's own
//!   `with_client_auth_cert` parses the certificate with webpki only to compare its key with the
//!   private key, and webpki refuses version 1; the same comparison is made here with a parser
//!   that reads every version. Keys: RSA (PKCS#1 or PKCS#8), ECDSA (SEC1 or PKCS#8), Ed25519.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::certs::pem;

/// TLS files and options for `mqtts://` (the `--ca`, `--cert`, `--client-key`,
/// `--tls-server-name`, `--insecure` flags).
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// CA certificate(s), PEM, that the broker's certificate must chain to. `None`: the
    /// system's root certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate chain, PEM (mutual TLS); X.509 version 1 or 3.
    pub cert: Option<PathBuf>,
    /// Client private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: Option<PathBuf>,
    /// The name the broker's certificate must carry, when it is not the host of the URL (e.g.
    /// `mosquitto_server` for a broker reached as `127.0.0.1`). The chain is verified as usual.
    pub server_name: Option<String>,
    /// Skip verification of the broker's certificate chain and name. Only when asked for.
    pub insecure: bool,
}

impl TlsSettings {
    /// Whether any TLS option is set.
    #[must_use]
    pub fn any(&self) -> bool {
        self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.server_name.is_some()
            || self.insecure
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Every certificate in a PEM file (at least one).
///
/// # Errors
/// Unreadable file, bad PEM, or no certificate (the message names the file).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certs = pem::certs(&pem).with_context(|| format!("{}: invalid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no CERTIFICATE found", path.display());
    }
    Ok(certs)
}

/// The first private key in a PEM file.
///
/// # Errors
/// Unreadable file, bad PEM, or no private key (the message names the file).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(path)?;
    pem::private_key(&pem)
        .with_context(|| format!("{}: invalid PEM", path.display()))?
        .with_context(|| format!("{}: no PRIVATE KEY found", path.display()))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in load_certs(path)? {
                store
                    .add(cert)
                    .with_context(|| format!("{}: unusable CA certificate", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                bail!("no system root certificates found; pass --ca FILE (the broker's CA)");
            }
        }
    }
    Ok(store)
}

/// Builds the rustls client config for `tls` (ring provider, TLS 1.2 and 1.3).
///
/// # Errors
/// Unreadable or invalid PEM (naming the file and flag), `--cert` without `--client-key` or the
/// other way round, a key that does not match the certificate, or a `--tls-server-name` that is
/// not a host name or IP address.
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig> {
    let provider = provider();
    let verifier = BrokerVerifier::new(tls, &provider)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("rustls: no usable protocol version")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match (&tls.cert, &tls.key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => bail!("--cert needs --client-key (the client certificate's key)"),
        (None, Some(_)) => bail!("--client-key needs --cert (the client certificate)"),
        (Some(cert), Some(key)) => {
            let certified = client_cert(cert, key, &provider)?;
            Ok(builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))))
        }
    }
}

/// The client certificate chain and its key, checked to belong together.
fn client_cert(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let chain = load_certs(cert).context("--cert")?;
    let key_der = load_key(key).context("--client-key")?;
    let unusable = || {
        format!(
            "--cert {} / --client-key {}: unusable client certificate or key",
            cert.display(),
            key.display()
        )
    };
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|_| {
            anyhow::anyhow!("the key is not an RSA, ECDSA (P-256/P-384) or Ed25519 private key")
        })
        .with_context(unusable)?;
    let (_, leaf) = X509Certificate::from_der(&chain[0])
        .map_err(|_| anyhow::anyhow!("the first certificate is not a readable X.509 certificate"))
        .with_context(unusable)?;
    if !crate::certs::check::key_matches(signing.as_ref(), &leaf) {
        return Err(anyhow::anyhow!(
            "the key does not belong to the certificate"
        ))
        .with_context(unusable);
    }
    Ok(CertifiedKey::new(chain, signing))
}

/// Verifies the broker: webpki chain and name checks under `name` (else the URL's host), or
/// nothing but handshake signatures with `--insecure` (the connection is then encrypted to
/// whoever holds the certificate's key).
#[derive(Debug)]
struct BrokerVerifier {
    /// `None`: `--insecure`.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// `--tls-server-name`.
    name: Option<ServerName<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl BrokerVerifier {
    fn new(tls: &TlsSettings, provider: &Arc<CryptoProvider>) -> Result<Self> {
        let name = match &tls.server_name {
            None => None,
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                anyhow::anyhow!("--tls-server-name {n:?}: not a host name or IP address")
            })?),
        };
        let webpki = if tls.insecure {
            None
        } else {
            let roots = roots(tls.ca.as_deref()).context("--ca")?;
            let v =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .build()
                    .context("--ca: no usable CA certificate")?;
            Some(v)
        };
        Ok(Self {
            webpki,
            name,
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

/// The broker's certificate chains to the CA but is not valid for the name it was checked
/// under.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NameMismatch {
    /// The name checked: the URL's host, or `--tls-server-name`.
    pub expected: String,
    /// Whether `expected` came from `--tls-server-name`.
    pub from_flag: bool,
    /// The certificate's subjectAltName entries as openssl prints them (`DNS:…`,
    /// `IP Address:…`).
    pub names: Vec<String>,
    /// A DNS name of the certificate that `--tls-server-name` accepts.
    pub suggestion: Option<String>,
}

impl NameMismatch {
    fn new(end_entity: &CertificateDer<'_>, expected: String, from_flag: bool) -> Self {
        let names = subject_alt_names(end_entity);
        let suggestion = names.iter().find_map(|n| {
            let dns = n.strip_prefix("DNS:")?;
            matches!(ServerName::try_from(dns), Ok(ServerName::DnsName(_))).then(|| dns.to_owned())
        });
        Self {
            expected,
            from_flag,
            names,
            suggestion,
        }
    }
}

impl fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.from_flag {
            "--tls-server-name "
        } else {
            ""
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
            Some(s) if !self.from_flag => write!(
                f,
                "; to verify it under one of its names, pass --tls-server-name {s} (or set \
                 OTACTL_TLS_SERVER_NAME, or tls-server-name in otactl.toml)"
            ),
            Some(s) => write!(f, "; pass one of them, e.g. --tls-server-name {s}"),
            None => f.write_str("; issue it with the broker's address or a host name"),
        }
    }
}

/// The subjectAltName entries of a certificate, as `openssl x509 -text` prints them.
pub(crate) fn subject_alt_names(der: &[u8]) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;

    /// A CA (PEM file in `dir`) and a leaf it signed for `names`, as DER.
    fn ca_and_leaf(dir: &Path, names: &[&str]) -> (PathBuf, CertificateDer<'static>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        let path = dir.join("ca.crt");
        std::fs::write(&path, ca_cert.pem()).unwrap();
        (path, leaf.der().clone())
    }

    fn check(tls: &TlsSettings, leaf: &CertificateDer<'_>, host: &str) -> Result<(), String> {
        let v = BrokerVerifier::new(tls, &provider()).map_err(|e| format!("{e:#}"))?;
        let host = ServerName::try_from(host.to_owned()).unwrap();
        v.verify_server_cert(leaf, &[], &host, &[], UnixTime::now())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tls_server_name_verifies_a_certificate_that_does_not_name_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf) = ca_and_leaf(dir.path(), &["mosquitto_server", "IP:127.0.0.1"]);
        let mut tls = TlsSettings {
            ca: Some(ca),
            ..TlsSettings::default()
        };
        let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
        for want in [
            "not valid for 127.0.0.1",
            "it names DNS:mosquitto_server, DNS:IP:127.0.0.1",
            "not an IP address entry",
            "--tls-server-name mosquitto_server",
        ] {
            assert!(e.contains(want), "{want:?} missing: {e}");
        }
        tls.server_name = Some("mosquitto_server".into());
        check(&tls, &leaf, "127.0.0.1").unwrap();
        tls.server_name = Some("other.example".into());
        let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
        assert!(
            e.contains("not valid for --tls-server-name other.example")
                && e.contains("e.g. --tls-server-name mosquitto_server"),
            "{e}"
        );
        tls.server_name = Some("IP:127.0.0.1".into());
        let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
        assert!(e.contains("not a host name or IP address"), "{e}");
    }

    #[test]
    fn tls_server_name_never_skips_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (_, leaf) = ca_and_leaf(dir.path(), &["mosquitto_server"]);
        let other = tempfile::tempdir().unwrap();
        let (other_ca, _) = ca_and_leaf(other.path(), &["mosquitto_server"]);
        let tls = TlsSettings {
            ca: Some(other_ca),
            server_name: Some("mosquitto_server".into()),
            ..TlsSettings::default()
        };
        let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
        assert!(e.starts_with("invalid peer certificate"), "{e}");
        assert!(!e.contains("--tls-server-name"), "{e}");
        let insecure = TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        };
        check(&insecure, &leaf, "127.0.0.1").unwrap();
    }

    #[test]
    fn a_certificate_without_names_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf) = ca_and_leaf(dir.path(), &[]);
        let tls = TlsSettings {
            ca: Some(ca),
            ..TlsSettings::default()
        };
        let e = check(&tls, &leaf, "127.0.0.1").unwrap_err();
        assert!(e.contains("no subjectAltName"), "{e}");
    }
}
