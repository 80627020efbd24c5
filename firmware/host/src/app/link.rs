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
use tokio::time::{timeout_at, Instant};

use super::config::OtaConfig;
use ota_core::protocol::topics::{WILL_PAYLOAD, WILL_TOPIC};
use ota_core::protocol::DEVICE_NET_BUFFER;

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
    /// The client refused a request (its queue is closed or full).
    Client(rumqttc::ClientError),
    /// A subscribe, unsubscribe or publish that did not complete.
    On {
        /// "subscribe", "unsubscribe" or "publish".
        what: &'static str,
        /// Its topic.
        topic: String,
        /// Why.
        cause: Box<LinkError>,
    },
    /// The broker refused a subscription (its ACL).
    Refused {
        /// The topic.
        topic: String,
    },
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Net(e) => f.write_str(&describe(e)),
            Self::TimedOut => f.write_str("timed out"),
            Self::Closed(e) => f.write_str(e),
            Self::Client(e) => write!(f, "{e}"),
            Self::On { what, topic, cause } => write!(f, "{what} {topic}: {cause}"),
            Self::Refused { topic } => write!(
                f,
                "subscribe {topic}: the broker refused it (its ACL does not let this \
                 certificate read the topic)"
            ),
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
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), LinkError> {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .map_err(LinkError::Client)?;
        let ack = self
            .wait_for(|p| matches!(p, Packet::SubAck(_)), NET_TIMEOUT)
            .await
            .map_err(on("subscribe", topic))?;
        match ack {
            Packet::SubAck(a)
                if a.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
            {
                Err(LinkError::Refused {
                    topic: topic.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Unsubscribes from `topic` and waits for the UNSUBACK.
    ///
    /// # Errors
    /// Network errors or timeout.
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), LinkError> {
        self.client
            .unsubscribe(topic)
            .await
            .map_err(LinkError::Client)?;
        self.wait_for(|p| matches!(p, Packet::UnsubAck(_)), NET_TIMEOUT)
            .await
            .map(drop)
            .map_err(on("unsubscribe", topic))
    }

    /// Publishes at QoS 1 (retain off) and waits for the PUBACK.
    ///
    /// # Errors
    /// Network errors or timeout.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), LinkError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .map_err(LinkError::Client)?;
        self.wait_for(|p| matches!(p, Packet::PubAck(_)), NET_TIMEOUT)
            .await
            .map(drop)
            .map_err(on("publish", topic))
    }

    /// The next received PUBLISH, or `None` when `limit` passes first.
    ///
    /// # Errors
    /// The connection dropped.
    pub async fn recv(&mut self, limit: Duration) -> Result<Option<Incoming>, LinkError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some(m));
            }
            match self.poll(deadline).await.map_err(LinkError::Net)? {
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

/// `cause` of a request on `topic`.
fn on(what: &'static str, topic: &str) -> impl FnOnce(LinkError) -> LinkError {
    let topic = topic.to_owned();
    move |cause| LinkError::On {
        what,
        topic,
        cause: Box::new(cause),
    }
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!("broker refused: {code:?}"),
        other => other.to_string(),
    }
}
