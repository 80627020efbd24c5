//! OTA agent scenarios against the reference publisher: full update, push mode, resume after a
//! reset, and the rejections (tampered, wrong key, wrong board, downgrade).

mod common;

use common::publisher::{agent_config, outbound, run, run_limited, End, Publisher};
use common::{app, holds, public_key, sim_map, SIM_MAPS};
use ota_core::agent::{Agent, BootReport, Delivery, Inbound, Outbound, Phase};
use ota_core::image::trailer::SwapType;
use ota_core::protocol::{decode_request, AppVersion, ChunkSize, ErrorCode, MessageKind};
use ota_host::sim::SimDevice;

const V10: AppVersion = AppVersion::new(1, 0, 0);
const V11: AppVersion = AppVersion::new(1, 1, 0);

fn keys() -> [ota_core::image::verify::PublicKey; 1] {
    [public_key(0)]
}

/// Downloads `publ` on a device running 1.0.0; returns how the session ended.
fn download(dev: &mut SimDevice, publ: &Publisher, push: bool) -> (End, Option<ErrorCode>) {
    download_steps(dev, publ, push, 200)
}

fn download_steps(
    dev: &mut SimDevice,
    publ: &Publisher,
    push: bool,
    steps: u32,
) -> (End, Option<ErrorCode>) {
    let keys = keys();
    let mut cfg = agent_config(dev.map, &keys, V10);
    if push {
        cfg.delivery = Delivery::Push;
    }
    let mut agent = Agent::new(cfg, 4242).unwrap();
    assert_eq!(
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap(),
        BootReport::Normal
    );
    let mut now = 0;
    let end = run(&mut agent, &mut dev.secondary, publ, &mut now, steps).unwrap();
    (end, agent.status().last_error)
}

#[test]
fn full_update_downloads_swaps_confirms_and_reports_success() {
    for name in SIM_MAPS {
        let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
        let mut dev = common::device_with(sim_map(name), &old);
        let publ = Publisher::new(new.clone(), V11);
        assert_eq!(download(&mut dev, &publ, false).0, End::Reboot, "{name}");
        assert!(holds(dev.secondary.data(), &new));
        let out = dev.boot(&keys(), true).unwrap();
        assert_eq!(out.swap_type, SwapType::Test, "{name}");
        assert!(holds(dev.primary.data(), &new));
        let keys = keys();
        let mut agent = Agent::new(agent_config(dev.map, &keys, V11), 7).unwrap();
        let report = agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        // Swap: a test image to confirm; overwrite: a fresh install to confirm and report.
        assert_eq!(report, BootReport::AwaitingConfirm, "{name}");
        let msg = outbound(agent.confirm(0, &mut dev.primary).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(decode_request(&msg).unwrap().kind, MessageKind::Success);
        let mut again = Agent::new(agent_config(dev.map, &keys, V11), 8).unwrap();
        let report = again.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        assert_eq!(report, BootReport::Normal, "{name}: confirmed once");
        assert_eq!(dev.boot(&keys, true).unwrap().swap_type, SwapType::None);
        assert!(
            holds(dev.primary.data(), &new),
            "{name}: confirmed image stays"
        );
    }
}

#[test]
fn push_mode_download_completes() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let mut dev = common::device_with(sim_map(SIM_MAPS[0]), &old);
    let publ = Publisher::new(new.clone(), V11);
    assert_eq!(download(&mut dev, &publ, true).0, End::Reboot);
    assert!(holds(dev.secondary.data(), &new));
}

fn rejected(name: &str, publ: &Publisher, code: ErrorCode) {
    let old = app(1, 0, 1500);
    let mut dev = common::device_with(sim_map(name), &old);
    let (end, err) = download_steps(&mut dev, publ, false, 20);
    assert_eq!((end, err), (End::Stalled, Some(code)), "{name}");
    assert_eq!(dev.boot(&keys(), true).unwrap().swap_type, SwapType::None);
    assert!(
        holds(dev.primary.data(), &old),
        "{name}: old image stays bootable"
    );
}

#[test]
fn tampered_image_is_rejected() {
    for name in SIM_MAPS {
        let mut new = app(1, 1, 2100);
        new[0x300] ^= 0x08;
        rejected(
            name,
            &Publisher::new(new, V11),
            ErrorCode::ImageHashMismatch,
        );
    }
}

