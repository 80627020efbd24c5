//! otactl's TLS flags (`--ca`, `--cert`, `--client-key`, `--tls-server-name`, `--insecure`) and
//! their wording; the client config itself comes from the builder otactl shares with the device
//! application, [`ota_tls::ClientTls`] (see there for what is verified, X.509 version 1
//! client certificates and the keys that work).
//!
//! - Without `--ca` the broker is verified against the system's root certificates.
//! - When the chain is good and only the name is wrong, the error lists the names the
//!   certificate carries and suggests `--tls-server-name` ([`NameMismatch`]).
//! - Errors name the flag and the file: `--ca: cannot read ca.crt: …`.

use std::path::PathBuf;

use ota_tls::{ClientAuthError, ClientTls, FileError, NameAdvice, Roots, TlsError};
use rustls::ClientConfig;

/// What is wrong with the TLS flags, in otactl's words: the flag first, then the file and what
/// is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsFlagError {
    /// `--tls-server-name` is neither a host name nor an IP address.
    #[error("--tls-server-name {0:?}: not a host name or IP address")]
    ServerName(String),
    /// `--cert` without `--client-key`.
    #[error("--cert needs --client-key (the client certificate's key)")]
    CertWithoutKey,
    /// `--client-key` without `--cert`.
    #[error("--client-key needs --cert (the client certificate)")]
    KeyWithoutCert,
    /// The CA file.
    #[error("--ca")]
    Ca(#[source] FileError),
    /// No `--ca` and no system roots.
    #[error("--ca: no system root certificates found; pass --ca FILE (the broker's CA)")]
    NoSystemRoots,
    /// The CA certificates cannot verify anything.
    #[error("--ca")]
    Verifier(#[source] TlsError),
    /// The client certificate file.
    #[error("--cert")]
    Cert(#[source] FileError),
    /// The client key file.
    #[error("--client-key")]
    Key(#[source] FileError),
    /// A client certificate and key that do not work together.
    #[error("--cert {} / --client-key {}: unusable client certificate or key", cert.display(), key.display())]
    ClientAuth {
        /// `--cert`.
        cert: PathBuf,
        /// `--client-key`.
        key: PathBuf,
        /// Why.
        #[source]
        source: ClientAuthError,
    },
    /// rustls has no protocol version in common with the provider.
    #[error("rustls: no usable protocol version")]
    Versions(#[source] rustls::Error),
    /// Anything else the builder reports.
    #[error(transparent)]
    Other(TlsError),
}

type Result<T, E = TlsFlagError> = std::result::Result<T, E>;

pub use ota_tls::{load_certs, load_key, subject_alt_names, NameMismatch};

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

/// Builds the rustls client config for `tls` (ring provider, TLS 1.2 and 1.3).
///
/// # Errors
/// Unreadable or invalid PEM (naming the file and flag), `--cert` without `--client-key` or the
/// other way round, a key that does not match the certificate, or a `--tls-server-name` that is
/// not a host name or IP address.
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig> {
    client_config_alpn(tls, Vec::new())
}

/// [`client_config`] offering the ALPN protocols `alpn`.
pub(crate) fn client_config_alpn(tls: &TlsSettings, alpn: Vec<Vec<u8>>) -> Result<ClientConfig> {
    builder(tls)?.alpn(alpn).build().map_err(explain)
}

/// The shared builder for the flags.
fn builder(tls: &TlsSettings) -> Result<ClientTls> {
    let roots = tls.ca.clone().map_or(Roots::System, Roots::File);
    let mut b = ClientTls::new(roots)
        .insecure(tls.insecure)
        .name_advice(NameAdvice {
            setting: "--tls-server-name".into(),
            elsewhere: "OTACTL_TLS_SERVER_NAME, or tls-server-name in otactl.toml".into(),
        });
    if let Some(name) = &tls.server_name {
        b = b.server_name(name);
    }
    match (&tls.cert, &tls.key) {
        (None, None) => Ok(b),
        (Some(_), None) => Err(TlsFlagError::CertWithoutKey),
        (None, Some(_)) => Err(TlsFlagError::KeyWithoutCert),
        (Some(cert), Some(key)) => Ok(b.client_auth(cert, key)),
    }
}

/// `e` in otactl's words: the flag first, then the file and what is wrong with it.
fn explain(e: TlsError) -> TlsFlagError {
    match e {
        TlsError::ServerName { name } => TlsFlagError::ServerName(name),
        TlsError::Ca(file) => TlsFlagError::Ca(file),
        TlsError::NoSystemRoots => TlsFlagError::NoSystemRoots,
        e @ TlsError::Verifier(_) => TlsFlagError::Verifier(e),
        TlsError::Cert(file) => TlsFlagError::Cert(file),
        TlsError::Key(file) => TlsFlagError::Key(file),
        TlsError::ClientAuth { cert, key, source } => {
            TlsFlagError::ClientAuth { cert, key, source }
        }
        TlsError::Versions(source) => TlsFlagError::Versions(source),
        other => TlsFlagError::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

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
        let v = builder(tls)
            .and_then(|b| b.verifier().map_err(explain))
            .map_err(|e| ota_tls::error_chain(&e))?;
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
