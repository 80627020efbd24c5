//! The core driven directly: made-up clocks, requests built with the device's own templates,
//! every transmit acknowledged (or lost) by the test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ota_core::protocol::codec::{encode_chunk_request, encode_request, encode_result};
use ota_core::protocol::{AppVersion, DeviceIdentity, MessageKind, TEMPLATE_SERIAL};
use proptest::prelude::*;

use super::{Core, CoreConfig, Input, Limits, Refusal, Transmit};
use crate::publish::document::JobTemplate;
use crate::publish::events::Event;
use crate::publish::served::ServedImage;
use crate::publish::state::State;

const B: &str = "APP_CY8CPROTO_062S2_43439";
const P: &str = "MyUniqueTopic";
const IMAGE_LEN: usize = 10_000;
const OLD: (u16, u16, u16) = (1, 0, 0);
const NEW: (u16, u16, u16) = (1, 1, 0);

struct H {
    core: Core,
    block_after: u32,
    limits: Limits,
    now: Instant,
    /// Every transmit so far.
    sent: Vec<Transmit>,
    events: Vec<Event>,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Updated(Vec<u8>),
    NoUpdate,
    Nothing,
}

fn topic(tick: u16) -> String {
    format!("{P}/{B}/OTAImage/{tick}")
}

fn request_topic() -> String {
    format!("{P}/{B}/publish_notify")
}

fn core(block_after: u32, limits: Limits, state: State) -> Core {
    core_with(block_after, limits, state, IMAGE_LEN)
}

fn core_with(block_after: u32, limits: Limits, state: State, image_len: usize) -> Core {
    let image = Arc::new(ServedImage::for_tests(B, NEW, image_len));
    Core::new(
        CoreConfig {
            prefix: P.into(),
            template: JobTemplate::default(),
            block_after,
            persisting: false,
            limits,
            connections: 1,
        },
        HashMap::from([(B.to_string(), image)]),
        state,
    )
}

/// What goes wrong with one session's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// The "Update Availability" never reaches the publisher.
    DropAsk,
    /// The broker delivers "Update Availability" twice.
    DuplicateAsk,
    /// The broker delivers "Request Update" twice.
    DuplicateRequest,
}

impl H {
    fn new(block_after: u32, limits: Limits) -> Self {
        let mut h = Self {
            core: core(block_after, limits, State::new()),
            block_after,
            limits,
            now: Instant::now(),
            sent: Vec::new(),
            events: Vec::new(),
        };
        h.core.handle(h.now, Input::Connected(0));
        h
    }

    fn feed(&mut self, payload: &[u8]) {
        self.now += Duration::from_millis(10);
        let t = request_topic();
        self.core
            .handle(self.now, Input::Message { topic: &t, payload });
    }

    fn ask(&mut self, kind: MessageKind, serial: &str, v: (u16, u16, u16), tick: u16) {
        let id = DeviceIdentity {
            serial_number: serial,
            ..DeviceIdentity::APP
        };
        let mut b = [0u8; 1024];
        let n = encode_request(
            &mut b,
            kind,
            &id,
            AppVersion::new(v.0, v.1, v.2),
            &topic(tick),
        )
        .unwrap();
        self.feed(&b[..n]);
    }

    /// Hands out and acknowledges everything the core wants to send; returns it.
    fn pump(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        loop {
            self.core.handle_timeout(self.now);
            let Some(t) = self.core.poll_transmit(self.now) else {
                break;
            };
            self.core.handle(self.now, Input::Acked(t.tag));
            out.push(t);
        }
        while let Some(e) = self.core.poll_event() {
            self.events.push(e);
        }
        self.sent.extend(out.iter().cloned());
        out
    }

    /// The publisher restarts: its state goes through the state file's JSON.
    fn restart(&mut self) {
        let saved = serde_json::to_vec(self.core.state()).unwrap();
        let state: State = serde_json::from_slice(&saved).unwrap();
        self.core = core(self.block_after, self.limits, state);
        self.core.handle(self.now, Input::Connected(0));
    }

    /// One device session as the C agent runs it (job flow, push).
    fn session(&mut self, serial: &str, running: (u16, u16, u16), tick: u16) -> Outcome {
        self.session_with(serial, running, tick, Fault::None)
    }