#[test]
fn wrong_key_image_is_rejected() {
    for name in SIM_MAPS {
        let new = common::image(
            &common::signing_key(5),
            ota_core::image::Version::new(1, 1, 0),
            2000,
            9,
        );
        rejected(name, &Publisher::new(new, V11), ErrorCode::ImageUnknownKey);
    }
}

#[test]
fn wrong_board_job_is_rejected() {
    for name in SIM_MAPS {
        let mut publ = Publisher::new(app(1, 1, 2100), V11);
        publ.board = "APP_OTHER_BOARD".into();
        rejected(name, &publ, ErrorCode::WrongBoard);
    }
}

#[test]
fn redirect_to_another_broker_is_refused() {
    let mut publ = Publisher::new(app(1, 1, 2100), V11);
    publ.broker = Some("elsewhere.example".into());
    rejected(SIM_MAPS[0], &publ, ErrorCode::ChangingServer);
}

#[test]
fn downgrade_job_and_downgrade_image_are_rejected() {
    for name in SIM_MAPS {
        rejected(
            name,
            &Publisher::new(app(0, 9, 2100), AppVersion::new(0, 9, 0)),
            ErrorCode::InvalidVersion,
        );
        // The job claims a newer version but the signed image inside is older.
        rejected(
            name,
            &Publisher::new(app(0, 9, 2100), V11),
            ErrorCode::InvalidVersion,
        );
    }
}

#[test]
fn reset_mid_download_resumes_from_persisted_progress() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let mut dev = common::device_with(sim_map(SIM_MAPS[2]), &old);
    let publ = Publisher::new(new.clone(), V11);
    let keys = keys();
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).unwrap();
    assert!(
        agent.poll(1000, &mut dev.secondary).unwrap().is_none(),
        "nothing before on_boot"
    );
    agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
    let mut now = 0;
    // Deliver only the job and four chunks, then "reset".
    let mut pending = Vec::new();
    now += 1000;
    let req = outbound(agent.poll(now, &mut dev.secondary).unwrap())
        .unwrap()
        .unwrap();
    pending.extend(publ.reply(&req));
    for _ in 0..5 {
        let msg = pending.remove(0);
        let topic = agent.unique_topic().to_string();
        let inbound = Inbound::Publish {
            topic: &topic,
            payload: &msg,
        };
        if let Some(Ok(p)) = outbound(agent.handle(now, inbound, &mut dev.secondary).unwrap()) {
            pending.extend(publ.reply(&p));
        }
    }
    assert_eq!(agent.status().received, 4 * 256);
    drop(agent);
    dev.boot(&keys, true).unwrap();
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 2).unwrap();
    agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
    assert_eq!(
        run(&mut agent, &mut dev.secondary, &publ, &mut now, 200).unwrap(),
        End::Reboot
    );
    assert_eq!(agent.status().resumed_from, Some(4 * 256));
    assert!(holds(dev.secondary.data(), &new));
}

#[test]
fn no_update_check_while_a_test_image_awaits_confirmation() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let mut dev = common::device_with(sim_map(SIM_MAPS[0]), &old);
    let publ = Publisher::new(new, V11);
    download(&mut dev, &publ, false);
    dev.boot(&keys(), true).unwrap();
    let keys = keys();
    let mut agent = Agent::new(agent_config(dev.map, &keys, V11), 7).unwrap();
    agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
    assert!(agent.poll(1_000_000, &mut dev.secondary).unwrap().is_none());
    assert_eq!(agent.status().phase, Phase::AwaitingConfirm);
}

#[test]
fn reverted_update_is_reported_once() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let mut dev = common::device_with(sim_map(SIM_MAPS[0]), &old);
    download(&mut dev, &Publisher::new(new, V11), false);
    dev.boot(&keys(), true).unwrap(); // test swap
    assert_eq!(dev.boot(&keys(), true).unwrap().swap_type, SwapType::Revert);
    let keys = keys();
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 7).unwrap();
    assert_eq!(
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap(),
        BootReport::Reverted
    );
    let msg = outbound(agent.report_reverted(&mut dev.secondary).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(decode_request(&msg).unwrap().kind, MessageKind::Failure);
    assert_eq!(agent.status().last_error, Some(ErrorCode::ImageReverted));
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 8).unwrap();
    assert_eq!(
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap(),
        BootReport::Normal
    );
}

