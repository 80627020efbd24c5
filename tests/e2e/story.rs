//! The story: `otactl demo` as a user runs it, and the same story with `otactl publish` and
//! mosquitto (swap mode in full, overwrite mode 1.0.0 → 1.1.0).

use std::time::Duration;

use super::{apps, expect, start, World};
use crate::util;

/// What `otactl demo` must print, in this order: every step and every observation.
const DEMO_STORY: &[&str] = &[
    "==> 1/4 the board runs 1.0.0",
    "board: programmed ",
    "boot: primary slot image 1.0.0+0 valid, jumping to it",
    "✓ board: app: version 1.0.0 started",
    "✓ board: led: blink period 1000 ms",
    "✓ publisher: no_update not_newer",
    "✓ board: no update: invalid_version",
    "==> 2/4 publish 1.1.0",
    "✓ publisher: offered 1.1.0",
    "✓ board: download 100%",
    "✓ board: swap type test",
    "boot: primary slot image 1.1.0+0 valid, jumping to it",
    "✓ board: app: version 1.1.0 started",
    "✓ board: led: blink period 250 ms",
    "✓ board: image confirmed",
    "==> 3/4 publish a bad 1.2.0",
    "boot: primary slot image 1.2.0+0 valid, jumping to it",
    "✓ board: app: version 1.2.0 started",
    "app: TEST_REVERT build: hanging before the watchdog is fed",
    "board: watchdog: not fed for 1500 ms, resetting",
    "✓ board: watchdog: not fed",
    "✓ board: swap type revert",
    "boot: primary slot image 1.1.0+0 valid, jumping to it",
    "✓ board: app: version 1.1.0 started",
    "==> 4/4 the publisher blocks 1.2.0",
    "✓ publisher: reverted 1.2.0",
    "✓ publisher: no_update blocked",
    "✓ board: no update: invalid_version",
    "demo complete: every step of the update story was observed",
];

/// `otactl demo` from an empty directory, with shorter check and watchdog intervals: it finds
/// its board and application beside itself (nothing is built), each version's behaviour comes
/// from its signed image, and every step of the story is observed in order.
#[test]
fn demo_runs_the_whole_story_from_an_empty_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let out = util::output_within(
        util::otactl().current_dir(cwd.path()).args([
            "demo",
            "--check-secs",
            "1",
            "--watchdog-ms",
            "1500",
        ]),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "otactl demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let mut at = 0;
    for want in DEMO_STORY {
        let Some(i) = lines[at..].iter().position(|l| l.contains(want)) else {
            panic!("after line {at}, `otactl demo` never printed {want:?}:\n{stdout}");
        };
        at += i + 1;
    }
    // Three images of one executable, told apart by their build records; nothing was built.
    for v in ["image 1.0.0", "image 1.1.0", "bad image 1.2.0"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(v) && l.contains("otactl-devapp + build record")),
            "no {v:?} line:\n{stdout}"
        );
    }
    assert!(!stdout.contains("building"), "{stdout}");
    // The bad image was taken once: no download after the revert.
    let after_revert = stdout.split("✓ board: swap type revert").nth(1).unwrap();
    assert!(!after_revert.contains("update accepted"), "{stdout}");
    // Everything went to a temporary directory, removed afterwards.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

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
