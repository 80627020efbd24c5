//! The seed's story with `otactl publish`: swap mode in full, overwrite mode 1.0.0 → 1.1.0.

use super::{apps, expect, start, World};

#[test]
fn swap_mode_whole_story_update_revert_and_blocklist() {
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    let a = apps();
    let (v100, v110, v120) = (
        w.sign(&a.v100, "1.0.0"),
        w.sign(&a.v110, "1.1.0"),
        w.sign(&a.v120_bad, "1.2.0"),
    );
    let spec = w.board("board");
    let mut board = start(&spec, Some(&v100), "swap");
    expect(&mut board, "app: version 1.0.0 started");
    expect(&mut board, "led: blink period 1000 ms");

    // 1. The publisher has 1.0.0 only: nothing to do.
    let mut publisher = w.publish(&v100);
    expect(&mut board, "no update: invalid_version");
    drop(publisher);

    // 2. 1.1.0: download, test swap, confirm.
    publisher = w.publish(&v110);
    expect(&mut board, "update accepted");
    expect(&mut board, "download 100%");
    expect(&mut board, "image verified and marked pending");
    expect(&mut board, "swap type test");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "led: blink period 250 ms");
    expect(&mut board, "image confirmed");
    drop(publisher);

    // 3. Bad 1.2.0: it hangs, the watchdog resets, MCUboot swaps 1.1.0 back.
    publisher = w.publish(&v120);
    expect(&mut board, "update accepted");
    expect(&mut board, "app: version 1.2.0 started");
    expect(&mut board, "TEST_REVERT");
    expect(&mut board, "watchdog: not fed");
    expect(&mut board, "swap type revert");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "reverted");

    // 4. The publisher saw 1.1.0 come back: 1.2.0 is blocked for this device, never offered again.
    publisher.wait_for(r#""result":"reverted""#, super::STEP);
    publisher.wait_for(r#""reason":"blocked""#, super::STEP);
    expect(&mut board, "no update: invalid_version");
    let after: Vec<&String> = board
        .transcript
        .iter()
        .skip_while(|l| !l.contains("reverted"))
        .collect();
    assert!(
        !after.iter().any(|l| l.contains("update accepted")),
        "1.2.0 was offered again:\n{}",
        board.tail(30)
    );
}

#[test]
fn overwrite_mode_updates_1_0_0_to_1_1_0() {
    let Some(w) = World::new("board-host_overwrite.json") else {
        return;
    };
    let a = apps();
    let (v100, v110) = (w.sign(&a.v100, "1.0.0"), w.sign(&a.v110, "1.1.0"));
    let spec = w.board("board");
    let mut board = start(&spec, Some(&v100), "overwrite");
    expect(&mut board, "power on (boot #1, overwrite only)");
    expect(&mut board, "app: version 1.0.0 started");
    let _publisher = w.publish(&v110);
    expect(&mut board, "download 100%");
    expect(&mut board, "upgrade (overwriting the primary slot)");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "led: blink period 250 ms");
}
