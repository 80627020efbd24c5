//! One MQTT connection over rumqttc, as MQTT 3.1.1 or 5 (5 is needed for shared
//! subscriptions), behind one small interface.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use rumqttc::v5::mqttbytes::QoS as QoS5;

/// Connection options for the publisher's single MQTT connection, as built by
/// [`crate::mqtt`] (broker URL, TLS, credentials). The publisher adds its own tuning (keep alive,
/// clean session, in-flight window, packet sizes, `TCP_NODELAY`) in [`connect`].
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

    /// Whether this is MQTT 5.
    #[must_use]
    pub fn is_v5(&self) -> bool {
        matches!(self, Self::V5(_))
    }
}

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
    /// A SUBACK.
    Subscribed,
    /// A PUBACK for one of our QoS 1 PUBLISHes.
    PubAck,
    /// Anything else (acks, pings, outgoing packets).
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
                .set_max_packet_size(1 << 20, 64 << 10)
                .set_request_channel_capacity(t.request_capacity);
            let (c, mut l) = rumqttc::AsyncClient::new(*o, t.request_capacity);
            l.set_network_options(network(true));
            (Client::V4(c), Loop::V4(Box::new(l)))
        }
        ClientOptions::V5(mut o) => {
            o.set_keep_alive(t.keep_alive)
                .set_clean_start(true)
                .set_outgoing_inflight_upper_limit(t.inflight.max(1))
                .set_max_packet_size(Some(1 << 20))
                .set_request_channel_capacity(t.request_capacity)
                .set_network_options(network(true));
            let (c, l) = rumqttc::v5::AsyncClient::new(*o, t.request_capacity);
            (Client::V5(c), Loop::V5(Box::new(l)))
        }
    }
}

impl Client {
    /// Publishes at QoS 1, not retained; waits only for room in the request channel.
    ///
    /// # Errors
    /// [`Closed`] when the event loop is gone.
    pub async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), Closed> {
        match self {
            Self::V4(c) => c
                .publish_bytes(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|_| Closed),
            Self::V5(c) => c
                .publish_bytes(topic, QoS5::AtLeastOnce, false, payload)
                .await
                .map_err(|_| Closed),
        }
    }

    /// Subscribes at QoS 1.
    ///
    /// # Errors
    /// [`Closed`] when the event loop is gone.
    pub async fn subscribe(&self, filter: &str) -> Result<(), Closed> {
        match self {
            Self::V4(c) => c
                .subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .await
                .map_err(|_| Closed),
            Self::V5(c) => c
                .subscribe(filter, QoS5::AtLeastOnce)
                .await
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

impl Loop {
    /// Polls once: drives the connection and returns the next event. After an error the next
    /// call reconnects.
    ///
    /// # Errors
    /// The connection error, as text.
    pub async fn poll(&mut self) -> Result<NetEvent, String> {
        match self {
            Self::V4(l) => match l.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => Ok(NetEvent::Connected),
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => Ok(NetEvent::Subscribed),
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) => Ok(NetEvent::PubAck),
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Ok(NetEvent::Message {
                    topic: p.topic,
                    payload: p.payload,
                }),
                _ => Ok(NetEvent::Other),
            },
            Self::V5(l) => match l.poll().await.map_err(|e| e.to_string())? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(_)) => Ok(NetEvent::Connected),
                rumqttc::v5::Event::Incoming(Packet5::SubAck(_)) => Ok(NetEvent::Subscribed),
                rumqttc::v5::Event::Incoming(Packet5::PubAck(_)) => Ok(NetEvent::PubAck),
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => Ok(NetEvent::Message {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                }),
                _ => Ok(NetEvent::Other),
            },
        }
    }
}