    fn session_with(
        &mut self,
        serial: &str,
        running: (u16, u16, u16),
        tick: u16,
        fault: Fault,
    ) -> Outcome {
        if fault == Fault::DropAsk {
            return Outcome::Nothing;
        }
        self.ask(MessageKind::UpdateAvailability, serial, running, tick);
        if fault == Fault::DuplicateAsk {
            self.ask(MessageKind::UpdateAvailability, serial, running, tick);
        }
        let replies = self.pump();
        let Some(job) = replies.iter().find(|t| t.topic == topic(tick)) else {
            return Outcome::Nothing;
        };
        if job.payload.windows(19).any(|w| w == b"No Update Available") {
            return Outcome::NoUpdate;
        }
        self.ask(MessageKind::RequestUpdate, serial, running, tick);
        if fault == Fault::DuplicateRequest {
            self.ask(MessageKind::RequestUpdate, serial, running, tick);
        }
        let chunks = self.pump();
        let mut image = vec![0u8; IMAGE_LEN];
        let mut got = 0;
        for c in chunks.iter().filter(|t| t.topic == topic(tick)) {
            let off = u32::from_le_bytes(c.payload[22..26].try_into().unwrap()) as usize;
            let len = u16::from_le_bytes(c.payload[26..28].try_into().unwrap()) as usize;
            image[off..off + len].copy_from_slice(&c.payload[32..32 + len]);
            got += len;
        }
        if got >= IMAGE_LEN {
            Outcome::Updated(image)
        } else {
            Outcome::Nothing
        }
    }

    fn warnings(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Warning { .. }))
            .count()
    }

    fn blocked(&self, serial: &str) -> bool {
        self.core
            .state()
            .devices
            .get(&format!("{B}/{serial}"))
            .is_some_and(|r| !r.blocked.is_empty())
    }
}

fn expected_image() -> Vec<u8> {
    ServedImage::for_tests(B, NEW, IMAGE_LEN).bytes.to_vec()
}

#[test]
fn template_serial_fleet_all_update_even_after_one_reverts() {
    let mut h = H::new(1, Limits::default());
    // Device 0 gets the image and "reverts" (asks again on 1.0.0): with the template serial that
    // must not block the version for the other 19 (the 1-of-100 bug).
    assert!(matches!(
        h.session(TEMPLATE_SERIAL, OLD, 1),
        Outcome::Updated(_)
    ));
    assert!(matches!(
        h.session(TEMPLATE_SERIAL, OLD, 2),
        Outcome::Updated(_)
    ));
    for d in 0..20 {
        assert_eq!(
            h.session(TEMPLATE_SERIAL, OLD, 100 + d),
            Outcome::Updated(expected_image()),
            "device {d}"
        );
    }
    assert!(!h.blocked(TEMPLATE_SERIAL));
    let notices = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Notice { .. }))
        .count();
    assert_eq!(notices, 1, "said once per board");
}

#[test]
fn an_identified_device_that_reverts_is_blocked_alone() {
    let mut h = H::new(1, Limits::default());
    for d in 0..20u16 {
        assert!(matches!(
            h.session(&format!("SN{d}"), OLD, d),
            Outcome::Updated(_)
        ));
    }
    // SN7 comes back on the old version: reverted, blocked for SN7 only.
    assert_eq!(h.session("SN7", OLD, 500), Outcome::NoUpdate);
    assert!(h.blocked("SN7"));
    for d in (0..20u16).filter(|d| *d != 7) {
        assert!(!h.blocked(&format!("SN{d}")));
        assert_eq!(
            h.session(&format!("SN{d}"), NEW, 600 + d),
            Outcome::NoUpdate
        );
    }
    assert!(matches!(h.session("SN-new", OLD, 900), Outcome::Updated(_)));
}