#[test]
fn file_backed_board_loop_survives_restarts() {
    // What a simulated board process does: open its flash files, boot, run the agent; the
    // "process" restarts (re-open) after the reboot request and after a reset mid-download.
    let dir = tempfile::tempdir().unwrap();
    let map = sim_map(SIM_MAPS[0]);
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    SimDevice::open(dir.path(), map, 1)
        .unwrap()
        .primary
        .program(0, &old);
    let publ = Publisher::new(new.clone(), V11);
    let keys = keys();
    let mut now = 0;
    {
        let mut dev = SimDevice::open(dir.path(), map, 1).unwrap();
        assert_eq!(dev.boot(&keys, true).unwrap().image.header.version.minor, 0);
        let mut agent = Agent::new(agent_config(map, &keys, V10), 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        // Only a few timer ticks: the download is cut short by a "reset".
        let end = run_limited(&mut agent, &mut dev.secondary, &publ, &mut now, 1, 4);
        assert_eq!(end.unwrap(), End::Stalled);
        assert_eq!(agent.status().phase, Phase::Downloading);
    }
    {
        let mut dev = SimDevice::open(dir.path(), map, 2).unwrap();
        dev.boot(&keys, true).unwrap();
        let mut agent = Agent::new(agent_config(map, &keys, V10), 2).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        assert_eq!(
            run(&mut agent, &mut dev.secondary, &publ, &mut now, 50).unwrap(),
            End::Reboot
        );
    }
    let mut dev = SimDevice::open(dir.path(), map, 3).unwrap();
    assert_eq!(dev.boot(&keys, true).unwrap().swap_type, SwapType::Test);
    let mut agent = Agent::new(agent_config(map, &keys, V11), 3).unwrap();
    assert_eq!(
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap(),
        BootReport::AwaitingConfirm
    );
    agent.confirm(now, &mut dev.primary).unwrap();
    drop(dev);
    let mut dev = SimDevice::open(dir.path(), map, 4).unwrap();
    assert_eq!(dev.boot(&keys, true).unwrap().swap_type, SwapType::None);
    assert!(holds(dev.primary.data(), &new));
}

/// Hands `msg` to the agent at `now`; returns what it published (`None`: nothing, or a reboot).
fn feed(agent: &mut Agent<'_>, dev: &mut SimDevice, now: u64, msg: &[u8]) -> Option<Vec<u8>> {
    let topic = agent.unique_topic().to_string();
    let inbound = Inbound::Publish {
        topic: &topic,
        payload: msg,
    };
    outbound(agent.handle(now, inbound, &mut dev.secondary).unwrap()).and_then(Result::ok)
}

/// Replies to every request at once (the clock never moves) until the agent stops asking.
fn pull_chain(
    agent: &mut Agent<'_>,
    dev: &mut SimDevice,
    publ: &Publisher,
    now: u64,
    first: Vec<u8>,
) {
    let mut req = Some(first);
    for _ in 0..100 {
        let Some(r) = req.take() else { break };
        assert_eq!(
            decode_request(&r).unwrap().kind,
            MessageKind::RequestDataChunk
        );
        for chunk in publ.reply(&r) {
            req = feed(agent, dev, now, &chunk).or(req);
        }
    }
    assert_eq!(agent.status().phase, Phase::ReadyToReboot);
}

#[test]
fn push_download_that_had_to_ask_pulls_the_rest_without_waiting_for_timeouts() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let publ = Publisher::new(new.clone(), V11);
    let keys = keys();
    for resumed in [false, true] {
        let mut dev = common::device_with(sim_map(SIM_MAPS[2]), &old);
        let mut agent = Agent::new(agent_config_push(dev.map, &keys), 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let mut now = 1000;
        let ask = outbound(agent.poll(now, &mut dev.secondary).unwrap()).unwrap();
        let job = publ.reply(&ask.unwrap()).remove(0);
        let update = feed(&mut agent, &mut dev, now, &job).unwrap();
        assert_eq!(
            decode_request(&update).unwrap().kind,
            MessageKind::RequestUpdate
        );
        let chunks = publ.reply(&update);
        // The push loses the third chunk: the rest comes "from the future" and is dropped.
        for c in chunks.iter().take(2).chain(&chunks[3..]) {
            assert!(feed(&mut agent, &mut dev, now, c).is_none());
        }
        assert_eq!(agent.status().received, 2 * 256);
        let first = if resumed {
            // A reset, then the same job again: the download resumes by pulling.
            drop(agent);
            dev.boot(&keys, true).unwrap();
            agent = Agent::new(agent_config_push(dev.map, &keys), 2).unwrap();
            agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
            now += 1000;
            let ask = outbound(agent.poll(now, &mut dev.secondary).unwrap()).unwrap();
            let job = publ.reply(&ask.unwrap()).remove(0);
            feed(&mut agent, &mut dev, now, &job).unwrap()
        } else {
            // No chunk within the timeout: the agent asks for the missing one.
            now += 3000;
            outbound(agent.poll(now, &mut dev.secondary).unwrap())
                .unwrap()
                .unwrap()
        };
        pull_chain(&mut agent, &mut dev, &publ, now, first);
        assert!(holds(dev.secondary.data(), &new), "resumed: {resumed}");
    }
}

fn agent_config_push<'a>(
    map: ota_core::flashmap::FlashMap,
    keys: &'a [ota_core::image::verify::PublicKey],
) -> ota_core::agent::AgentConfig<'a> {
    let mut c = agent_config(map, keys, V10);
    c.delivery = Delivery::Push;
    c
}

