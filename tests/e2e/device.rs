//! The simulated device behaves like the C agent where it matters: a client id and unique topic
//! per session (two boards side by side), a resumed download that completes against a
//! publisher that only pushes, and the chunk flow (`simboard --flow chunks`) end to end.

use std::time::{Duration, Instant};

use super::third_party::SpecPublisher;
use super::{expect, start, World, STEP};

/// The client ids of the board's `connected to … as ID (replies on TOPIC)` lines.
fn sessions(transcript: &[String]) -> Vec<(String, String)> {
    transcript
        .iter()
        .filter_map(|l| {
            let rest = l.split_once("ota: connected to ")?.1;
            let (_, rest) = rest.split_once(" as ")?;
            let (id, rest) = rest.split_once(" (replies on ")?;
            Some((id.to_string(), rest.trim_end_matches(')').to_string()))
        })
        .collect()
}

#[test]
fn two_boards_update_side_by_side_without_disconnecting_each_other() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let (v100, v110) = w.v100_v110();
    let mut one = start(&w.board("one"), Some(&v100), "one");
    let mut two = start(&w.board("two"), Some(&v100), "two");
    expect(&mut one, "app: version 1.0.0 started");
    expect(&mut two, "app: version 1.0.0 started");
    let mut publisher = w.publish(&v110);
    for b in [&mut one, &mut two] {
        expect(b, "update accepted");
        expect(b, "download 100%");
        expect(b, "app: version 1.1.0 started");
        expect(b, "image confirmed");
    }
    publisher.wait_for("E2E-one", STEP);
    for b in [&one, &two] {
        assert!(
            !b.transcript.iter().any(|l| l.contains("connection lost")),
            "a board lost its connection:\n{}",
            b.tail(40)
        );
    }
    let (s1, s2) = (sessions(&one.transcript), sessions(&two.transcript));
    assert!(s1.len() >= 2 && s2.len() >= 2, "{s1:?} {s2:?}");
    // Every session (one per boot here) has its own client id and reply topic.
    let all: Vec<&(String, String)> = s1.iter().chain(&s2).collect();
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert!(x.0 != y.0 && x.1 != y.1, "{x:?} and {y:?} collide");
        }
    }
}

#[test]
fn download_cut_at_30_percent_completes_against_a_publisher_that_only_pushes() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let (v100, v110) = w.v100_v110();
    let spec = w.board("board");
    // ~1000 chunks at 4 ms: slow enough to cut at 30 %.
    let _p = SpecPublisher::push_only(
        w.broker.port,
        std::fs::read(&v110).unwrap(),
        "1.1.0",
        Duration::from_millis(4),
    );
    let mut board = start(&spec, Some(&v100), "cut#1");
    expect(&mut board, "app: version 1.0.0 started");
    expect(&mut board, "download  30%");
    board.kill();

    let restarted = Instant::now();
    let mut board = start(&spec, None, "cut#2");
    expect(&mut board, "app: version 1.0.0 started");
    let resumed = expect(&mut board, "update accepted");
    assert!(resumed.contains("resuming the download at"), "{resumed}");
    // Chunk requests go unanswered: after the agent's retries (5 × 3 s) it asks for the whole
    // image again and the push completes the download.
    expect(
        &mut board,
        "no answer to the chunk requests: asking for the whole image again",
    );
    expect(&mut board, "download 100%");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "image confirmed");
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(90), "took {took:?}");
}

#[test]
fn board_in_the_chunk_flow_updates_through_otactl_publish() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let (v100, v110) = w.v100_v110();
    let mut spec = w.board("board");
    spec.flow = Some("chunks".into());
    let mut board = start(&spec, Some(&v100), "chunks");
    expect(&mut board, "app: version 1.0.0 started");
    let mut publisher = w.publish(&v110);
    let started = publisher.wait_for(r#""event":"started""#, STEP);
    assert!(started.contains(r#""mode":"pull""#), "{started}");
    expect(&mut board, "download 100%");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "image confirmed");
    assert!(
        !publisher
            .seen
            .iter()
            .any(|l| l.contains(r#""mode":"push""#)),
        "{}",
        publisher.seen.join("\n")
    );
}

#[test]
fn board_follows_a_jobs_broker_redirect_for_the_download() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let (v100, v110) = w.v100_v110();
    let mut board = start(&w.board("board"), Some(&v100), "redirect");
    expect(&mut board, "app: version 1.0.0 started");
    // The board knows the broker as 127.0.0.1; the job names it "localhost" (spec §4.4: a
    // different string is another server, even for the same broker).
    let _p = SpecPublisher::redirecting(
        w.broker.port,
        std::fs::read(&v110).unwrap(),
        "1.1.0",
        "localhost",
    );
    expect(&mut board, "the job names the server localhost:");
    expect(&mut board, "ota: connected to localhost:");
    expect(&mut board, "download 100%");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "ota: connected to 127.0.0.1:");
    expect(&mut board, "image confirmed");
}
