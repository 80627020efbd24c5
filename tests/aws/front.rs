//! The AWS IoT Core test front (tests/util/awsfront.rs) itself: rumqttc clients through it
//! against a real mosquitto, a subscriber directly on mosquitto counting what got through.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use crate::util::awsfront::{AwsFront, ConnStats, Limits, Throttle, Violation};
use crate::util::Mosquitto;

const WAIT: Duration = Duration::from_secs(20);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A v4 client to `127.0.0.1:port` with room for big packets and a deep request queue.
fn client(id: &str, port: u16) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(o, 1024)
}

/// Drives an event loop in a task; every event (or the error that ended it) goes to the channel.
/// What an event loop reported: its events, then the error that ended it.
type Events = mpsc::UnboundedReceiver<Result<Event, String>>;

fn drive(mut el: EventLoop) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(ev) => {
                    if tx.send(Ok(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for the first event `pick` accepts; panics after [`WAIT`] or when the loop ends first.
async fn until<T>(rx: &mut Events, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let r = tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Some(Ok(ev)) => {
                    if let Some(t) = pick(&ev) {
                        return Ok(t);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err("event loop gone".into()),
            }
        }
    })
    .await;
    match r {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => panic!("waiting for {what}: connection ended: {e}"),
        Err(_) => panic!("waiting for {what}: nothing within {WAIT:?}"),
    }
}

/// Waits until the event loop ends with an error (the front closed the connection).
async fn until_closed(rx: &mut Events) {
    let r = tokio::time::timeout(WAIT, async {
        while let Some(ev) = rx.recv().await {
            if ev.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the connection stayed open for {WAIT:?}");
}

async fn connected(rx: &mut Events) {
    until(rx, "CONNACK", |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await;
}

/// A subscriber directly on mosquitto: the payloads it receives on `filter`, once subscribed.
async fn subscriber(port: u16, filter: &str) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let (c, el) = client(&format!("sub-{}", filter.replace('/', "_")), port);
    let mut events = drive(el);
    c.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    until(&mut events, "SUBACK", |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = c;
        while let Some(Ok(ev)) = events.recv().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                if tx.send(p.payload.to_vec()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Receives `n` payloads, or panics after [`WAIT`].
async fn receive(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(p)) => got.push(p),
            _ => panic!("received {} of {n} messages", got.len()),
        }
    }
    got
}

/// A subscriber on `topic` directly at the broker, and a connected client `id` through the front.
async fn sub_and_client(
    front: &AwsFront,
    broker: &Mosquitto,
    topic: &str,
    id: &str,
) -> (Events, mpsc::UnboundedReceiver<Vec<u8>>, AsyncClient) {
    let sub = subscriber(broker.port, topic).await;
    let (c, el) = client(id, front.port);
    let mut events = drive(el);
    connected(&mut events).await;
    (events, sub, c)
}

/// Publishes the numbers `0..n` (4 bytes big-endian) to `topic`; stops at the first refusal.
async fn publish_numbers(c: &AsyncClient, topic: &str, qos: QoS, n: u32) {
    for i in 0..n {
        if c.publish(topic, qos, false, i.to_be_bytes().to_vec())
            .await
            .is_err()
        {
            return;
        }
    }
}

fn numbers(n: u32) -> Vec<Vec<u8>> {
    (0..n).map(|i| i.to_be_bytes().to_vec()).collect()
}

fn only(front: &AwsFront) -> ConnStats {
    let all = front.connections();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

fn setup() -> Option<(tempfile::TempDir, Mosquitto)> {
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start_plain(dir.path())?;
    Some((dir, m))
}

#[test]
fn burst_of_300_is_throttled_to_100_per_second_in_drop_mode() {
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let front = AwsFront::start(broker.port, Throttle::Drop);
    rt().block_on(async {
        let (_events, mut sub, c) = sub_and_client(&front, &broker, "aws/burst", "burst").await;
        publish_numbers(&c, "aws/burst", QoS::AtMostOnce, 300).await;
        assert!(front.wait_for(WAIT, |a| a.first().is_some_and(|s| s.publishes == 300)));
        let s = only(&front);
        let got = receive(&mut sub, s.forwarded as usize).await;
        let throttled = 300 - s.forwarded;
        assert!(s.forwarded < 300 && s.throttled == throttled, "{s:?}");
        assert!(s.max_forwarded_per_sec <= 100, "{s:?}");
        assert!(s.max_publish_per_sec > 100, "{s:?}");
        assert!(s.open && s.closed_for.is_none(), "{s:?}");
        assert!(s.violations.contains(&Violation::PublishRate), "{s:?}");
        let (first, last) = s.publish_span.unwrap();
        if last - first < Duration::from_secs(1) {
            // One window: exactly the first 100 went through, in order.
            assert_eq!(got, numbers(100));
        }
    });
}

#[test]
fn burst_over_the_rate_closes_the_connection_in_disconnect_mode() {
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let front = AwsFront::start(broker.port, Throttle::Disconnect);
    rt().block_on(async {
        let (mut events, mut sub, c) = sub_and_client(&front, &broker, "aws/burst", "burst").await;
        publish_numbers(&c, "aws/burst", QoS::AtLeastOnce, 300).await;
        until_closed(&mut events).await;
        assert!(front.wait_for(WAIT, |a| a.first().is_some_and(|s| !s.open)));
        let s = only(&front);
        assert_eq!(s.closed_for, Some(Violation::PublishRate), "{s:?}");
        assert!(s.max_forwarded_per_sec <= 100, "{s:?}");
        assert_eq!(s.throttled, 1, "{s:?}");
        // What was accepted before the close still reaches the broker's subscribers.
        let got = receive(&mut sub, s.forwarded as usize).await;
        assert_eq!(got, numbers(s.forwarded as u32));
    });
}

#[test]
fn fifty_per_second_passes_untouched() {
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let front = AwsFront::start(broker.port, Throttle::Disconnect);
    rt().block_on(async {
        let (mut events, mut sub, c) =
            sub_and_client(&front, &broker, "aws/steady", "steady").await;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..60u32 {
            tick.tick().await;
            c.publish(
                "aws/steady",
                QoS::AtLeastOnce,
                false,
                i.to_be_bytes().to_vec(),
            )
            .await
            .unwrap();
        }
        for _ in 0..60 {
            until(&mut events, "PUBACK", |e| {
                matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
            })
            .await;
        }
        assert_eq!(receive(&mut sub, 60).await, numbers(60));
        let s = only(&front);
        assert_eq!(
            (s.publishes, s.forwarded, s.throttled),
            (60, 60, 0),
            "{s:?}"
        );
        assert!(s.violations.is_empty() && s.open, "{s:?}");
        assert!(s.max_publish_per_sec <= 60, "{s:?}");
    });
}

/// Publishes one QoS 1 message through the front on a new connection; whether it was acknowledged
/// (else the front closed the connection) and the front's record of it.
async fn publish_one(front: &AwsFront, id: &str, topic: &str, payload: Vec<u8>) -> bool {
    let (c, el) = client(id, front.port);
    let mut events = drive(el);
    connected(&mut events).await;
    c.publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    let r = tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.recv().await {
            match ev {
                Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                Err(_) => return false,
                Ok(_) => {}
            }
        }
        false
    })
    .await;
    r.expect("neither PUBACK nor a closed connection")
}

fn closed_for(front: &AwsFront, id: &str) -> Option<Violation> {
    let id = id.to_string();
    assert!(front.wait_for(WAIT, |a| a.iter().any(|s| s.client_id == id && !s.open)));
    let all = front.connections();
    all.into_iter()
        .find(|s| s.client_id == id)
        .unwrap()
        .closed_for
}

#[test]
fn payload_and_topic_limits_close_the_connection() {
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let front = AwsFront::start(broker.port, Throttle::Drop);
    rt().block_on(async {
        let mut sub = subscriber(broker.port, "#").await;
        let max = 128 * 1024;
        assert!(publish_one(&front, "p-max", "aws/big", vec![7; max]).await);
        assert_eq!(receive(&mut sub, 1).await[0].len(), max);
        assert!(!publish_one(&front, "p-over", "aws/big", vec![7; max + 1]).await);
        assert_eq!(
            closed_for(&front, "p-over"),
            Some(Violation::PayloadTooLarge(max + 1))
        );

        let seven = "a/b/c/d/e/f/g/h";
        assert!(publish_one(&front, "t-7", seven, b"ok".to_vec()).await);
        assert_eq!(receive(&mut sub, 1).await[0], b"ok");
        let nine = "a/b/c/d/e/f/g/h/i/j";
        assert!(!publish_one(&front, "t-9", nine, b"no".to_vec()).await);
        assert_eq!(
            closed_for(&front, "t-9"),
            Some(Violation::TooManySlashes(9))
        );
        let long = "t".repeat(257);
        assert!(!publish_one(&front, "t-257", &long, b"no".to_vec()).await);
        assert_eq!(
            closed_for(&front, "t-257"),
            Some(Violation::TopicTooLong(257))
        );

        let (c, el) = client("qos2", front.port);
        let mut events = drive(el);
        connected(&mut events).await;
        c.publish("aws/q2", QoS::ExactlyOnce, false, b"no".to_vec())
            .await
            .unwrap();
        until_closed(&mut events).await;
        assert_eq!(closed_for(&front, "qos2"), Some(Violation::Qos2Publish));
        // Nothing refused reached the broker: the next message is the next one received.
        assert!(publish_one(&front, "p-last", "aws/last", b"last".to_vec()).await);
        assert_eq!(receive(&mut sub, 1).await[0], b"last");
    });
}

#[test]
fn mqtt5_over_rate_publish_gets_quota_exceeded() {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PubAckReason};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::{AsyncClient as Client5, Event as E5, MqttOptions as O5};
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let front = AwsFront::start(broker.port, Throttle::Drop);
    rt().block_on(async {
        let (c, mut el) = Client5::new(O5::new("v5", "127.0.0.1", front.port), 512);
        for i in 0..150u32 {
            c.publish("aws/v5", Q5::AtLeastOnce, false, i.to_be_bytes().to_vec())
                .await
                .unwrap();
        }
        let (mut ok, mut quota) = (0, 0);
        let r = tokio::time::timeout(WAIT, async {
            while ok + quota < 150 {
                match el.poll().await {
                    // mosquitto says "no matching subscribers" (0x10) when nobody listens.
                    Ok(E5::Incoming(P5::PubAck(a)))
                        if matches!(
                            a.reason,
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                        ) =>
                    {
                        ok += 1;
                    }
                    Ok(E5::Incoming(P5::PubAck(a))) => {
                        assert_eq!(a.reason, PubAckReason::QuotaExceeded);
                        quota += 1;
                    }
                    Ok(_) => {}
                    Err(e) => panic!("v5 connection ended: {e}"),
                }
            }
        })
        .await;
        assert!(r.is_ok(), "{ok} acks and {quota} refusals within {WAIT:?}");
        let s = only(&front);
        assert_eq!(s.protocol, 5);
        assert_eq!((ok, quota), (s.forwarded, s.throttled), "{s:?}");
        assert!(quota > 0 && s.max_forwarded_per_sec <= 100, "{s:?}");
    });
}

#[test]
fn messages_in_flight_to_a_client_are_capped() {
    let Some((_dir, broker)) = setup() else {
        return;
    };
    let limits = Limits {
        inflight_to_client: 10,
        ..Limits::aws()
    };
    let front = AwsFront::with_limits(broker.port, Throttle::Drop, limits);
    rt().block_on(async {
        let mut o = MqttOptions::new("slow", "127.0.0.1", front.port);
        o.set_manual_acks(true);
        let (c, el) = AsyncClient::new(o, 64);
        let mut events = drive(el);
        c.subscribe("aws/fleet", QoS::AtLeastOnce).await.unwrap();
        until(&mut events, "SUBACK", |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
        })
        .await;
        let (p, pel) = client("pusher", broker.port);
        let _pusher = drive(pel);
        publish_numbers(&p, "aws/fleet", QoS::AtLeastOnce, 30).await;
        let mut held = Vec::new();
        while held.len() < 10 {
            held.push(
                until(&mut events, "PUBLISH", |e| match e {
                    Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
                    _ => None,
                })
                .await,
            );
        }
        // The window is full: nothing more arrives while the client acknowledges nothing.
        let more = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(Ok(Event::Incoming(Packet::Publish(_)))) = events.recv().await {
                    return;
                }
            }
        })
        .await;
        assert!(
            more.is_err(),
            "an 11th message arrived with 10 unacknowledged"
        );
        for (i, m) in held.iter().enumerate() {
            assert_eq!(m.payload.as_ref(), (i as u32).to_be_bytes());
            c.ack(m).await.unwrap();
        }
        let mut n = held.len();
        while n < 30 {
            let m = until(&mut events, "PUBLISH", |e| match e {
                Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
                _ => None,
            })
            .await;
            assert_eq!(m.payload.as_ref(), (n as u32).to_be_bytes());
            c.ack(&m).await.unwrap();
            n += 1;
        }
        let all = front.connections();
        let s = all.iter().find(|s| s.client_id == "slow").unwrap();
        assert_eq!(s.max_inflight_to_client, 10, "{s:?}");
    });
}
