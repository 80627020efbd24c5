//! The one place that turns a broker URL and TLS files into rumqttc options.
//!
//! - [`BrokerUrl`]: `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883); HOST is an IPv4
//!   address, a bracketed IPv6 address or a DNS name.
//! - [`TlsSettings`] → [`client_config`]: a rustls [`ClientConfig`](rustls::ClientConfig) with
//!   the ring provider. The broker is verified against `--ca` (or the system roots when no CA is
//!   given) and the name in the URL (an IP address must appear as an IP SAN, a name as a DNS
//!   SAN), or `--tls-server-name` when the certificate does not name the address. `--insecure` is
//!   the only way to skip that check, and even then the handshake signatures are verified.
//!   Client certificates may be X.509 version 1 (see the `tls` submodule).
//! - [`options_v4`] / [`options_v5`]: rumqttc options with the TLS transport set for `mqtts://`;
//!   [`tls_for`]: the client configuration alone (the stand-in device's own MQTT link takes it).
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
//!     server_name: None,
//!     insecure: false,
//! };
//! let (client, eventloop) = mqtt::client_v4(mqtt::options_v4(&url, "otactl-1", &tls)?, 64);
//! # let _ = (client, eventloop);
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

/// Why MQTT client options could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MqttOptionsError {
    /// TLS flags with a plain `mqtt://` URL.
    #[error(
        "{0}: --ca/--cert/--client-key/--tls-server-name/--insecure need an mqtts:// broker URL"
    )]
    TlsWithoutMqtts(String),
    /// The TLS flags.
    #[error(transparent)]
    Tls(#[from] tls::TlsFlagError),
}

type Result<T, E = MqttOptionsError> = std::result::Result<T, E>;
use rumqttc::{TlsConfiguration, Transport};

pub(crate) mod tls;
pub use tls::{client_config, load_certs, load_key, NameMismatch, TlsFlagError, TlsSettings};

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

/// The TLS transport for `url`, or `None` for `mqtt://`.
///
/// # Errors
/// See [`tls_for`].
pub fn transport(url: &BrokerUrl, tls: &TlsSettings) -> Result<Option<Transport>> {
    Ok(tls_for(url, tls)?
        .map(|config| Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config)))))
}

/// The rustls client configuration for `url`, or `None` for `mqtt://`.
///
/// # Errors
/// TLS options given for an `mqtt://` URL, or [`client_config`] errors.
pub fn tls_for(url: &BrokerUrl, tls: &TlsSettings) -> Result<Option<rustls::ClientConfig>> {
    if !url.tls {
        if tls.any() {
            return Err(MqttOptionsError::TlsWithoutMqtts(url.to_string()));
        }
        return Ok(None);
    }
    if tls.insecure {
        log::warn!("--insecure: the broker's certificate is NOT verified");
        if tls.server_name.is_some() {
            log::warn!("--tls-server-name has no effect with --insecure");
        }
    }
    // AWS IoT Core serves MQTT with X.509 client certificates on 443 only to clients that ask
    // for this ALPN protocol.
    let alpn = if url.port == 443 {
        vec![crate::aws::ALPN_MQTT_443.as_bytes().to_vec()]
    } else {
        Vec::new()
    };
    Ok(Some(tls::client_config_alpn(tls, alpn)?))
}

/// MQTT 3.1.1 options for `url` (rumqttc defaults otherwise). For TLS, the broker's certificate
/// is checked for the host (an IP address against its IP SANs), or for
/// [`TlsSettings::server_name`] when set.
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
mod tests;