/// Every chunk request asks for a byte count, the last one exactly what is left (never `-1`,
/// which publisher.py cannot serve).
#[test]
fn chunk_requests_ask_for_the_exact_size_of_the_last_chunk() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let publ = Publisher::new(new.clone(), V11);
    let keys = keys();
    let mut dev = common::device_with(sim_map(SIM_MAPS[2]), &old);
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).unwrap();
    agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
    let ask = outbound(agent.poll(1000, &mut dev.secondary).unwrap()).unwrap();
    let job = publ.reply(&ask.unwrap()).remove(0);
    let mut req = feed(&mut agent, &mut dev, 1000, &job);
    let mut sizes = Vec::new();
    while let Some(r) = req.take() {
        let d = decode_request(&r).unwrap();
        assert_eq!(d.kind, MessageKind::RequestDataChunk);
        sizes.push((d.offset.unwrap(), d.size.unwrap()));
        for c in publ.reply(&r) {
            req = feed(&mut agent, &mut dev, 1000, &c).or(req);
        }
    }
    assert_eq!(agent.status().phase, Phase::ReadyToReboot);
    let total = new.len() as u64;
    assert_ne!(total % 256, 0, "the image must end in a partial chunk");
    let (last, full) = sizes.split_last().unwrap();
    assert_eq!(full.len() as u64, total / 256);
    assert!(full.iter().all(|(_, s)| *s == ChunkSize::Bytes(256)));
    let at = total / 256 * 256;
    assert_eq!(*last, (at, ChunkSize::Bytes(total - at)));
}

/// A download cut at a third resumes by asking for chunks; a publisher that only pushes never
/// answers, so after `max_retries` requests the agent sends "Request Update" once and the push
/// (from the start: the chunks already there are duplicates) completes it.
#[test]
fn resume_falls_back_to_request_update_when_chunk_requests_go_unanswered() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let publ = Publisher::new(new.clone(), V11);
    let keys = keys();
    for delivery in [Delivery::Push, Delivery::Pull] {
        let mut dev = common::device_with(sim_map(SIM_MAPS[2]), &old);
        let mut cfg = agent_config(dev.map, &keys, V10);
        cfg.delivery = delivery;
        let mut agent = Agent::new(cfg, 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let ask = outbound(agent.poll(1000, &mut dev.secondary).unwrap()).unwrap();
        let job = publ.reply(&ask.unwrap()).remove(0);
        feed(&mut agent, &mut dev, 1000, &job).unwrap();
        for off in [0, 256, 512] {
            feed(&mut agent, &mut dev, 1000, &publ.chunk_at(off, 256));
        }
        assert_eq!(agent.status().received, 768, "{delivery:?}");
        drop(agent);
        dev.boot(&keys, true).unwrap();
        let mut agent = Agent::new(cfg, 2).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let mut now = 2000;
        let ask = outbound(agent.poll(now, &mut dev.secondary).unwrap()).unwrap();
        let job = publ.reply(&ask.unwrap()).remove(0);
        let first = feed(&mut agent, &mut dev, now, &job).unwrap();
        assert_eq!(agent.status().resumed_from, Some(768));
        let d = decode_request(&first).unwrap();
        assert_eq!(
            (d.kind, d.offset, d.size),
            (
                MessageKind::RequestDataChunk,
                Some(768),
                Some(ChunkSize::Bytes(256))
            )
        );
        // Unanswered: the agent asks again max_retries times, then falls back.
        let mut kinds = Vec::new();
        let update = loop {
            now += 3000;
            let r = outbound(agent.poll(now, &mut dev.secondary).unwrap())
                .unwrap()
                .unwrap();
            let kind = decode_request(&r).unwrap().kind;
            kinds.push(kind);
            if kind == MessageKind::RequestUpdate {
                break r;
            }
            assert!(kinds.len() <= 5, "{delivery:?}: {kinds:?}");
        };
        assert_eq!(kinds.len(), 6, "{delivery:?}");
        // The push from the start: duplicates up to 768, then the rest.
        let mut replies = Vec::new();
        for c in publ.reply(&update) {
            now += 10;
            replies.push(feed(&mut agent, &mut dev, now, &c));
        }
        assert_eq!(agent.status().phase, Phase::ReadyToReboot, "{delivery:?}");
        assert!(holds(dev.secondary.data(), &new), "{delivery:?}");
        assert!(replies.iter().all(Option::is_none), "{delivery:?}");
    }
}

