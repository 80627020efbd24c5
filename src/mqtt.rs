//! The one place that turns a broker URL and TLS files into rumqttc options.
//!
//! - [`BrokerUrl`]: `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883); HOST is an IPv4
//!   address, a bracketed IPv6 address or a DNS name.
//! - [`TlsSettings`] → [`client_config`]: a rustls [`ClientConfig`] with the ring provider. The
//!   broker is verified against `--ca` (or the system roots when no CA is given) and the name in
//!   the URL: an IP address must appear as an IP SAN, a name as a DNS SAN. `--insecure` is the
//!   only way to skip that check, and even then the handshake signatures are verified.
//! - [`options_v4`] / [`options_v5`]: rumqttc options with the TLS transport set for `mqtts://`.
//! - [`network_options`] / [`client_v4`]: TCP_NODELAY on the client socket (set by
//!   [`options_v5`]; for MQTT 3.1.1 rumqttc keeps it on the event loop, so use [`client_v4`]).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use otactl::mqtt::{self, BrokerUrl, TlsSettings};
//! let url: BrokerUrl = "mqtts://192.168.0.10:8884".parse()?;
//! let tls = TlsSettings {
//!     ca: Some("certs/ca.crt".into()),
//!     cert: Some("certs/publisher.crt".into()),
//!     key: Some("certs/publisher.key".into()),
//!     insecure: false,
//! };
//! let (client, eventloop) = mqtt::client_v4(mqtt::options_v4(&url, "otactl-1", &tls)?, 64);
//! # let _ = (client, eventloop);
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rumqttc::{TlsConfiguration, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// A parsed broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`: TLS.
    pub tls: bool,
    /// Host without brackets: an IP address or a DNS name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a broker URL was rejected; the message quotes the URL.
#[derive(Debug, thiserror::Error)]
#[error("{url:?}: {reason}")]
pub struct UrlError {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl BrokerUrl {
    /// Parses `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (a trailing `/` is allowed).
    ///
    /// # Errors
    /// A [`UrlError`] quoting `s`: unknown scheme, missing host, bad port, path, credentials.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let err = |reason: &str| UrlError {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        let (tls, rest) = match s.split_once("://") {
            Some(("mqtt", r)) => (false, r),
            Some(("mqtts", r)) => (true, r),
            Some((scheme, _)) => {
                return Err(err(&format!(
                    "unsupported scheme {scheme:?}: use mqtt:// or mqtts://"
                )))
            }
            None => return Err(err("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err(
                "only HOST[:PORT] may follow the scheme (no path, query or user)",
            ));
        }
        let (host, port) = split_host_port(rest).map_err(|r| err(&r))?;
        let port = match port {
            None => default_port(tls),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(err(&format!("bad port {p:?} (expected 1-65535)"))),
            },
        };
        check_host(host).map_err(|r| err(&r))?;
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
        })
    }

    /// The host as an IP address, when it is one.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

fn default_port(tls: bool) -> u16 {
    if tls {
        MQTTS_PORT
    } else {
        MQTT_PORT
    }
}

/// Splits `HOST[:PORT]` / `[V6][:PORT]`; the host comes back without brackets.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("IPv6 address without closing ']'")?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            a => match a.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err("expected :PORT after ']'".into()),
            },
        };
    }
    if rest.matches(':').count() > 1 {
        return Err("write an IPv6 address in brackets: mqtt://[::1]:1883".into());
    }
    Ok(match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    })
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{host:?} is not an IP address or host name"));
    }
    Ok(())
}

impl FromStr for BrokerUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::parse(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// TLS files and options for `mqtts://` (the `--ca`, `--cert`, `--client-key`, `--insecure`
/// flags).
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// CA certificate(s), PEM, that the broker's certificate must chain to. `None`: the
    /// system's root certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate chain, PEM (mutual TLS).
    pub cert: Option<PathBuf>,
    /// Client private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: Option<PathBuf>,
    /// Skip verification of the broker's certificate chain and name. Only when asked for.
    pub insecure: bool,
}