/// Two replicas on one store: what one writes reaches the other as inputs. A block from the
/// other replica is honoured (not offered, not written back as this one's change), and a
/// record the other wrote (it sent the whole image) lets this one recognise the revert the
/// device reports here.
#[test]
fn another_replicas_blocks_and_records_are_honoured() {
    use crate::publish::store::HistoryKind::{Block, Revert};
    let mut a = H::new(1, Limits::default());
    let mut b = H::new(1, Limits::default());
    // SN1 updates on A; B learns A's record, then the device comes back on OLD at B.
    assert!(matches!(a.session("SN1", OLD, 1), Outcome::Updated(_)));
    let (_, batch) = a.core.take_save().expect("changes");
    for (device, record) in &batch.records {
        b.core.handle(b.now, Input::Record { device, record });
    }
    assert!(b.core.take_save().is_none(), "nothing of B's own to write");
    assert_eq!(
        b.session("SN1", OLD, 2),
        Outcome::NoUpdate,
        "revert seen on B"
    );
    assert!(b.blocked("SN1"));
    let (_, batch) = b.core.take_save().expect("the revert");
    let kinds: Vec<_> = batch.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Revert, Block]);
    // A hears of B's block: SN1 is refused on A too, and A writes no block of its own.
    let device = format!("{B}/SN1");
    a.core.handle(
        a.now,
        Input::Blocked {
            device: &device,
            version: "1.1.0",
        },
    );
    a.pump();
    assert!(a
        .events
        .iter()
        .any(|e| matches!(e, Event::Blocked { device: d, .. } if *d == device)));
    assert_eq!(a.session("SN1", OLD, 3), Outcome::NoUpdate);
    let (_, batch) = a.core.take_save().expect("a request");
    assert!(batch.events.iter().all(|e| e.kind != Block));
    // An older copy of a record (a backlog written late) does not undo a newer report.
    let mut stale = a.core.state().devices[&device].clone();
    stale.last_seen -= 10;
    stale.version = Some("0.9.0".into());
    stale.sent = Some("1.1.0".into());
    a.core.handle(
        a.now,
        Input::Record {
            device: &device,
            record: &stale,
        },
    );
    let rec = &a.core.state().devices[&device];
    assert_eq!(rec.version.as_deref(), Some("1.0.0"));
    assert_eq!(rec.sent, None);
}

/// Batches carry only the records that changed and one history event per step; an unblock
/// from the store clears the block in memory without a block being written again.
#[test]
fn batches_hold_what_changed_and_an_unblock_from_the_store_is_honoured() {
    use crate::publish::store::HistoryKind::{Block, Offer, Revert, Transfer};
    let mut h = H::new(1, Limits::default());
    assert!(matches!(h.session("SN1", OLD, 1), Outcome::Updated(_)));
    assert!(matches!(h.session("SN2", OLD, 2), Outcome::Updated(_)));
    let (_, first) = h.core.take_save().expect("changes");
    assert_eq!(first.records.len(), 2);
    assert!(h.core.take_save().is_none(), "nothing new");
    assert_eq!(h.session("SN1", OLD, 3), Outcome::NoUpdate);
    let (_, b) = h.core.take_save().expect("the revert");
    let keys: Vec<&str> = b.records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [format!("{B}/SN1")], "only the device that changed");
    let kinds: Vec<_> = b.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Revert, Block]);
    let all: Vec<_> = first.events.iter().map(|e| e.kind).collect();
    assert_eq!(all, [Offer, Transfer, Offer, Transfer]);
    assert!(h.blocked("SN1"));
    let device = format!("{B}/SN1");
    let version = "1.1.0";
    h.core.handle(
        h.now,
        Input::Unblocked {
            device: &device,
            version,
        },
    );
    h.pump();
    assert!(!h.blocked("SN1"));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Unblocked { device: d, .. } if *d == device)));
    assert!(matches!(h.session("SN1", OLD, 4), Outcome::Updated(_)));
    let (_, b) = h.core.take_save().expect("offered again");
    assert!(b.events.iter().all(|e| e.kind != Block));
}

#[test]
fn replies_go_only_to_the_requesting_boards_unique_topic() {
    let mut h = H::new(1, Limits::default());
    let bad_topics = [
        format!("{P}/OTHER_BOARD/OTAImage/5"),
        format!("OtherPrefix/{B}/OTAImage/5"),
        format!("{P}/{B}/OTAImage"),
        format!("{P}/{B}/OTAImage/007"),
        format!("{P}/{B}/OTAImage/70000"),
        format!("{P}/{B}/OTAImage/5\u{ffff}"),
        format!("{P}/{B}/OTAImage/5\u{fdd0}"),
        format!("{P}/{B}/OTAImage/5/x"),
        "victim/device/inbox".to_string(),
    ];
    for (i, t) in bad_topics.iter().enumerate() {
        // Slower than the warning limit (20 per 10 s), so every one is shown.
        h.now += Duration::from_secs(4);
        for kind in [
            "Update Availability",
            "Request Update",
            "Request Data Chunk",
        ] {
            let doc = format!(
                r#"{{"Message":"{kind}", "SerialNumber": "X{i}", "Version": "1.0.0", "UniqueTopicName": "{t}"}}"#
            );
            h.feed(doc.as_bytes());
        }
    }
    assert!(h.pump().is_empty(), "nothing published");
    assert_eq!(h.warnings(), bad_topics.len() * 3, "one warning each");
    assert!(matches!(h.session("SN1", OLD, 1), Outcome::Updated(_)));
}

