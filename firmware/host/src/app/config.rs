//! The device application's configuration.
//!
//! On a real board these are compile-time macros (`ota_app_config.h`: broker, port, certificates,
//! topic prefix, board string). The simulated board hands them to the application as environment
//! variables, which the board sets from its own command line:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `OTA_DEVICE_FLASH` | the board's flash file | (required) |
//! | `OTA_DEVICE_FLASHMAP` | the board's flash map (Infineon JSON) | (required) |
//! | `OTA_DEVICE_PUBKEY` | the bootloader's public key (PEM); downloads are verified with it | (required) |
//! | `OTA_DEVICE_BROKER` | `mqtt://host:port` or `mqtts://host:port` | `mqtt://127.0.0.1:1883` |
//! | `OTA_DEVICE_CA` | CA certificate (PEM) that signed the broker's certificate | (required for mqtts) |
//! | `OTA_DEVICE_CERT`, `OTA_DEVICE_KEY` | the device's client certificate and key (PEM; X.509 v1 or v3, RSA or ECDSA key) | none (no client auth) |
//! | `OTA_DEVICE_TLS_SERVER_NAME` | the name the broker's certificate must carry when it does not name the broker's host (e.g. `mosquitto_server`) | the host |
//! | `OTA_DEVICE_PREFIX` | `COMPANY_TOPIC_PREPEND` | `MyUniqueTopic` |
//! | `OTA_DEVICE_BOARD` | `CY_TARGET_BOARD_STRING` | `APP_CY8CPROTO_062S2_43439` |
//! | `OTA_DEVICE_SERIAL` | the `SerialNumber` of the request templates (`otactl cert-to-c --header`) | `ABC213450001` (the example's template) |
//! | `OTA_DEVICE_CHECK_SECS` | seconds before the first and between update checks | `10` (the example's) |
//! | `OTA_DEVICE_FLOW` | `push` ("Request Update", the publisher sends every chunk: the example's `CY_MQTT_GET_ALL_DATA_WITH_ONE_CALL`) or `chunks` ("Request Data Chunk" per chunk: the agent's chunk flow) | `push` |

use std::path::PathBuf;
use std::time::Duration;

use ota_core::agent::Delivery;
use ota_core::protocol::topics::PREFIX_APP;
use ota_core::protocol::TEMPLATE_SERIAL;
use ota_tls::{ClientTls, NameAdvice, Roots};

/// The board string of the example's default kit.
pub const DEFAULT_BOARD: &str = "APP_CY8CPROTO_062S2_43439";

/// The simulated board's device application: its flash, the bootloader's key, and the OTA task.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The flash file the board runs on.
    pub flash: PathBuf,
    /// The board's flash map.
    pub flashmap: PathBuf,
    /// The bootloader's trusted public key (the agent verifies downloads with it).
    pub pubkey: PathBuf,
    /// TLS material, when the broker URL is `mqtts://`.
    pub tls: Option<TlsFiles>,
    /// Where and how the OTA task connects.
    pub ota: OtaConfig,
}

/// Where and how the OTA task connects, and who it says it is (the example's
/// `ota_app_config.h` and `cy_ota_config.h` settings).
#[derive(Clone, Debug)]
pub struct OtaConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS (`mqtts://`): the driver is given the client configuration.
    pub tls: bool,
    /// Topic prefix (`COMPANY_TOPIC_PREPEND`).
    pub prefix: String,
    /// Board string (`CY_TARGET_BOARD_STRING`).
    pub board: String,
    /// `SerialNumber` in the device's requests.
    pub serial: String,
    /// First check after start, and the interval between checks.
    pub check_interval: Duration,
    /// How the download asks for data (`OTA_DEVICE_FLOW`).
    pub flow: Delivery,
}

/// A device configuration that cannot be used; each names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceConfigError {
    /// `OTA_DEVICE_FLOW` is neither `push` nor `chunks`.
    #[error("OTA_DEVICE_FLOW={0:?}: expected push or chunks")]
    Flow(String),
    /// A variable the board always sets is missing.
    #[error("{0} is not set (the board sets it)")]
    Missing(&'static str),
    /// `OTA_DEVICE_BROKER` without a scheme the device speaks.
    #[error("broker {0:?}: expected mqtt://host:port or mqtts://host:port")]
    BrokerScheme(String),
    /// `OTA_DEVICE_BROKER` without `host:port`.
    #[error("broker {0:?}: expected host:port")]
    BrokerAddress(String),
    /// The broker URL, named by its variable.
    #[error("OTA_DEVICE_BROKER")]
    Broker(#[source] Box<DeviceConfigError>),
    /// One of the client certificate and key without the other.
    #[error("OTA_DEVICE_CERT and OTA_DEVICE_KEY go together")]
    HalfClientPair,
    /// `OTA_DEVICE_CHECK_SECS` is not a number of seconds.
    #[error("OTA_DEVICE_CHECK_SECS={0:?}: expected seconds")]
    CheckSecs(String),
}

/// Parses `OTA_DEVICE_FLOW` (`push` or `chunks`).
///
/// # Errors
/// A message quoting the value and naming the accepted ones.
pub fn parse_flow(s: &str) -> Result<Delivery, DeviceConfigError> {
    match s {
        "push" => Ok(Delivery::Push),
        "chunks" => Ok(Delivery::Pull),
        _ => Err(DeviceConfigError::Flow(s.to_owned())),
    }
}

/// PEM files for mutual TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate(s) the broker's certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate and key (both or neither).
    pub client: Option<(PathBuf, PathBuf)>,
    /// Verify the broker's certificate for this name instead of the broker's host.
    pub server_name: Option<String>,
}

