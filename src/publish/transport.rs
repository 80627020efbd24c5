//! One MQTT connection over rumqttc, as MQTT 3.1.1 or 5 (5 is needed for shared
//! subscriptions), behind one small interface.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    Packet as Packet5, PubAckReason, SubscribeReasonCode as SubscribeReasonCode5,
};
use rumqttc::v5::mqttbytes::QoS as QoS5;

/// Connection options for the publisher's single MQTT connection, as built by
/// [`crate::mqtt`] (broker URL, TLS, credentials). The publisher adds its own tuning (keep alive,
/// clean session, in-flight window, packet sizes, `TCP_NODELAY`) in [`connect`].
#[derive(Clone)]
pub enum ClientOptions {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::MqttOptions>),
    /// MQTT 5 (required for `--share-group`).
    V5(Box<rumqttc::v5::MqttOptions>),
}

impl ClientOptions {
    /// Plain TCP options for `host:port` (tests, the embedded broker); `v5` selects MQTT 5.
    #[must_use]
    pub fn plain(client_id: &str, host: &str, port: u16, v5: bool) -> Self {
        if v5 {
            Self::V5(Box::new(rumqttc::v5::MqttOptions::new(
                client_id, host, port,
            )))
        } else {
            Self::V4(Box::new(rumqttc::MqttOptions::new(client_id, host, port)))
        }
    }

    /// The same options for the `n`-th connection of a pool: client id `ID-n` (`n` ≥ 1; the
    /// first connection keeps the id).
    #[must_use]
    pub fn for_connection(&self, n: usize) -> Self {
        let mut o = self.clone();
        if n > 0 {
            match &mut o {
                Self::V4(m) => {
                    let id = format!("{}-{n}", m.client_id());
                    m.set_client_id(id);
                }
                Self::V5(m) => {
                    let id = format!("{}-{n}", m.client_id());
                    m.set_client_id(id);
                }
            }
        }
        o
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> String {
        match self {
            Self::V4(m) => m.client_id(),
            Self::V5(m) => m.client_id(),
        }
    }

    /// The broker's `host:port`.
    #[must_use]
    pub fn address(&self) -> String {
        let (h, p) = match self {
            Self::V4(m) => m.broker_address(),
            Self::V5(m) => m.broker_address(),
        };
        if h.contains(':') {
            format!("[{h}]:{p}")
        } else {
            format!("{h}:{p}")
        }
    }

    /// Whether this is MQTT 5.
    #[must_use]
    pub fn is_v5(&self) -> bool {
        matches!(self, Self::V5(_))
    }
}

/// The largest packet the publisher accepts from the broker: MQTT's own maximum (256 MiB), so
/// that no message a device publishes, however large, makes the client drop its connection
/// (such a request is then ignored by size, unread).
pub const MAX_INCOMING: usize = 268_435_455;
/// With MQTT 5 the client announces its Maximum Packet Size in CONNECT and the broker discards
/// larger messages instead of forwarding them (MQTT 5 §3.1.2.11.4): far above any request a
/// device sends, far below what would cost memory.
pub const MAX_INCOMING_V5: u32 = 64 * 1024;

/// Tuning the publisher applies to every connection.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Outgoing QoS 1 PUBLISHes allowed without PUBACK.
    pub inflight: u16,
    /// Capacity of the request channel between tasks and the event loop.
    pub request_capacity: usize,
    /// Keep alive.
    pub keep_alive: Duration,
}

/// A handle that publishes and subscribes (cheap to clone).
#[derive(Clone)]
pub enum Client {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// The event loop, polled by exactly one task.
pub enum Loop {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What the event loop reports, reduced to what the publisher needs.
pub enum NetEvent {
    /// Connected (or reconnected): subscriptions must be made again.
    Connected,
    /// An incoming PUBLISH.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
    },
    /// A SUBACK: whether the broker granted every filter of that SUBSCRIBE.
    Subscribed {
        /// All granted.
        granted: bool,
    },
    /// One of our QoS 1 PUBLISHes went out on the wire with this packet id (in the order the
    /// client was given them).
    PublishSent(u16),
    /// A PUBACK for the PUBLISH with this packet id; with MQTT 5, a refusal's reason.
    PubAck(u16, Option<crate::publish::core::Refusal>),
    /// Anything else (pings, other acks).
    Other,
}
/// The client was closed (the event loop is gone).
#[derive(Debug, thiserror::Error)]
#[error("MQTT client closed")]
pub struct Closed;

fn network(nodelay: bool) -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(nodelay);
    n.set_connection_timeout(10);
    n
}

