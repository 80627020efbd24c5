//! Model-based property test of the OTA agent: random sequences of {deliver, duplicate,
//! reorder, drop, corrupt, reconnect, time passes, reset, power cut mid flash operation}
//! between the agent and the reference publisher. Invariants, checked after every step against the reference model (the image):
//!
//! - the bytes the agent has written are a bit-exact prefix of the image (unless a corrupted
//!   chunk was injected);
//! - whenever the agent asks for a reboot, the secondary slot holds the image bit-exact and is
//!   marked pending: a corrupt image is never marked pending;
//! - otherwise the download is reported incomplete (`received < total`, no pending mark);
//! - after the faults stop, a clean network completes the update.

mod common;

use std::collections::VecDeque;

use common::publisher::{agent_config, outbound, run, End, Publisher};
use common::{app, public_key, sim_map};
use ota_core::agent::{Agent, BootReport, Delivery, Inbound, Phase};
use ota_core::image::trailer::MagicState;
use ota_core::image::trailer::TrailerState;
use ota_core::protocol::{decode_request, AppVersion, ChunkSize, MessageKind};
use ota_host::sim::SimDevice;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Deliver,
    Duplicate,
    Reorder,
    Drop,
    Corrupt(u16),
    Reconnect,
    Tick,
    Reset,
    /// Cut the power during one of the next few flash operations.
    PowerCut(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Deliver),
        2 => Just(Op::Duplicate),
        2 => Just(Op::Reorder),
        2 => Just(Op::Drop),
        1 => any::<u16>().prop_map(Op::Corrupt),
        1 => Just(Op::Reconnect),
        2 => Just(Op::Tick),
        1 => Just(Op::Reset),
        1 => any::<u8>().prop_map(Op::PowerCut),
    ]
}

const V10: AppVersion = AppVersion::new(1, 0, 0);
const V11: AppVersion = AppVersion::new(1, 1, 0);

struct World {
    dev: SimDevice,
    publ: Publisher,
    queue: VecDeque<Vec<u8>>,
    now: u64,
    corrupted: bool,
    tick: u32,
    push: bool,
}

impl World {
    fn agent<'k>(&mut self, keys: &'k [ota_core::image::verify::PublicKey]) -> Agent<'k> {
        self.tick += 1;
        let mut cfg = agent_config(self.dev.map, keys, V10);
        if self.push {
            cfg.delivery = Delivery::Push;
        }
        let mut a = Agent::new(cfg, self.tick).unwrap();
        let r = a
            .on_boot(&mut self.dev.primary, &mut self.dev.secondary)
            .unwrap();
        assert_ne!(r, BootReport::AwaitingConfirm);
        a
    }

    fn absorb(&mut self, out: Option<Result<Vec<u8>, ()>>) {
        if let Some(Ok(p)) = out {
            self.queue.extend(self.publ.reply(&p));
        }
    }

    fn check(&mut self, agent: &Agent<'_>) -> Result<(), TestCaseError> {
        let img = &self.publ.image;
        let st = agent.status();
        let layout = self.dev.secondary_layout();
        let sec = TrailerState::read(&mut self.dev.secondary, &layout).unwrap();
        if st.phase == Phase::ReadyToReboot || sec.magic == MagicState::Good {
            prop_assert!(
                self.dev.secondary.data()[..img.len()] == img[..],
                "pending image not bit-exact"
            );
            prop_assert_eq!(sec.magic, MagicState::Good);
        } else if !self.corrupted {
            let w = layout.write_align as usize;
            let n = (st.received as usize / w * w).min(img.len());
            prop_assert!(
                self.dev.secondary.data()[..n] == img[..n],
                "written prefix differs"
            );
            prop_assert!(
                !matches!(st.total, Some(t) if st.received >= t),
                "complete but not pending"
            );
        }
        Ok(())
    }
}

