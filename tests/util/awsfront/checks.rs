//! What the front checks in the client's packets: CONNECT, PUBLISH (rate, throughput, size,
//! topic, QoS), SUBSCRIBE and UNSUBSCRIBE.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::packet::{parse_publish, Cursor, Packet};
use super::{push_violation, Conn, Limits, Throttle, Violation};

pub(super) fn check_topic(limits: &Limits, len: usize, slashes: usize) -> Result<(), Violation> {
    if len > limits.max_topic_bytes {
        return Err(Violation::TopicTooLong(len));
    }
    if slashes > limits.max_topic_slashes {
        return Err(Violation::TooManySlashes(slashes));
    }
    Ok(())
}

/// The sliding 1 s windows of one connection's client → broker PUBLISHes.
#[derive(Default)]
pub(super) struct Windows {
    sent: VecDeque<Instant>,
    forwarded: VecDeque<(Instant, usize)>,
    forwarded_bytes: usize,
}

impl Windows {
    const SPAN: Duration = Duration::from_secs(1);
    /// Most sent-PUBLISH timestamps kept (a flood beyond this only saturates the count).
    const CAP: usize = 1 << 20;

    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|&t| now - t >= Self::SPAN) {
            self.sent.pop_front();
        }
        while let Some(&(t, n)) = self.forwarded.front() {
            if now - t < Self::SPAN {
                break;
            }
            self.forwarded.pop_front();
            self.forwarded_bytes -= n;
        }
    }
}

pub(super) fn on_connect(p: &Packet, conn: &Conn) -> Result<(), Violation> {
    let mut c = Cursor::new(p.body());
    c.string()?; // "MQTT"
    let level = c.u8()?;
    c.take(3)?; // connect flags, keep alive
    if level == 5 {
        c.skip_properties()?;
    }
    let id = String::from_utf8_lossy(c.string()?).into_owned();
    *conn.protocol.lock().unwrap() = level;
    let too_long = id.len() > conn.limits.max_client_id;
    let len = id.len();
    conn.shared.update(conn.idx, |s| {
        s.client_id = id;
        s.protocol = level;
    });
    if too_long {
        return Err(Violation::ClientIdTooLong(len));
    }
    Ok(())
}

/// Whether to forward the PUBLISH; `Err` closes the connection.
pub(super) async fn on_publish(
    p: &Packet,
    conn: &Conn,
    windows: &mut Windows,
    to_client: &mpsc::Sender<Vec<u8>>,
) -> Result<bool, Violation> {
    let protocol = *conn.protocol.lock().unwrap();
    let publish = parse_publish(p, protocol)?;
    let limits = &conn.limits;
    let now = Instant::now();
    windows.prune(now);
    if windows.sent.len() < Windows::CAP {
        windows.sent.push_back(now);
    }
    let sent = windows.sent.len();
    conn.shared.update(conn.idx, |s| {
        s.publishes += 1;
        s.max_publish_per_sec = s.max_publish_per_sec.max(sent);
        s.publish_span = Some((s.publish_span.map_or(now, |(first, _)| first), now));
    });
    if publish.qos == 2 {
        return Err(Violation::Qos2Publish);
    }
    // MQTT 5 may send an empty topic with a topic alias: nothing to check then.
    check_topic(limits, publish.topic_len, publish.slashes)?;
    if publish.payload_len > limits.max_payload {
        return Err(Violation::PayloadTooLarge(publish.payload_len));
    }
    let size = p.bytes.len();
    let over = if windows.forwarded.len() >= limits.publish_per_sec {
        Some(Violation::PublishRate)
    } else if windows.forwarded_bytes + size > limits.bytes_per_sec {
        Some(Violation::Throughput)
    } else {
        None
    };
    if let Some(v) = over {
        conn.shared.update(conn.idx, |s| {
            s.throttled += 1;
            push_violation(s, v.clone());
        });
        if conn.mode == Throttle::Disconnect {
            return Err(v);
        }
        if let (5, Some(id)) = (protocol, publish.packet_id) {
            let [hi, lo] = id.to_be_bytes();
            // PUBACK, remaining length 3: packet id, reason 0x97 "Quota exceeded".
            let _ = to_client.send(vec![0x40, 3, hi, lo, 0x97]).await;
        }
        return Ok(false);
    }
    windows.forwarded.push_back((now, size));
    windows.forwarded_bytes += size;
    let (count, bytes) = (windows.forwarded.len(), windows.forwarded_bytes);
    conn.shared.update(conn.idx, |s| {
        s.forwarded += 1;
        s.max_forwarded_per_sec = s.max_forwarded_per_sec.max(count);
        s.max_bytes_per_sec = s.max_bytes_per_sec.max(bytes);
    });
    Ok(true)
}

pub(super) fn on_subscribe(
    p: &mut Packet,
    conn: &Conn,
    subscriptions: &mut HashSet<Vec<u8>>,
) -> Result<(), Violation> {
    let protocol = *conn.protocol.lock().unwrap();
    let body = p.body;
    let mut qos2_at = Vec::new();
    let mut filters = Vec::new();
    {
        let mut c = Cursor::new(p.body());
        c.u16()?;
        if protocol == 5 {
            c.skip_properties()?;
        }
        while c.rest() > 0 {
            let f = c.string()?;
            let slashes = f.iter().filter(|&&b| b == b'/').count();
            check_topic(&conn.limits, f.len(), slashes)?;
            filters.push(f.to_vec());
            if c.u8()? & 3 == 2 {
                qos2_at.push(c.pos - 1);
            }
        }
    }
    if filters.len() > conn.limits.max_filters_per_subscribe {
        return Err(Violation::TooManyFilters(filters.len()));
    }
    subscriptions.extend(filters);
    if subscriptions.len() > conn.limits.max_subscriptions {
        return Err(Violation::TooManySubscriptions);
    }
    for at in &qos2_at {
        p.bytes[body + at] = (p.bytes[body + at] & !3) | 1;
    }
    if !qos2_at.is_empty() {
        conn.shared
            .update(conn.idx, |s| push_violation(s, Violation::Qos2Subscribe));
    }
    Ok(())
}

pub(super) fn on_unsubscribe(
    p: &Packet,
    conn: &Conn,
    subscriptions: &mut HashSet<Vec<u8>>,
) -> Result<(), Violation> {
    let mut c = Cursor::new(p.body());
    c.u16()?;
    if *conn.protocol.lock().unwrap() == 5 {
        c.skip_properties()?;
    }
    while c.rest() > 0 {
        subscriptions.remove(c.string()?);
    }
    Ok(())
}
