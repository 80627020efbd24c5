//! Model-based property test of the OTA agent: random sequences of {deliver, duplicate,
//! reorder, drop, corrupt, reconnect, time passes, reset} between the agent and the reference
//! publisher. Invariants, checked after every step against the reference model (the image):
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
use firmware::agent::{Agent, BootReport, Delivery, Inbound, Phase};
use firmware::boot::swap_type::SlotState;
use firmware::image::trailer::MagicState;
use firmware::protocol::AppVersion;
use firmware::sim::SimDevice;
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
    fn agent<'k>(&mut self, keys: &'k [firmware::image::verify::PublicKey]) -> Agent<'k> {
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
        let sec = SlotState::read(&mut self.dev.secondary, &layout).unwrap();
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
    keys: &'k [firmware::image::verify::PublicKey],
    op: Op,
) -> Result<(), TestCaseError> {
    let topic = agent.unique_topic().to_string();
    match op {
        Op::Deliver | Op::Corrupt(_) => {
            let Some(mut msg) = w.queue.pop_front() else {
                return Ok(());
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
            let out = outbound(agent.handle(w.now, inbound, &mut w.dev.secondary).unwrap());
            w.absorb(out);
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
        Op::Reconnect => {
            let out = outbound(
                agent
                    .handle(w.now, Inbound::Connected, &mut w.dev.secondary)
                    .unwrap(),
            );
            w.absorb(out);
        }
        Op::Tick => {
            w.now += 4000;
            let out = outbound(agent.poll(w.now, &mut w.dev.secondary).unwrap());
            w.absorb(out);
        }
        Op::Reset => {
            w.queue.clear();
            if agent.status().phase != Phase::ReadyToReboot {
                w.dev.boot(keys, true).unwrap();
                *agent = w.agent(keys);
            }
        }
    }
    Ok(())
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
        for op in ops {
            step(&mut w, &mut agent, &keys, op)?;
            w.check(&agent)?;
        }
        // Faults stop: a clean network must finish the update.
        if agent.status().phase != Phase::ReadyToReboot {
            let end = run(&mut agent, &mut w.dev.secondary, &w.publ, &mut w.now, 300).unwrap();
            prop_assert_eq!(end, End::Reboot, "{:?}", agent.status());
        }
        w.check(&agent)?;
        let out = w.dev.boot(&keys, true).unwrap();
        prop_assert_eq!(out.image.header.version.minor, 1);
    }
}