fn step<'k>(
    w: &mut World,
    agent: &mut Agent<'k>,
    keys: &'k [ota_core::image::verify::PublicKey],
    op: Op,
) -> Result<bool, TestCaseError> {
    let topic = agent.unique_topic().to_string();
    match op {
        Op::Deliver | Op::Corrupt(_) => {
            let Some(mut msg) = w.queue.pop_front() else {
                return Ok(false);
            };
            if let Op::Corrupt(k) = op {
                if msg.len() > 32 {
                    let i = 32 + usize::from(k) % (msg.len() - 32);
                    msg[i] ^= 0x10;
                    w.corrupted = true;
                }
            }
            let inbound = Inbound::Publish {
                topic: &topic,
                payload: &msg,
            };
            match agent.handle(w.now, inbound, &mut w.dev.secondary) {
                Ok(o) => w.absorb(outbound(o)),
                Err(_) => return Ok(true),
            }
        }
        Op::Duplicate => {
            if let Some(m) = w.queue.front().cloned() {
                w.queue.push_front(m);
            }
        }
        Op::Reorder => {
            if let Some(m) = w.queue.pop_front() {
                w.queue.push_back(m);
            }
        }
        Op::Drop => {
            w.queue.pop_front();
        }
        Op::Reconnect => match agent.handle(w.now, Inbound::Connected, &mut w.dev.secondary) {
            Ok(o) => w.absorb(outbound(o)),
            Err(_) => return Ok(true),
        },
        Op::Tick => {
            w.now += 4000;
            match agent.poll(w.now, &mut w.dev.secondary) {
                Ok(o) => w.absorb(outbound(o)),
                Err(_) => return Ok(true),
            }
        }
        Op::Reset => {
            w.queue.clear();
            if agent.status().phase != Phase::ReadyToReboot {
                if w.dev.boot(keys, true).is_err() {
                    return Ok(true);
                }
                *agent = w.agent(keys);
            }
        }
        Op::PowerCut(n) => w.dev.rail.cut_after(u64::from(n % 6)),
    }
    Ok(false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn agent_matches_reference_model(ops in proptest::collection::vec(op(), 1..80), zero_erased in any::<bool>(), push in any::<bool>()) {
        let name = if zero_erased { "psoc62_2m_int_swap_sim.json" } else { "xmcsim_int_swap_sim.json" };
        let keys = [public_key(0)];
        let mut w = World {
            dev: common::device_with(sim_map(name), &app(1, 0, 1500)),
            publ: Publisher::new(app(1, 1, 2100), V11),
            queue: VecDeque::new(),
            now: 0,
            corrupted: false,
            tick: 0,
            push,
        };
        let mut agent = w.agent(&keys);
        let mut installed = false;
        for op in ops {
            if step(&mut w, &mut agent, &keys, op)? {
                // Power lost: the queue is gone, the device reboots, a new agent starts.
                w.queue.clear();
                w.dev.rail.restore();
                let out = w.dev.boot(&keys, true).unwrap();
                if out.image.header.version.minor == 1 {
                    installed = true; // the bootloader installed a pending image
                    break;
                }
                agent = w.agent(&keys);
            }
            w.check(&agent)?;
        }
        w.dev.rail.restore();
        if !installed {
            // Faults stop: a clean network must finish the update.
            if agent.status().phase != Phase::ReadyToReboot {
                let end = run(&mut agent, &mut w.dev.secondary, &w.publ, &mut w.now, 300).unwrap();
                prop_assert_eq!(end, End::Reboot, "{:?}", agent.status());
            }
            w.check(&agent)?;
            let out = w.dev.boot(&keys, true).unwrap();
            prop_assert_eq!(out.image.header.version.minor, 1);
        }
        let img = &w.publ.image;
        prop_assert!(w.dev.primary.data()[..img.len()] == img[..], "installed image not bit-exact");
    }
}

/// Random bytes sprinkled over the trailers, status records, headers and journal of both
/// slots: the bootloader and the agent's boot check return `Ok` or `Err`, never panic, and
/// whatever they leave behind boots the same way twice.
fn scribble(data: &mut SimDevice, spots: &[(bool, u16, u8)]) {
    for &(secondary, at, v) in spots {
        let flash = if secondary {
            &mut data.secondary
        } else {
            &mut data.primary
        };
        let size = flash.data().len();
        // Bias towards the interesting ends: header and trailer.
        let off = if at % 2 == 0 {
            usize::from(at) % 256
        } else {
            size - 1 - usize::from(at) % 2048
        };
        flash.program(off as u32, &[v]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn boot_and_agent_never_panic_on_scribbled_flash(
        spots in proptest::collection::vec((any::<bool>(), any::<u16>(), any::<u8>()), 0..40),
        pending in any::<bool>(),
        zero_erased in any::<bool>(),
    ) {
        let name = if zero_erased { "psoc62_2m_int_swap_sim.json" } else { "xmcsim_int_overwrite_sim.json" };
        let keys = [public_key(0)];
        let mut dev = common::device_with(sim_map(name), &app(1, 0, 1500));
        if pending {
            dev.secondary.program(0, &app(1, 1, 2100));
            let layout = dev.secondary_layout();
            let _ = ota_core::boot::app::set_pending(&mut dev.secondary, &layout, false);
        }
        scribble(&mut dev, &spots);
        let first = dev.boot(&keys, true).map(|o| o.image.hash);
        if first.is_ok() {
            let second = dev.boot(&keys, false).map(|o| o.image.hash);
            prop_assert!(second.is_ok());
        }
        let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).unwrap();
        let _ = agent.on_boot(&mut dev.primary, &mut dev.secondary);
    }

    #[test]
    fn agent_never_panics_on_arbitrary_messages(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
    ) {
        let keys = [public_key(0)];
        let mut dev = common::device_with(sim_map("xmcsim_int_swap_sim.json"), &app(1, 0, 1500));
        let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let publ = Publisher::new(app(1, 1, 2100), V11);
        let topic = agent.unique_topic().to_string();
        let _ = agent.poll(1000, &mut dev.secondary).unwrap();
        // Into the download state, then garbage (and a few real chunks with garbage data).
        let job = publ.job();
        let _ = agent.handle(1000, Inbound::Publish { topic: &topic, payload: &job }, &mut dev.secondary).unwrap();
        for (i, m) in msgs.iter().enumerate() {
            let mut payload = m.clone();
            if i % 3 == 0 {
                let mut chunk = publ.chunk_at(0, 256);
                chunk.truncate(32);
                chunk.extend_from_slice(m);
                payload = chunk;
            }
            let _ = agent.handle(2000, Inbound::Publish { topic: &topic, payload: &payload }, &mut dev.secondary).unwrap();
        }
        prop_assert_ne!(agent.status().phase, Phase::ReadyToReboot);
    }
}

/// Hands a chunk to the agent; returns what it published.
fn deliver(agent: &mut Agent<'_>, dev: &mut SimDevice, now: u64, msg: &[u8]) -> Option<Vec<u8>> {
    let topic = agent.unique_topic().to_string();
    let inbound = Inbound::Publish {
        topic: &topic,
        payload: msg,
    };
    outbound(agent.handle(now, inbound, &mut dev.secondary).unwrap()).and_then(Result::ok)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A download cut anywhere resumes against a publisher that only pushes: the chunk
    /// requests ask for exact sizes (never `-1`) and go unanswered; after `max_retries` of them
    /// the agent sends "Request Update" and the push completes the image bit-exact.
    #[test]
    fn resumed_download_completes_against_a_push_only_publisher(
        len in 600usize..3000, cut_pct in 1u32..100, push in any::<bool>()
    ) {
        const V10: AppVersion = AppVersion::new(1, 0, 0);
        let (old, new) = (app(1, 0, 1500), app(1, 1, len));
        let publ = Publisher::new(new.clone(), AppVersion::new(1, 1, 0));
        let keys = [public_key(0)];
        let mut dev = common::device_with(sim_map("psoc62_2m_int_swap_sim.json"), &old);
        let mut cfg = agent_config(dev.map, &keys, V10);
        if push {
            cfg.delivery = Delivery::Push;
        }
        let total = new.len() as u32;
        let mut agent = Agent::new(cfg, 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let ask = outbound(agent.poll(1000, &mut dev.secondary).unwrap()).unwrap().unwrap();
        deliver(&mut agent, &mut dev, 1000, &publ.reply(&ask)[0]);
        // In order up to the cut, never the last chunk (that would finish the download).
        for off in (0..total * cut_pct / 100).step_by(256).filter(|o| o + 256 < total) {
            deliver(&mut agent, &mut dev, 1000, &publ.chunk_at(off, 256));
        }
        drop(agent);
        dev.boot(&keys, true).unwrap();
        let mut agent = Agent::new(cfg, 2).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let mut now = 2000;
        let ask = outbound(agent.poll(now, &mut dev.secondary).unwrap()).unwrap().unwrap();
        let mut req = deliver(&mut agent, &mut dev, now, &publ.reply(&ask)[0]).unwrap();
        let mut asked = 0;
        while decode_request(&req).unwrap().kind == MessageKind::RequestDataChunk {
            let r = decode_request(&req).unwrap();
            let at = agent.status().received;
            prop_assert_eq!(r.offset, Some(u64::from(at)));
            prop_assert_eq!(r.size, Some(ChunkSize::Bytes(u64::from((total - at).min(256)))));
            asked += 1;
            prop_assert!(asked <= 6, "never fell back");
            now += 3000;
            req = outbound(agent.poll(now, &mut dev.secondary).unwrap()).unwrap().unwrap();
        }
        prop_assert_eq!(asked, 6);
        prop_assert_eq!(decode_request(&req).unwrap().kind, MessageKind::RequestUpdate);
        for c in publ.reply(&req) {
            now += 10;
            deliver(&mut agent, &mut dev, now, &c);
        }
        prop_assert_eq!(agent.status().phase, Phase::ReadyToReboot);
        prop_assert!(common::holds(dev.secondary.data(), &new));
    }
}
