//! The state database (issue 15): `otactl status` and `status --unblock` while a publisher runs,
//! the history of a device, and the one-time import of a JSON state file.

use std::sync::Arc;
use std::time::Duration;

use otactl::publish::state::{DeviceRecord, LastResult};
use otactl::publish::store::{self, HistoryKind, Store};
use otactl::publish::{Event, State};

use super::device::{self, DeviceConfig, Outcome};
use super::fixture::{Running, BOARD};
use super::World;
use super::{load_state, rt, updated};
use crate::util::otactl;

fn status(state: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = otactl()
        .arg("status")
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A device reverts and is blocked; `otactl status` shows it while the publisher runs, and
/// `status --unblock` takes effect in the running publisher at once: the device is offered the
/// version again and updates, and the block is not written back. Its history holds every step.
#[test]
fn unblock_while_a_publisher_runs_takes_effect_at_once() {
    let Some(w) = World::new(super::fixture::signed_image((1, 1, 0), 100_000, 5), b"") else {
        return;
    };
    let (port, image) = (w.port(), Arc::clone(&w.image));
    let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), 700);
    d.serial = "SN-UNBLOCK".into();
    let key = format!("{BOARD}/SN-UNBLOCK");
    rt().block_on(async {
        let p = Running::start(w.config(true)).await;
        updated(&device::session(&d).await, &image, "first download");
        d.tick = 701;
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate("invalid_version")
        ));
        let (ok, table, err) = status(&w.state, &[]);
        assert!(ok, "{err}");
        let row = table.lines().find(|l| l.starts_with(&key)).unwrap_or("");
        assert!(row.contains("reverted 1.1.0") && row.contains("1.1.0"), "{table}");
        let (ok, out, err) = status(&w.state, &["--unblock", &key]);
        assert!(ok && out.contains("unblocked 1 version(s)"), "{out}{err}");
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Unblocked { device, version } if *device == key && version == "1.1.0"),
                    Duration::from_secs(10)
                )
                .await,
            "the running publisher did not hear of the unblock"
        );
        d.tick = 702;
        updated(&device::session(&d).await, &image, "after the unblock");
        d.running = (1, 1, 0);
        d.tick = 703;
        assert!(matches!(
            device::session(&d).await,
            Outcome::NoUpdate(_)
        ));
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Result { device, result, .. } if *device == key && result == "updated"),
                    Duration::from_secs(10)
                )
                .await
        );
        p.stop().await;
    });
    let st = load_state(&w.state);
    let rec = &st.devices[&key];
    assert!(rec.blocked.is_empty(), "written back: {:?}", rec.blocked);
    assert_eq!(rec.version.as_deref(), Some("1.1.0"));
    let (mut db, _) = store::open_sqlite(&w.state, "test").unwrap();
    let kinds: Vec<(HistoryKind, String)> = db
        .history(&key)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.detail))
        .collect();
    use HistoryKind::{Block, Offer, Result, Revert, Transfer, Unblock};
    let want = [
        Offer, Transfer, Revert, Block, Unblock, Offer, Transfer, Result,
    ];
    assert_eq!(
        kinds.iter().map(|k| k.0).collect::<Vec<_>>(),
        want,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap().1, "updated");
    let (ok, out, err) = status(&w.state, &["--history", &key]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1 + want.len(), "{out}");
    assert!(
        out.lines()
            .nth(3)
            .is_some_and(|l| l.contains("revert") && l.contains("1.1.0") && l.contains("reverted")),
        "{out}"
    );
    let (ok, _, err) = status(&w.state, &["--history", "B/NOBODY"]);
    assert!(!ok && err.contains("no history for"), "{err}");
}

/// A JSON state file of an older otactl is imported once: every record (versions, results,
/// blocked versions, not-installed counts, unidentified groups) survives, the file is kept as
/// FILE.json.imported, and the next run reads the database.
#[test]
fn a_json_state_file_is_imported_once_and_kept_as_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("state.json");
    let mut old = State::new();
    for i in 0..50u32 {
        let mut r = DeviceRecord {
            board: BOARD.into(),
            version: Some(format!("1.0.{i}")),
            last_seen: 1_700_000_000 + u64::from(i),
            offered: Some("1.1.0".into()),
            sent: (i % 3 == 0).then(|| "1.1.0".to_string()),
            last_result: (i % 2 == 0).then(|| LastResult {
                result: "reverted".into(),
                version: "1.1.0".into(),
                at: 1_700_000_100,
            }),
            shared: i == 7,
            ..DeviceRecord::default()
        };
        if i % 5 == 0 {
            r.blocked.insert("1.1.0".into());
            r.blocked.insert("1.2.0".into());
        }
        if i % 4 == 1 {
            r.not_installed.insert("1.1.0".into(), i);
        }
        old.devices.insert(format!("{BOARD}/SN-{i:03}"), r);
    }
    std::fs::write(&json, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let (ok, out, err) = status(&json, &["--json"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("imported 50 device record(s)") && err.contains("state.json.imported"),
        "{err}"
    );
    assert!(!json.exists(), "renamed");
    assert!(dir.path().join("state.json.imported").exists());
    assert!(dir.path().join("state.db").exists());
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown,
        serde_json::to_value(&old).unwrap(),
        "every record survives"
    );
    assert_eq!(load_state(&dir.path().join("state.db")), old);
    let (ok, _, err) = status(&json, &[]);
    assert!(ok && !err.contains("imported"), "once: {err}");
}

/// A state database that cannot be used is a clear exit-2 error naming the file, for
/// `otactl status` and for `otactl publish` (before it connects anywhere).
#[test]
fn an_unusable_state_database_is_an_exit_2_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::cli::precedence::signed_image(d);
    std::fs::write(
        d.join("bad.db"),
        "this is not a database, just some text\n".repeat(100),
    )
    .unwrap();
    let publish = [
        "publish",
        "--broker",
        "mqtt://127.0.0.1:9",
        "--board",
        BOARD,
        "--image",
        "app.signed",
        "--key",
        "k.pem",
        "--state",
        "bad.db",
    ];
    let cases: [(&[&str], &str); 3] = [
        (&["status", "--state", "bad.db"], "state database bad.db"),
        (&publish, "state database bad.db"),
        (
            &["status", "--state", "missing.db"],
            "missing.db: no such state database",
        ),
    ];
    for (args, want) in cases {
        let out = otactl().current_dir(d).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