impl TlsSettings {
    /// Whether any TLS option is set.
    #[must_use]
    pub fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure
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
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: invalid PEM", path.display()))?;
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
    rustls_pemfile::private_key(&mut pem.as_slice())
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
/// other way round, or a key that does not match the certificate.
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("rustls: no usable protocol version")?;
    let builder = if tls.insecure {
        let verifier = NoServerVerification {
            algorithms: provider.signature_verification_algorithms,
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        builder.with_root_certificates(roots(tls.ca.as_deref()).context("--ca")?)
    };
    match (&tls.cert, &tls.key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => bail!("--cert needs --client-key (the client certificate's key)"),
        (None, Some(_)) => bail!("--client-key needs --cert (the client certificate)"),
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert).context("--cert")?;
            let key_der = load_key(key).context("--client-key")?;
            builder
                .with_client_auth_cert(chain, key_der)
                .with_context(|| {
                    format!(
                        "--cert {} / --client-key {}: unusable client certificate or key",
                        cert.display(),
                        key.display()
                    )
                })
        }
    }
}

/// `--insecure`: accepts any server certificate chain and name, but still checks that the
/// server owns the certificate's key (handshake signatures), so the connection is encrypted to
/// whoever holds that key.
#[derive(Debug)]
struct NoServerVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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

/// The TLS transport for `url`, or `None` for `mqtt://`.
///
/// # Errors
/// TLS options given for an `mqtt://` URL, or [`client_config`] errors.
pub fn transport(url: &BrokerUrl, tls: &TlsSettings) -> Result<Option<Transport>> {
    if !url.tls {
        if tls.any() {
            bail!("{url}: --ca/--cert/--client-key/--insecure need an mqtts:// broker URL");
        }
        return Ok(None);
    }
    if tls.insecure {
        log::warn!("--insecure: the broker's certificate is NOT verified");
    }
    let config = client_config(tls)?;
    Ok(Some(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(config),
    ))))
}

/// MQTT 3.1.1 options for `url` (rumqttc defaults otherwise). For TLS, rumqttc takes the server
/// name from the host: an IP address is checked against the certificate's IP SANs.
///
/// # Errors
/// See [`transport`].
pub fn options_v4(
    url: &BrokerUrl,
    client_id: &str,
    tls: &TlsSettings,
) -> Result<rumqttc::MqttOptions> {
    // An IPv6 host goes in unbracketed: rumqttc's "host:port" still resolves (getaddrinfo
    // splits at the last ':') and the TLS server name parses as an IP address.
    let mut o = rumqttc::MqttOptions::new(client_id, url.host.clone(), url.port);
    if let Some(t) = transport(url, tls)? {
        o.set_transport(t);
    }
    Ok(o)
}

/// MQTT 5 options for `url`, with [`network_options`] (TCP_NODELAY) already set; see
/// [`options_v4`].
///
/// # Errors
/// See [`transport`].
pub fn options_v5(
    url: &BrokerUrl,
    client_id: &str,
    tls: &TlsSettings,
) -> Result<rumqttc::v5::MqttOptions> {
    let mut o = rumqttc::v5::MqttOptions::new(client_id, url.host.clone(), url.port);
    if let Some(t) = transport(url, tls)? {
        o.set_transport(t);
    }
    o.set_network_options(network_options());
    Ok(o)
}

/// Socket options for every client socket: TCP_NODELAY on (with Nagle's algorithm each
/// request/chunk round trip stalls about 40 ms on delayed ACKs), rumqttc's 5 s connect timeout.
///
/// MQTT 5 options from [`options_v5`] carry them already. For MQTT 3.1.1 rumqttc keeps them on
/// the event loop, not in the options: use [`client_v4`], or call
/// `eventloop.set_network_options(mqtt::network_options())` yourself.
#[must_use]
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

/// An MQTT 3.1.1 client and event loop for `options` (from [`options_v4`]) with
/// [`network_options`] set; `cap` is the request channel capacity.
#[must_use]
pub fn client_v4(
    options: rumqttc::MqttOptions,
    cap: usize,
) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let (client, mut events) = rumqttc::AsyncClient::new(options, cap);
    events.set_network_options(network_options());
    (client, events)
}

#[cfg(test)]
#[path = "mqtt_tests.rs"]
mod tests;
