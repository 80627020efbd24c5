//! One MQTT connection of the device, as the C agent makes them: a fresh client ID per
//! connection, clean session, keep-alive 60 s, the agent's last will, QoS 1 everywhere, and a
//! network buffer of 5120 bytes for incoming packets.
//!
//! The rumqttc event loop is polled only inside the calls below, so the link is a plain
//! request/response object for the OTA task; every call has a timeout.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::time::{timeout_at, Instant};

use super::config::{OtaConfig, TlsFiles};
use crate::pem;
use crate::protocol::topics::{WILL_PAYLOAD, WILL_TOPIC};
use crate::protocol::DEVICE_NET_BUFFER;

/// How long a connect, subscribe or publish may take.
pub const NET_TIMEOUT: Duration = Duration::from_secs(10);

/// A received PUBLISH.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A connected MQTT session.
pub struct Link {
    client: AsyncClient,
    events: EventLoop,
    inbox: VecDeque<Incoming>,
}

/// Builds the device's rustls client config (ring provider; CA + optional client certificate).
///
/// The broker's chain is verified against the CA, under [`TlsFiles::server_name`] when set
/// (else the host). The client certificate is sent as the file's bytes, so X.509 version 1
/// certificates work (rustls's `with_client_auth_cert` refuses them: it parses the certificate
/// with webpki to compare keys); a key that does not belong to it fails at the broker.
///
/// # Errors
/// Unreadable or invalid PEM files, named in the message.
pub fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = NamedVerifier::new(files, &provider)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match &files.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = pem::certs(&read(cert)?).map_err(|e| format!("{}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate found", cert.display()));
            }
            let key_der = pem::private_key(&read(key)?)
                .map_err(|e| format!("{}: {e}", key.display()))?
                .ok_or_else(|| format!("{}: no private key found", key.display()))?;
            let signing = provider
                .key_provider
                .load_private_key(key_der)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            let certified = SingleCertAndKey::from(CertifiedKey::new(chain, signing));
            Ok(builder.with_client_cert_resolver(Arc::new(certified)))
        }
    }
}

/// webpki's verifier with the name to check fixed (`OTA_DEVICE_TLS_SERVER_NAME`); otherwise
/// exactly webpki's checks.
#[derive(Debug)]
struct NamedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    name: Option<ServerName<'static>>,
}

impl NamedVerifier {
    /// webpki's verifier for the CA in `files`, checking `files.server_name` when set.
    fn new(
        files: &TlsFiles,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, String> {
        let ca = std::fs::read(&files.ca).map_err(|e| format!("{}: {e}", files.ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem::certs(&ca).map_err(|e| format!("{}: {e}", files.ca.display()))? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", files.ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate found", files.ca.display()));
        }
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| format!("{}: {e}", files.ca.display()))?;
        let name = match &files.server_name {
            None => None,
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|_| format!("TLS server name {n:?}: not a host name or IP address"))?,
            ),
        };
        Ok(Self { webpki, name })
    }
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.name.as_ref().unwrap_or(server_name);
        self.webpki
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Why a connection could not be made (or stopped answering).
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// The network, TLS or the broker's CONNACK (rumqttc's error, for callers that sort
    /// permanent failures from transient ones).
    Net(ConnectionError),
    /// Nothing within [`NET_TIMEOUT`].
    TimedOut,
    /// The request queue of the client is closed.
    Closed(String),
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Net(e) => f.write_str(&describe(e)),
            Self::TimedOut => f.write_str("timed out"),
            Self::Closed(e) => f.write_str(e),
        }
    }
}

/// A failed [`Link::connect`]: where to, and why.
#[derive(Debug)]
pub struct ConnectError {
    /// The broker host.
    pub host: String,
    /// The broker port.
    pub port: u16,
    /// What went wrong.
    pub cause: LinkError,
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "connect to {}:{}: {}", self.host, self.port, self.cause)
    }
}

impl std::error::Error for ConnectError {}