impl TlsFiles {
    /// The shared TLS client builder for these files: the broker is verified against the CA
    /// (under [`TlsFiles::server_name`] when set, else the host), the client certificate is
    /// sent as the file's bytes (X.509 version 1 works) after its key is checked to belong to
    /// it. A wrong name is explained with the board's `--tls-server-name` flag.
    #[must_use]
    pub fn client_tls(&self) -> ClientTls {
        let mut tls = ClientTls::new(Roots::File(self.ca.clone())).name_advice(NameAdvice {
            setting: "--tls-server-name".into(),
            elsewhere: "OTA_DEVICE_TLS_SERVER_NAME for the device application".into(),
        });
        if let Some((cert, key)) = &self.client {
            tls = tls.client_auth(cert, key);
        }
        if let Some(name) = &self.server_name {
            tls = tls.server_name(name);
        }
        tls
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &'static str) -> Result<String, DeviceConfigError> {
    var(name).ok_or(DeviceConfigError::Missing(name))
}

/// Splits `mqtt://host:port` / `mqtts://host:port` into (tls, host, port).
///
/// # Errors
/// A message quoting the URL.
pub fn parse_broker(url: &str) -> Result<(bool, String, u16), DeviceConfigError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(DeviceConfigError::BrokerScheme(url.to_owned()));
    };
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| DeviceConfigError::BrokerAddress(url.to_owned()))?;
    Ok((tls, host, port))
}

impl DeviceConfig {
    /// Reads the configuration from the environment.
    ///
    /// # Errors
    /// A message naming the variable that is missing or malformed.
    pub fn from_env() -> Result<Self, DeviceConfigError> {
        let broker = var("OTA_DEVICE_BROKER").unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
        let (tls, host, port) =
            parse_broker(&broker).map_err(|e| DeviceConfigError::Broker(Box::new(e)))?;
        let tls = if tls {
            let client = match (var("OTA_DEVICE_CERT"), var("OTA_DEVICE_KEY")) {
                (Some(c), Some(k)) => Some((c.into(), k.into())),
                (None, None) => None,
                _ => return Err(DeviceConfigError::HalfClientPair),
            };
            Some(TlsFiles {
                ca: required("OTA_DEVICE_CA")?.into(),
                client,
                server_name: var("OTA_DEVICE_TLS_SERVER_NAME"),
            })
        } else {
            None
        };
        let secs = match var("OTA_DEVICE_CHECK_SECS") {
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && *v < 1e6)
                .ok_or(DeviceConfigError::CheckSecs(s))?,
            None => 10.0,
        };
        Ok(Self {
            flash: required("OTA_DEVICE_FLASH")?.into(),
            flashmap: required("OTA_DEVICE_FLASHMAP")?.into(),
            pubkey: required("OTA_DEVICE_PUBKEY")?.into(),
            ota: OtaConfig {
                host,
                port,
                tls: tls.is_some(),
                prefix: var("OTA_DEVICE_PREFIX").unwrap_or_else(|| PREFIX_APP.into()),
                board: var("OTA_DEVICE_BOARD").unwrap_or_else(|| DEFAULT_BOARD.into()),
                serial: var("OTA_DEVICE_SERIAL").unwrap_or_else(|| TEMPLATE_SERIAL.into()),
                check_interval: Duration::from_secs_f64(secs),
                flow: var("OTA_DEVICE_FLOW").map_or(Ok(Delivery::Push), |f| parse_flow(&f))?,
            },
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_broker, parse_flow};
    use ota_core::agent::Delivery;

    #[test]
    fn flows() {
        assert_eq!(parse_flow("push"), Ok(Delivery::Push));
        assert_eq!(parse_flow("chunks"), Ok(Delivery::Pull));
        let e = parse_flow("pull").unwrap_err().to_string();
        assert!(
            e.contains("OTA_DEVICE_FLOW") && e.contains("push or chunks"),
            "{e}"
        );
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtts://127.0.0.1:8884"),
            Ok((true, "127.0.0.1".into(), 8884))
        );
        assert_eq!(
            parse_broker("mqtt://localhost:1883"),
            Ok((false, "localhost".into(), 1883))
        );
        assert!(parse_broker("tcp://x:1").is_err());
        assert!(parse_broker("mqtt://x").is_err());
        assert!(parse_broker("mqtt://:1883").is_err());
    }
}