#[test]
fn a_flood_of_bad_input_is_summarised_not_repeated() {
    let mut h = H::new(1, Limits::default());
    for _ in 0..100 {
        h.core.handle(
            h.now,
            Input::Message {
                topic: &request_topic(),
                payload: b"x",
            },
        );
    }
    h.pump();
    assert_eq!(h.warnings(), 20);
    h.now += Duration::from_secs(10);
    h.feed(b"y");
    h.pump();
    let last: Vec<String> = h
        .events
        .iter()
        .rev()
        .take(2)
        .filter_map(|e| match e {
            Event::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        last.iter().any(|m| m.contains("80 more warnings")),
        "{last:?}"
    );
}

#[test]
fn results_belong_to_sessions_not_to_serials() {
    let mut h = H::new(1, Limits::default());
    assert!(matches!(h.session("SN1", OLD, 1), Outcome::Updated(_)));
    let mut b = [0u8; 256];
    // A forged Failure on a topic nobody is being served on: ignored.
    let n = encode_result(&mut b, false, &topic(999)).unwrap();
    h.feed(&b[..n]);
    assert!(h.pump().is_empty());
    assert!(!h.blocked("SN1"));
    // Failure on SN1's own session: blocks SN1 (identified) and answers "Result Received".
    let n = encode_result(&mut b, false, &topic(1)).unwrap();
    h.feed(&b[..n]);
    let replies = h.pump();
    assert_eq!(replies.len(), 1);
    assert!(h.blocked("SN1"));
    // A Failure on an unidentified device's session is recorded, never a block.
    assert!(matches!(
        h.session(TEMPLATE_SERIAL, OLD, 2),
        Outcome::Updated(_)
    ));
    let n = encode_result(&mut b, false, &topic(2)).unwrap();
    h.feed(&b[..n]);
    h.pump();
    assert!(!h.blocked(TEMPLATE_SERIAL));
    assert!(matches!(
        h.session(TEMPLATE_SERIAL, OLD, 3),
        Outcome::Updated(_)
    ));
}

#[test]
fn repeated_requests_cost_one_transfer_and_pushes_are_capped() {
    let limits = Limits {
        max_transfers: 4,
        max_waiting: 10,
        ..Limits::default()
    };
    let mut h = H::new(1, limits);
    for _ in 0..500 {
        h.ask(MessageKind::RequestUpdate, "SN1", OLD, 1);
    }
    assert_eq!(h.core.transfers(), (1, 0), "one stream per topic");
    let chunks = h.pump();
    assert_eq!(chunks.len(), IMAGE_LEN.div_ceil(4096), "the image once");
    // A device that asks again later (its data timeout) gets the stream restarted.
    h.ask(MessageKind::RequestUpdate, "SN2", OLD, 2);
    let first = h.core.poll_transmit(h.now).unwrap();
    h.core.handle(h.now, Input::Acked(first.tag));
    h.now += Duration::from_secs(6);
    h.ask(MessageKind::RequestUpdate, "SN2", OLD, 2);
    assert_eq!(
        h.pump().len(),
        IMAGE_LEN.div_ceil(4096),
        "restarted from the first chunk"
    );
    for t in 0..500u16 {
        h.ask(MessageKind::RequestUpdate, &format!("S{t}"), OLD, 1000 + t);
    }
    assert_eq!(
        h.core.transfers(),
        (4, 10),
        "4 running, 10 waiting, the rest refused"
    );
    let sent = h.pump();
    assert_eq!(sent.len(), 14 * IMAGE_LEN.div_ceil(4096));
}

#[test]
fn chunk_requests_are_rate_limited_per_topic_and_deferred_not_lost() {
    let limits = Limits {
        chunk_requests_per_sec: 10,
        ..Limits::default()
    };
    let mut h = H::new(1, limits);
    let id = DeviceIdentity {
        serial_number: "SN1",
        ..DeviceIdentity::APP
    };
    let mut b = [0u8; 1024];
    let v = AppVersion::new(1, 0, 0);
    let mut served = 0;
    for _ in 0..100 {
        let n = encode_chunk_request(&mut b, &id, v, &topic(1), "", 4096, 4096).unwrap();
        let t = request_topic();
        h.core.handle(
            h.now,
            Input::Message {
                topic: &t,
                payload: &b[..n],
            },
        );
        served += h.pump().len();
    }
    assert_eq!(
        served, 10,
        "a burst of one second's worth at the same instant"
    );
    h.now += Duration::from_secs(1);
    assert_eq!(
        h.pump().len(),
        1,
        "the latest deferred request is served when its turn comes"
    );
}

#[test]
fn a_push_cut_by_a_disconnect_resumes_but_does_not_count_for_reverts() {
    let mut h = H::new(1, Limits::default());
    h.ask(MessageKind::UpdateAvailability, "SN1", OLD, 1);
    h.pump();
    h.ask(MessageKind::RequestUpdate, "SN1", OLD, 1);
    // Two chunks go out; one is acknowledged, then the connection drops.
    let a = h.core.poll_transmit(h.now).unwrap();
    let _b = h.core.poll_transmit(h.now).unwrap();
    h.core.handle(h.now, Input::Acked(a.tag));
    h.core.handle(h.now, Input::Disconnected(0));
    assert!(
        h.core.poll_transmit(h.now).is_none(),
        "nothing while disconnected"
    );
    h.core.handle(h.now, Input::Connected(0));
    let rest = h.pump();
    assert_eq!(
        rest.len(),
        IMAGE_LEN.div_ceil(4096) - 1,
        "the unacknowledged rest"
    );
    // The device comes back on the old version: inconclusive, not a revert.
    assert!(matches!(h.session("SN1", OLD, 2), Outcome::Updated(_)));
    assert!(!h.blocked("SN1"));
}

#[test]
fn malformed_and_oversized_requests_are_one_warning_each() {
    let mut h = H::new(1, Limits::default());
    h.feed(&vec![b'{'; 1 << 20]);
    h.feed(b"not json");
    h.feed(br#"{"Message":"Request Update"}"#);
    h.feed(&[0xff, 0xfe, 0x00]);
    assert!(h.pump().is_empty());
    assert_eq!(h.warnings(), 4);
}

#[test]
fn a_serial_used_by_two_devices_at_once_becomes_unidentified() {
    let limits = Limits::default();
    let mut h = H::new(1, limits);
    h.ask(MessageKind::RequestUpdate, "DUP", OLD, 1);
    // Another device with the same serial asks while the first push is under way.
    h.ask(MessageKind::UpdateAvailability, "DUP", OLD, 2);
    h.pump();
    let rec = &h.core.state().devices[&format!("{B}/DUP")];
    assert!(rec.shared, "unidentified from now on");
    // Not blocked by a "revert" of either.
    assert!(matches!(h.session("DUP", OLD, 3), Outcome::Updated(_)));
    assert!(matches!(h.session("DUP", OLD, 4), Outcome::Updated(_)));
    assert!(!h.blocked("DUP"));
}

/// A device of the model fleet.
#[derive(Clone, Debug)]
struct Dev {
    /// 0: template serial, 1: own serial, 2: no serial.
    kind: u8,
    reverts: bool,
}

fn serial(d: &Dev, i: usize) -> String {
    match d.kind {
        0 => TEMPLATE_SERIAL.to_string(),
        1 => format!("SN-{i}"),
        _ => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random fleets asking in random order, with lost connections, publisher restarts, dropped
    /// and duplicated requests and forged results mixed in. Oracle: a device that keeps its update is updated at its first session; an
    /// identified device is refused exactly from its `block_after`-th revert on; an
    /// unidentified one is never refused; nothing is ever published to a topic that is not the
    /// asking session's.
    #[test]
    fn fleets_update_and_only_identified_reverters_are_blocked(
        fleet in prop::collection::vec((0u8..3, any::<bool>()), 1..12),
        order in prop::collection::vec(0usize..12, 1..40),
        cuts in prop::collection::vec(any::<bool>(), 40),
        forged in prop::collection::vec(any::<bool>(), 40),
        restarts in prop::collection::vec(prop::bool::weighted(0.1), 40),
        faults in prop::collection::vec(0u8..6, 40),
        block_after in 1u32..3,
    ) {
        let fleet: Vec<Dev> = fleet.into_iter().map(|(kind, reverts)| Dev { kind, reverts }).collect();
        let mut h = H::new(block_after, Limits::default());
        let mut running: Vec<(u16, u16, u16)> = vec![OLD; fleet.len()];
        let mut reverts = vec![0u32; fleet.len()];
        // Sent everything and came back on the old version; a lost publisher connection since
        // the send makes that report inconclusive (it does not count).
        let mut pending_revert = vec![false; fleet.len()];
        let mut cut_since = vec![false; fleet.len()];
        // Sent before a publisher restart: the restarted publisher does not know the epoch of
        // that send, so later cuts do not make the report inconclusive.
        let mut sent_before_restart = vec![false; fleet.len()];
        let mut tick = 0u16;
        for (step, i) in order.into_iter().enumerate() {
            let i = i % fleet.len();
            let d = &fleet[i];
            let s = serial(d, i);
            tick += 1;
            if cuts[step] {
                h.core.handle(h.now, Input::Disconnected(0));
                h.core.handle(h.now, Input::Connected(0));
                cut_since.iter_mut().for_each(|c| *c = true);
            }
            if restarts[step] {
                // The epoch of a send is not persisted: after a restart a report counts.
                h.restart();
                cut_since.iter_mut().for_each(|c| *c = false);
                for (b, p) in sent_before_restart.iter_mut().zip(&pending_revert) {
                    *b |= *p;
                }
            }
            let fault = match faults[step] {
                1 => Fault::DropAsk,
                2 => Fault::DuplicateAsk,
                3 => Fault::DuplicateRequest,
                _ => Fault::None,
            };
            if fault == Fault::DropAsk {
                prop_assert_eq!(h.session_with(&s, running[i], tick, fault), Outcome::Nothing);
                continue;
            }
            if std::mem::take(&mut pending_revert[i])
                && (!cut_since[i] || std::mem::take(&mut sent_before_restart[i]))
            {
                reverts[i] += 1;
            }
            sent_before_restart[i] = false;
            if forged[step] {
                let mut b = [0u8; 256];
                let n = encode_result(&mut b, false, &topic(60_000 + tick)).unwrap();
                h.feed(&b[..n]);
            }
            let before = h.sent.len();
            let got = h.session_with(&s, running[i], tick, fault);
            for t in &h.sent[before..] {
                prop_assert_eq!(&t.topic, &topic(tick), "published outside the session");
            }
            let identified = d.kind == 1;
            if running[i] == NEW {
                prop_assert_eq!(got, Outcome::NoUpdate);
                continue;
            }
            let refused = identified && reverts[i] >= block_after;
            if refused {
                prop_assert_eq!(got, Outcome::NoUpdate, "device {} should be blocked", i);
            } else {
                prop_assert_eq!(got, Outcome::Updated(expected_image()), "device {} should update", i);
                cut_since[i] = false;
                if d.reverts {
                    pending_revert[i] = true;
                } else {
                    running[i] = NEW;
                }
            }
        }
        for (i, d) in fleet.iter().enumerate() {
            if d.kind != 1 {
                prop_assert!(!h.blocked(&serial(d, i)), "unidentified device {} blocked", i);
            }
        }
    }
}

/// Runs the core on a simulated clock: everything it hands out is acknowledged at once; time
/// jumps to its next timeout when it has nothing to send. Returns the send times.
fn run_clock(core: &mut Core, start: Instant, limit: Duration) -> Vec<(Instant, Transmit)> {
    let mut now = start;
    let mut out = Vec::new();
    while now < start + limit {
        core.handle_timeout(now);
        while let Some(t) = core.poll_transmit(now) {
            core.handle(now, Input::Acked(t.tag));
            out.push((now, t));
        }
        match core.poll_timeout() {
            Some(t) if t > now => now = t,
            Some(_) => now += Duration::from_millis(1),
            None => break,
        }
    }
    out
}

fn max_in_any_second(times: &[Instant]) -> usize {
    let mut max = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= Duration::from_secs(1) {
            lo += 1;
        }
        max = max.max(hi - lo + 1);
    }
    max
}

fn request_all(core: &mut Core, now: Instant, devices: u16) {
    let mut b = [0u8; 1024];
    for d in 0..devices {
        let id = DeviceIdentity {
            serial_number: "X",
            ..DeviceIdentity::APP
        };
        let n = encode_request(
            &mut b,
            MessageKind::RequestUpdate,
            &id,
            AppVersion::new(1, 0, 0),
            &topic(d),
        )
        .unwrap();
        core.handle(
            now,
            Input::Message {
                topic: &request_topic(),
                payload: &b[..n],
            },
        );
    }
}

#[test]
fn the_aws_profile_never_exceeds_100_publishes_or_512_kib_a_second() {
    let p = crate::publish::Profile::AWS;
    let limits = Limits {
        publish_rate: p.publish_rate,
        bytes_rate: p.bytes_rate,
        burst: p.burst(),
        device_rate: p.device_rate,
        ..Limits::default()
    };
    let t0 = Instant::now();
    let mut core = core_with(1, limits, State::new(), 200_000);
    core.handle(t0, Input::Connected(0));
    request_all(&mut core, t0, 5);
    let sent = run_clock(&mut core, t0, Duration::from_secs(60));
    let chunks = 200_000usize.div_ceil(4096);
    assert_eq!(sent.len(), 5 * chunks, "every chunk of every push");
    let times: Vec<Instant> = sent.iter().map(|(t, _)| *t).collect();
    assert!(
        max_in_any_second(&times) <= 100,
        "{}",
        max_in_any_second(&times)
    );
    let bytes_in = |from: Instant| -> usize {
        sent.iter()
            .filter(|(t, _)| *t >= from && *t < from + Duration::from_secs(1))
            .map(|(_, x)| x.payload.len())
            .sum()
    };
    let worst = times.iter().map(|t| bytes_in(*t)).max().unwrap();
    assert!(worst <= 512 * 1024, "{worst} bytes in one second");
    // Bound: 245 chunks at 90/s (the budget left for a sliding-window checker) ≈ 2.7 s.
    let took = times.last().unwrap().duration_since(t0);
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Fair: every push got chunks out within the first second.
    let first_second: std::collections::HashSet<&str> = sent
        .iter()
        .filter(|(t, _)| t.duration_since(t0) < Duration::from_secs(1))
        .map(|(_, x)| x.topic.as_str())
        .collect();
    assert_eq!(first_second.len(), 5, "round robin");
}

#[test]
fn a_push_sends_its_burst_then_paces_to_the_device_rate() {
    let limits = Limits {
        burst: 10,
        device_rate: 10 * 4096,
        ..Limits::default()
    };
    let t0 = Instant::now();
    let mut core = core_with(1, limits, State::new(), 49 * 4096);
    core.handle(t0, Input::Connected(0));
    request_all(&mut core, t0, 1);
    let sent = run_clock(&mut core, t0, Duration::from_secs(60));
    assert_eq!(sent.len(), 49);
    let at_once = sent.iter().filter(|(t, _)| *t == t0).count();
    assert_eq!(at_once, 10, "the burst");
    let took = sent.last().unwrap().0.duration_since(t0);
    assert!(
        took >= Duration::from_millis(3800) && took <= Duration::from_millis(4100),
        "39 paced chunks at 10/s took {took:?}"
    );
}

#[test]
fn quota_exceeded_pauses_the_connection_and_resends_the_chunk() {
    let mut h = H::new(1, Limits::default());
    h.ask(MessageKind::RequestUpdate, "SN1", OLD, 1);
    let first = h.core.poll_transmit(h.now).unwrap();
    h.core
        .handle(h.now, Input::Refused(first.tag, Refusal::QuotaExceeded));
    assert!(h.core.poll_transmit(h.now).is_none(), "paused");
    let wake = h.core.poll_timeout().unwrap();
    assert!(wake > h.now);
    h.now = wake;
    let rest = h.pump();
    assert_eq!(
        rest.len(),
        IMAGE_LEN.div_ceil(4096),
        "the refused chunk is sent again"
    );
    assert_eq!(rest[0].payload, first.payload);
}

#[test]
fn pushes_spread_over_connections_and_stay_pinned() {
    let t0 = Instant::now();
    let image = Arc::new(ServedImage::for_tests(B, NEW, 40_000));
    let mut core = Core::new(
        CoreConfig {
            prefix: P.into(),
            template: JobTemplate::default(),
            block_after: 1,
            persisting: false,
            limits: Limits::default(),
            connections: 2,
        },
        HashMap::from([(B.to_string(), image)]),
        State::new(),
    );
    core.handle(t0, Input::Connected(0));
    core.handle(t0, Input::Connected(1));
    request_all(&mut core, t0, 4);
    let mut by_topic: HashMap<String, std::collections::HashSet<usize>> = HashMap::new();
    // Connection 1 drops after its first transmit: its pushes wait, connection 0 goes on.
    let mut dropped = false;
    while let Some(t) = core.poll_transmit(t0) {
        by_topic.entry(t.topic.clone()).or_default().insert(t.conn);
        if t.conn == 1 && !dropped {
            core.handle(t0, Input::Disconnected(1));
            dropped = true;
            continue;
        }
        core.handle(t0, Input::Acked(t.tag));
    }
    core.handle(t0, Input::Connected(1));
    let rest = run_clock(&mut core, t0, Duration::from_secs(10));
    assert!(
        rest.iter().all(|(_, t)| t.conn == 1),
        "the rest goes on connection 1"
    );
    assert!(!rest.is_empty());
    for (_, t) in &rest {
        by_topic.entry(t.topic.clone()).or_default().insert(t.conn);
    }
    assert!(
        by_topic.values().all(|c| c.len() == 1),
        "pinned: {by_topic:?}"
    );
    let on = |c: usize| by_topic.values().filter(|s| s.contains(&c)).count();
    assert_eq!((on(0), on(1)), (2, 2), "spread evenly");
}

#[test]
fn a_full_window_waits_for_acknowledgements_without_a_timer() {
    let limits = Limits {
        window: 2,
        ..Limits::default()
    };
    let mut h = H::new(1, limits);
    h.ask(MessageKind::RequestUpdate, "SN1", OLD, 1);
    let a = h.core.poll_transmit(h.now).unwrap();
    let _b = h.core.poll_transmit(h.now).unwrap();
    assert!(h.core.poll_transmit(h.now).is_none(), "window full");
    assert!(
        h.core.poll_timeout().is_none_or(|t| t > h.now),
        "no timer due now: it would fire at once and spin"
    );
    h.core.handle(h.now, Input::Acked(a.tag));
    assert!(h.core.poll_transmit(h.now).is_some());
}

/// A replica killed after sending the whole image but before writing it down: its record
/// (offered, no transfer) reaches another replica, where the device reports the new version.
/// The history still gets a transfer, marked as inferred, before the result.
#[test]
fn a_transfer_nobody_recorded_is_inferred_when_the_device_reports_the_new_version() {
    use crate::publish::store::HistoryKind::{Offer, Result, Transfer};
    let mut a = H::new(1, Limits::default());
    let mut b = H::new(1, Limits::default());
    assert!(matches!(a.session("SN1", OLD, 1), Outcome::Updated(_)));
    let (_, batch) = a.core.take_save().expect("changes");
    for (device, record) in &batch.records {
        // What A had written before it sent the image: the offer only.
        let mut unsent = record.clone();
        unsent.sent = None;
        b.core.handle(
            b.now,
            Input::Record {
                device,
                record: &unsent,
            },
        );
    }
    assert_eq!(b.session("SN1", NEW, 2), Outcome::NoUpdate);
    let (_, batch) = b.core.take_save().expect("the result");
    let kinds: Vec<_> = batch.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Transfer, Result]);
    assert_eq!(batch.events[0].detail, super::INFERRED_TRANSFER);
    assert_eq!(batch.events[1].detail, "updated");
    // A transfer that was recorded is not inferred again.
    let mut c = H::new(1, Limits::default());
    assert!(matches!(c.session("SN2", OLD, 3), Outcome::Updated(_)));
    let _ = c.core.take_save();
    assert_eq!(c.session("SN2", NEW, 4), Outcome::NoUpdate);
    let (_, batch) = c.core.take_save().expect("the result");
    let kinds: Vec<_> = batch.events.iter().map(|e| e.kind).collect();
    assert!(
        !kinds.contains(&Transfer) && kinds.contains(&Result),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&Offer));
}