/// Creates the client and its event loop (nothing is sent until the loop is polled).
#[must_use]
pub fn connect(options: ClientOptions, t: Tuning) -> (Client, Loop) {
    match options {
        ClientOptions::V4(mut o) => {
            o.set_keep_alive(t.keep_alive)
                .set_clean_session(true)
                .set_inflight(t.inflight.max(1))
                .set_max_packet_size(MAX_INCOMING, 64 << 10)
                .set_request_channel_capacity(t.request_capacity);
            let (c, mut l) = rumqttc::AsyncClient::new(*o, t.request_capacity);
            l.set_network_options(network(true));
            (Client::V4(c), Loop::V4(Box::new(l)))
        }
        ClientOptions::V5(mut o) => {
            o.set_keep_alive(t.keep_alive)
                .set_clean_start(true)
                .set_outgoing_inflight_upper_limit(t.inflight.max(1))
                .set_max_packet_size(Some(MAX_INCOMING_V5))
                .set_request_channel_capacity(t.request_capacity)
                .set_network_options(network(true));
            let (c, l) = rumqttc::v5::AsyncClient::new(*o, t.request_capacity);
            (Client::V5(c), Loop::V5(Box::new(l)))
        }
    }
}

impl Client {
    /// Hands a PUBLISH (QoS 1, not retained) to the event loop without waiting.
    ///
    /// # Errors
    /// [`Closed`] when the event loop is gone or its request channel is full (the caller keeps
    /// fewer messages outstanding than the channel holds, so that means gone).
    pub fn try_publish(&self, topic: &str, payload: Bytes) -> Result<(), Closed> {
        match self {
            Self::V4(c) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .map_err(|_| Closed),
            Self::V5(c) => c
                .try_publish(topic, QoS5::AtLeastOnce, false, payload)
                .map_err(|_| Closed),
        }
    }

    /// Asks for a SUBSCRIBE at QoS 1 without waiting.
    ///
    /// # Errors
    /// [`Closed`] when the event loop is gone.
    pub fn try_subscribe(&self, filter: &str) -> Result<(), Closed> {
        match self {
            Self::V4(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|_| Closed),
            Self::V5(c) => c
                .try_subscribe(filter, QoS5::AtLeastOnce)
                .map_err(|_| Closed),
        }
    }

    /// Sends DISCONNECT without waiting.
    pub fn try_disconnect(&self) {
        let _ = match self {
            Self::V4(c) => c.try_disconnect().map_err(drop),
            Self::V5(c) => c.try_disconnect().map_err(drop),
        };
    }
}

/// A lost or failed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetError {
    /// In words, with the fix where there is one.
    pub text: String,
    /// Retrying cannot help (certificates, authorisation, unknown host): fix the setup first.
    pub permanent: bool,
}

impl NetError {
    fn transient(text: String) -> Self {
        Self {
            text,
            permanent: false,
        }
    }

    fn permanent(text: String) -> Self {
        Self {
            text,
            permanent: true,
        }
    }
}

/// The rustls error behind an I/O or TLS error, if any.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r);
                }
            }
        }
        cur = err.source();
    }
    None
}

/// Which client a connection error is about, for the wording of the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `otactl publish`.
    Publisher,
    /// `otactl device`, the stand-in board.
    Device,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Publisher => "publisher",
            Self::Device => "device",
        }
    }
}