impl Link {
    /// Connects as `client_id` and waits for the CONNACK.
    ///
    /// # Errors
    /// Connection, TLS or timeout errors.
    pub async fn connect(
        cfg: &OtaConfig,
        tls: Option<&Arc<rustls::ClientConfig>>,
        client_id: &str,
    ) -> Result<Self, ConnectError> {
        let mut opts = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
        opts.set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true)
            .set_max_packet_size(DEVICE_NET_BUFFER, DEVICE_NET_BUFFER)
            .set_last_will(LastWill::new(
                WILL_TOPIC,
                WILL_PAYLOAD,
                QoS::AtLeastOnce,
                false,
            ));
        if let Some(t) = tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::clone(t),
            )));
        }
        let (client, mut events) = AsyncClient::new(opts, 16);
        // Requests are small: without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms per chunk.
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(NET_TIMEOUT.as_secs());
        events.set_network_options(net);
        let mut link = Self {
            client,
            events,
            inbox: VecDeque::new(),
        };
        link.wait_for(|p| matches!(p, Packet::ConnAck(_)), NET_TIMEOUT)
            .await
            .map_err(|cause| ConnectError {
                host: cfg.host.clone(),
                port: cfg.port,
                cause,
            })?;
        Ok(link)
    }

    async fn poll(&mut self, deadline: Instant) -> Result<Option<Packet>, ConnectionError> {
        loop {
            match timeout_at(deadline, self.events.poll()).await {
                Err(_) => return Ok(None),
                Ok(Ok(Event::Incoming(p))) => return Ok(Some(p)),
                Ok(Ok(Event::Outgoing(_))) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Polls until a packet `want` accepts arrives (returned); PUBLISHes on the way are kept.
    async fn wait_for(
        &mut self,
        want: impl Fn(&Packet) -> bool,
        limit: Duration,
    ) -> Result<Packet, LinkError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.poll(deadline).await.map_err(LinkError::Net)? {
                None => return Err(LinkError::TimedOut),
                Some(p) if want(&p) => return Ok(p),
                Some(Packet::Publish(p)) => self.inbox.push_back(Incoming {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                }),
                Some(_) => {}
            }
        }
    }

    /// Subscribes to `topic` at QoS 1 and waits for the SUBACK; a refused subscription (the
    /// broker's ACL) is an error.
    ///
    /// # Errors
    /// Network errors, timeout or refusal.
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), String> {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
        let ack = self
            .wait_for(|p| matches!(p, Packet::SubAck(_)), NET_TIMEOUT)
            .await
            .map_err(|e| format!("subscribe {topic}: {e}"))?;
        match ack {
            Packet::SubAck(a)
                if a.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
            {
                Err(format!(
                    "subscribe {topic}: the broker refused it (its ACL does not let this \
                     certificate read the topic)"
                ))
            }
            _ => Ok(()),
        }
    }

    /// Unsubscribes from `topic` and waits for the UNSUBACK.
    ///
    /// # Errors
    /// Network errors or timeout.
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), String> {
        self.client
            .unsubscribe(topic)
            .await
            .map_err(|e| e.to_string())?;
        self.wait_for(|p| matches!(p, Packet::UnsubAck(_)), NET_TIMEOUT)
            .await
            .map(drop)
            .map_err(|e| format!("unsubscribe {topic}: {e}"))
    }

    /// Publishes at QoS 1 (retain off) and waits for the PUBACK.
    ///
    /// # Errors
    /// Network errors or timeout.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), String> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .map_err(|e| e.to_string())?;
        self.wait_for(|p| matches!(p, Packet::PubAck(_)), NET_TIMEOUT)
            .await
            .map(drop)
            .map_err(|e| format!("publish {topic}: {e}"))
    }

    /// The next received PUBLISH, or `None` when `limit` passes first.
    ///
    /// # Errors
    /// The connection dropped.
    pub async fn recv(&mut self, limit: Duration) -> Result<Option<Incoming>, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some(m));
            }
            match self.poll(deadline).await.map_err(|e| describe(&e))? {
                None => return Ok(None),
                Some(Packet::Publish(p)) => {
                    return Ok(Some(Incoming {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    }))
                }
                Some(_) => {}
            }
        }
    }

    /// Sends DISCONNECT and lets the event loop flush it (bounded).
    pub async fn disconnect(mut self) {
        if self.client.disconnect().await.is_ok() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Ok(Some(_)) = self.poll(deadline).await {}
        }
    }
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!("broker refused: {code:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// Infineon's generate_ssl_cert.sh material made with openssl in `dir`: an RSA CA, a broker
    /// certificate naming `DNS:mosquitto_server` and `DNS:IP:127.0.0.1`, and an X.509 v1 client
    /// certificate. `false` (skip) without openssl, unless CI requires every tool.
    fn infineon_certs(dir: &Path) -> bool {
        let ok = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ok(&["version"]) {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "openssl is required (CI=true)"
            );
            return false;
        }
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=DNS:mosquitto_server,DNS:IP:127.0.0.1\n",
        )
        .unwrap();
        assert!(ok(&["genrsa", "-out", "ca.key", "2048"]));
        assert!(ok(&[
            "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-subj", "/CN=myCA", "-out",
            "ca.crt"
        ]));
        for (who, ext) in [("server", true), ("client", false)] {
            let (key, csr, crt) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.crt"),
            );
            assert!(ok(&["genrsa", "-out", &key, "2048"]));
            assert!(ok(&[
                "req", "-new", "-key", &key, "-out", &csr, "-subj", "/CN=x"
            ]));
            let mut sign = vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "3650",
            ];
            if ext {
                sign.extend(["-extfile", "ext"]);
            }
            assert!(ok(&sign));
        }
        true
    }

    #[test]
    fn infineon_v1_client_certificate_and_tls_server_name() {
        let dir = tempfile::tempdir().unwrap();
        if !infineon_certs(dir.path()) {
            return;
        }
        let p = |n: &str| dir.path().join(n);
        let mut files = TlsFiles {
            ca: p("ca.crt"),
            client: Some((p("client.crt"), p("client.key"))),
            server_name: None,
        };
        let c = tls_config(&files).unwrap();
        assert!(c.client_auth_cert_resolver.has_certs());
        let pem = std::fs::read(p("server.crt")).unwrap();
        let server = pem::first_cert(&pem).unwrap().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = |files: &TlsFiles| {
            let host = ServerName::try_from("127.0.0.1").unwrap();
            NamedVerifier::new(files, &provider)
                .unwrap()
                .verify_server_cert(&server, &[], &host, &[], UnixTime::now())
                .map(drop)
        };
        assert!(check(&files).is_err(), "no IP address entry for 127.0.0.1");
        files.server_name = Some("mosquitto_server".into());
        check(&files).unwrap();
        files.server_name = Some("IP:127.0.0.1".into());
        assert!(tls_config(&files).unwrap_err().contains("not a host name"));
    }
}
