//! `--embedded-broker`: an in-process MQTT broker (rumqttd) so a laptop needs no mosquitto.
//! Plain TCP, MQTT 3.1.1, anonymous; for development only.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// The embedded broker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedBrokerError {
    /// Its address cannot be bound.
    #[error("embedded broker on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Its thread cannot be started.
    #[error("cannot start the embedded broker's thread")]
    Thread(#[source] std::io::Error),
}

/// Starts the broker on `addr` in a background thread (it lives as long as the process).
///
/// # Errors
/// The address cannot be bound.
pub fn start(addr: SocketAddr) -> Result<(), EmbeddedBrokerError> {
    // Fail early and clearly if the port is taken (rumqttd would only log it).
    drop(
        std::net::TcpListener::bind(addr)
            .map_err(|source| EmbeddedBrokerError::Bind { addr, source })?,
    );
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "otactl-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 500,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                log::error!("embedded broker stopped: {e}");
            }
        })
        .map_err(EmbeddedBrokerError::Thread)?;
    Ok(())
}