/// Each session (connection) derives its unique topic from the clock again, and the requests
/// of that session name it.
#[test]
fn each_session_has_its_own_unique_topic() {
    let keys = keys();
    let dev = common::device_with(sim_map(SIM_MAPS[2]), &app(1, 0, 1500));
    let mut agent = Agent::new(agent_config(dev.map, &keys, V10), 1).unwrap();
    let prefix = agent.unique_topic().rsplit_once('/').unwrap().0.to_string();
    assert!(agent.unique_topic().ends_with("/OTAImage/1"));
    agent.new_session(70_000).unwrap();
    assert_eq!(
        agent.unique_topic(),
        format!("{prefix}/{}", 70_000 & 0xffff)
    );
    let mut dev = dev;
    agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
    let ask = outbound(agent.poll(0, &mut dev.secondary).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_request(&ask).unwrap().unique_topic,
        Some(agent.unique_topic())
    );
}

/// With `follow_redirects` (the C agent's behaviour, spec §4.4) a job naming another broker
/// is accepted: the agent asks the driver to connect there, waits for `Connected` without
/// timing out, then downloads from that server; `redirect()` names it while the download
/// lasts. A server the driver cannot reach ends the session (`connect`), home again.
#[test]
fn redirect_is_followed_when_enabled() {
    let (old, new) = (app(1, 0, 1500), app(1, 1, 2100));
    let mut publ = Publisher::new(new.clone(), V11);
    publ.broker = Some("elsewhere.example".into());
    let keys = keys();
    for reachable in [true, false] {
        let mut dev = common::device_with(sim_map(SIM_MAPS[0]), &old);
        let mut cfg = agent_config(dev.map, &keys, V10);
        cfg.host = "127.0.0.1";
        cfg.port = 1883;
        cfg.follow_redirects = true;
        let mut agent = Agent::new(cfg, 1).unwrap();
        agent.on_boot(&mut dev.primary, &mut dev.secondary).unwrap();
        let ask = outbound(agent.poll(1000, &mut dev.secondary).unwrap()).unwrap();
        let job = publ.reply(&ask.unwrap()).remove(0);
        let topic = agent.unique_topic().to_string();
        let inbound = Inbound::Publish {
            topic: &topic,
            payload: &job,
        };
        let out = agent.handle(1000, inbound, &mut dev.secondary).unwrap();
        assert_eq!(
            out,
            Some(Outbound::Redirect {
                host: "elsewhere.example",
                port: 1883
            })
        );
        assert_eq!(agent.redirect(), Some(("elsewhere.example", 1883)));
        assert_eq!(agent.status().phase, Phase::Downloading);
        // Connecting may take long: no chunk request (on the old connection) meanwhile.
        assert_eq!(agent.poll(60_000, &mut dev.secondary).unwrap(), None);
        if !reachable {
            agent.server_unreachable(61_000);
            assert_eq!(agent.status().phase, Phase::Idle);
            assert_eq!(agent.status().last_error, Some(ErrorCode::Connect));
            assert_eq!(agent.redirect(), None);
            continue;
        }
        agent.new_session(61_000).unwrap();
        let first = outbound(
            agent
                .handle(61_000, Inbound::Connected, &mut dev.secondary)
                .unwrap(),
        )
        .unwrap()
        .unwrap();
        pull_chain(&mut agent, &mut dev, &publ, 61_000, first);
        assert!(holds(dev.secondary.data(), &new));
        assert_eq!(agent.redirect(), Some(("elsewhere.example", 1883)));
    }
}
