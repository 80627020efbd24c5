//! MQTT framing for the AWS front: a packet is read whole by its fixed header (type, flags,
//! remaining length), and only the fields the front needs are decoded.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::Violation;

/// One MQTT packet as read: the whole packet and where its variable header starts.
pub(super) struct Packet {
    pub(super) bytes: Vec<u8>,
    pub(super) body: usize,
}

impl Packet {
    pub(super) fn kind(&self) -> u8 {
        self.bytes[0] >> 4
    }
    pub(super) fn flags(&self) -> u8 {
        self.bytes[0] & 0x0f
    }
    pub(super) fn body(&self) -> &[u8] {
        &self.bytes[self.body..]
    }
}

/// Why reading stopped.
pub(super) enum ReadEnd {
    /// The peer closed (or the socket failed).
    Closed,
    /// A packet longer than allowed (its remaining length).
    TooLarge(usize),
    /// A broken fixed header.
    Malformed,
}

/// Reads one packet of at most `max` remaining bytes.
pub(super) async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Packet, ReadEnd> {
    let first = r.read_u8().await.map_err(|_| ReadEnd::Closed)?;
    let mut bytes = vec![first];
    let mut len = 0usize;
    for i in 0..4 {
        let b = r.read_u8().await.map_err(|_| ReadEnd::Closed)?;
        bytes.push(b);
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
        if i == 3 {
            return Err(ReadEnd::Malformed);
        }
    }
    if len > max {
        return Err(ReadEnd::TooLarge(len));
    }
    let body = bytes.len();
    bytes.resize(body + len, 0);
    r.read_exact(&mut bytes[body..])
        .await
        .map_err(|_| ReadEnd::Closed)?;
    Ok(Packet { bytes, body })
}

/// A cursor over a packet's variable header and payload.
pub(super) struct Cursor<'a> {
    data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(Violation::Malformed("packet shorter than its fields"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8, Violation> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16, Violation> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(super) fn string(&mut self) -> Result<&'a [u8], Violation> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// Skips MQTT 5 properties (a variable byte integer length, then that many bytes).
    pub(super) fn skip_properties(&mut self) -> Result<(), Violation> {
        let mut len = 0usize;
        for i in 0..4 {
            let b = self.u8()?;
            len |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.take(len)?;
                return Ok(());
            }
        }
        Err(Violation::Malformed("properties length"))
    }
    pub(super) fn rest(&self) -> usize {
        self.data.len() - self.pos
    }
}

/// The fields of a PUBLISH the front needs.
pub(super) struct Publish {
    pub(super) qos: u8,
    pub(super) topic_len: usize,
    pub(super) slashes: usize,
    pub(super) packet_id: Option<u16>,
    pub(super) payload_len: usize,
}

pub(super) fn parse_publish(p: &Packet, protocol: u8) -> Result<Publish, Violation> {
    let qos = (p.flags() >> 1) & 3;
    if qos == 3 {
        return Err(Violation::Malformed("PUBLISH with QoS 3"));
    }
    let mut c = Cursor::new(p.body());
    let topic = c.string()?;
    let packet_id = if qos > 0 { Some(c.u16()?) } else { None };
    if protocol == 5 {
        c.skip_properties()?;
    }
    Ok(Publish {
        qos,
        topic_len: topic.len(),
        slashes: topic.iter().filter(|&&b| b == b'/').count(),
        packet_id,
        payload_len: c.rest(),
    })
}