/// Certificate and host problems, whatever the MQTT version.
fn classify_io(e: &(dyn std::error::Error + 'static), role: Role) -> NetError {
    use rustls::{AlertDescription as A, Error as T};
    if let Some(t) = rustls_error(e) {
        return match t {
            T::InvalidCertificate(c) => NetError::permanent(format!(
                "the broker's certificate was not accepted ({c:?}): check --ca (the CA that signed the broker's certificate) and that the broker address or --tls-server-name is a name in it"
            )),
            T::AlertReceived(
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::CertificateRequired
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::AccessDenied,
            ) => NetError::permanent(format!(
                "the broker refused the {}'s client certificate: check --cert and --client-key, and that the broker trusts the CA that signed them (its cafile)",
                role.name()
            )),
            T::Other(o) => NetError::permanent(o.to_string()),
            other => NetError::transient(format!("TLS: {other}")),
        };
    }
    let text = e.to_string();
    if text.contains("lookup address") || text.contains("Name or service not known") {
        return NetError::permanent(format!(
            "the broker's host name does not resolve ({text}): check --broker"
        ));
    }
    NetError::transient(text)
}

/// An MQTT 3.1.1 connection error in words, and whether retrying can help.
#[must_use]
pub fn classify_v4(e: &rumqttc::ConnectionError, role: Role) -> NetError {
    use rumqttc::{ConnectReturnCode as R, ConnectionError as C};
    match e {
        C::ConnectionRefused(R::NotAuthorized | R::BadUserNamePassword) => {
            NetError::permanent(format!(
                "the broker refused the connection: not authorized (check the {}'s certificate or credentials and the broker's ACL)",
                role.name()
            ))
        }
        C::ConnectionRefused(R::BadClientId) => {
            NetError::permanent("the broker refused the client id (check --client-id)".into())
        }
        C::ConnectionRefused(R::RefusedProtocolVersion) => NetError::permanent(
            "the broker does not speak MQTT 3.1.1 on this port".into(),
        ),
        C::Tls(t) => classify_io(t, role),
        C::Io(io) => classify_io(io, role),
        // A TLS alert that arrives after the handshake (TLS 1.3: the broker refuses the client
        // certificate while the CONNECT is read) comes as a state error around the I/O error.
        other => classify_io(other, role),
    }
}

fn classify_v5(e: &rumqttc::v5::ConnectionError) -> NetError {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as R;
    use rumqttc::v5::ConnectionError as C;
    match e {
        C::ConnectionRefused(
            R::NotAuthorized | R::BadUserNamePassword | R::Banned | R::BadAuthenticationMethod,
        ) => NetError::permanent(
            "the broker refused the connection: not authorized (check the publisher's certificate or credentials and the broker's ACL)".into(),
        ),
        C::ConnectionRefused(R::ClientIdentifierNotValid | R::BadClientId) => {
            NetError::permanent("the broker refused the client id (check --client-id)".into())
        }
        C::ConnectionRefused(R::UnsupportedProtocolVersion | R::RefusedProtocolVersion) => {
            NetError::permanent("the broker does not speak MQTT 5 on this port".into())
        }
        C::Tls(t) => classify_io(t, Role::Publisher),
        C::Io(io) => classify_io(io, Role::Publisher),
        other => NetError::transient(other.to_string()),
    }
}

/// What an MQTT 5 PUBACK reason code means for the publisher.
fn refusal(r: PubAckReason) -> Option<crate::publish::core::Refusal> {
    use crate::publish::core::Refusal;
    match r {
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
        PubAckReason::QuotaExceeded => Some(Refusal::QuotaExceeded),
        PubAckReason::NotAuthorized => Some(Refusal::Fatal("not authorized")),
        PubAckReason::TopicNameInvalid => Some(Refusal::Fatal("topic name invalid")),
        PubAckReason::PayloadFormatInvalid => Some(Refusal::Fatal("payload format invalid")),
        PubAckReason::PacketIdentifierInUse => Some(Refusal::Fatal("packet identifier in use")),
        PubAckReason::UnspecifiedError | PubAckReason::ImplementationSpecificError => {
            Some(Refusal::Fatal("unspecified error"))
        }
    }
}

impl Loop {
    /// Polls once: drives the connection and returns the next event. After an error the next
    /// call reconnects.
    ///
    /// # Errors
    /// The connection error, in words, and whether retrying can help.
    pub async fn poll(&mut self) -> Result<NetEvent, NetError> {
        use rumqttc::Outgoing;
        match self {
            Self::V4(l) => Ok(
                match l
                    .poll()
                    .await
                    .map_err(|e| classify_v4(&e, Role::Publisher))?
                {
                    rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => NetEvent::Connected,
                    rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a)) => NetEvent::Subscribed {
                        granted: a
                            .return_codes
                            .iter()
                            .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                    },
                    rumqttc::Event::Incoming(rumqttc::Packet::PubAck(a)) => {
                        NetEvent::PubAck(a.pkid, None)
                    }
                    rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => NetEvent::Message {
                        topic: p.topic,
                        payload: p.payload,
                    },
                    rumqttc::Event::Outgoing(Outgoing::Publish(pkid)) => {
                        NetEvent::PublishSent(pkid)
                    }
                    _ => NetEvent::Other,
                },
            ),
            Self::V5(l) => Ok(match l.poll().await.map_err(|e| classify_v5(&e))? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(_)) => NetEvent::Connected,
                rumqttc::v5::Event::Incoming(Packet5::SubAck(a)) => NetEvent::Subscribed {
                    granted: a
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode5::Success(_))),
                },
                rumqttc::v5::Event::Incoming(Packet5::PubAck(a)) => {
                    NetEvent::PubAck(a.pkid, refusal(a.reason))
                }
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => NetEvent::Message {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                },
                rumqttc::v5::Event::Outgoing(Outgoing::Publish(pkid)) => {
                    NetEvent::PublishSent(pkid)
                }
                _ => NetEvent::Other,
            }),
        }
    }
}
