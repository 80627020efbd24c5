//! Pulling the plug: killing the board during the download and during the swap; after a
//! restart the update resumes and completes.

use std::time::Duration;

use super::third_party::SpecPublisher;
use super::{apps, expect, start, World};

#[test]
fn killing_the_board_during_download_and_swap_resumes_and_completes() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let a = apps();
    let (v100, v110) = (w.sign(&a.v100, "1.0.0"), w.sign(&a.v110, "1.1.0"));
    let mut spec = w.board("board");
    // Slow enough to interrupt: ~1000 chunks at 4 ms, and 20 ms per erase while swapping.
    spec.boot_erase_delay_us = 20_000;
    let _p = SpecPublisher::start(
        w.broker.port,
        std::fs::read(&v110).unwrap(),
        "1.1.0",
        Duration::from_millis(4),
    );

    let mut board = start(&spec, Some(&v100), "kill#1");
    expect(&mut board, "app: version 1.0.0 started");
    expect(&mut board, "download  30%");
    board.kill();

    let mut board = start(&spec, None, "kill#2");
    expect(&mut board, "app: version 1.0.0 started");
    let resumed = expect(&mut board, "update accepted");
    assert!(resumed.contains("resuming the download at"), "{resumed}");
    expect(&mut board, "download 100%");
    expect(&mut board, "swap type test");
    expect(&mut board, "(9 so far)");
    board.kill();

    let mut board = start(&spec, None, "kill#3");
    expect(&mut board, "resumed an interrupted test upgrade");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "image confirmed");
}
