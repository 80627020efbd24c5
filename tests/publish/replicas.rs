//! The PostgreSQL store (issue 15): several publishers on one database (replicas), a database
//! that is down at start or goes away while serving. Real PostgreSQL (a private server, child of
//! the test: tests/util/postgres.rs) and real mosquitto.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otactl::publish::store::{HistoryKind, PostgresStore, Store};
use otactl::publish::Event;

use super::device::{self, DeviceConfig, Outcome};
use super::fixture::{self, served, write_image, write_key, Running, BOARD};
use super::World;
use super::{rt, updated};
use crate::util::postgres::Postgres;
use crate::util::{otactl, Mosquitto};

/// Polls `check` (a blocking look at the database) every 50 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn count(pg: &Postgres, sql: &str) -> i64 {
    pg.client().query_one(sql, &[]).unwrap().get(0)
}

/// A database that is not there at start: exit 2, its address named without the password, and
/// what to do.
#[test]
fn a_database_down_at_start_is_an_exit_2_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let key = write_key(dir.path());
    let port = crate::util::free_port();
    let url = format!("postgres://ota:hunter2@127.0.0.1:{port}/fleet");
    let out = crate::util::output_within(
        otactl()
            .args([
                "publish",
                "--broker",
                "mqtt://127.0.0.1:1",
                "--board",
                BOARD,
            ])
            .arg("--image")
            .arg(&path)
            .arg("--key")
            .arg(&key)
            .env("OTACTL_STATE", &url),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("postgres://ota@127.0.0.1:{port}/fleet"))
            && err.contains("is PostgreSQL running")
            && !err.contains("hunter2"),
        "{err}"
    );
    let out = otactl().args(["status", "--state", &url]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot connect") && !err.contains("hunter2"),
        "{err}"
    );
}

/// The database goes away while a publisher serves: the next device is served from memory,
/// and once the database is back the backlog (its record and its events) is written.
#[test]
fn a_database_that_goes_away_while_serving_gets_the_backlog() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let Some(w) = World::new(fixture::signed_image((1, 1, 0), 60_000, 3), b"") else {
        return;
    };
    let rt = rt();
    let mut cfg = w.config(false);
    cfg.state_file = Some(PathBuf::from(pg.url()));
    let p = rt.block_on(Running::start(cfg));
    let dev = |serial: &str, tick| {
        let mut d = DeviceConfig::new(w.port(), BOARD, (1, 0, 0), tick);
        d.serial = serial.into();
        d
    };
    rt.block_on(async {
        updated(
            &device::session(&dev("SN-BEFORE", 10)).await,
            &w.image,
            "before",
        );
    });
    assert!(eventually(Duration::from_secs(10), || count(
        &pg,
        "SELECT COUNT(*) FROM events WHERE device LIKE '%/SN-BEFORE' AND kind = 'transfer'"
    ) == 1));
    pg.stop();
    rt.block_on(async {
        updated(
            &device::session(&dev("SN-DURING", 11)).await,
            &w.image,
            "while the database is down",
        );
        // A result settled from memory, too: the device reports the new version.
        let mut d = dev("SN-DURING", 12);
        d.running = (1, 1, 0);
        assert!(matches!(device::session(&d).await, Outcome::NoUpdate(_)));
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Result { device, result, .. } if device.ends_with("/SN-DURING") && result == "updated"),
                    Duration::from_secs(10)
                )
                .await
        );
    });
    pg.restart();
    assert!(
        eventually(Duration::from_secs(20), || count(
            &pg,
            "SELECT COUNT(*) FROM events WHERE device LIKE '%/SN-DURING'"
        ) >= 3),
        "the backlog was not written after the database came back"
    );
    let mut db = PostgresStore::open(&pg.url(), "test").unwrap();
    let st = db.load().unwrap();
    let rec = &st.devices[&format!("{BOARD}/SN-DURING")];
    assert_eq!(rec.version.as_deref(), Some("1.1.0"));
    let kinds: Vec<HistoryKind> = db
        .history(&format!("{BOARD}/SN-DURING"))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            HistoryKind::Offer,
            HistoryKind::Transfer,
            HistoryKind::Result
        ]
    );
    rt.block_on(p.stop());
}

/// Two publishers on one database, each behind its own broker: a device reverts on A (it comes
/// back on its old version after A sent it the whole image) and is refused by B; `otactl status
/// --unblock` against the database reaches both, and B serves it again.
#[test]
fn a_device_that_reverts_on_one_publisher_is_refused_by_another() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let Some(w) = World::new(fixture::signed_image((1, 1, 0), 60_000, 4), b"") else {
        return;
    };
    let dir2 = tempfile::tempdir().unwrap();
    let Some(m2) = Mosquitto::start_plain(dir2.path()) else {
        return;
    };
    let url = pg.url();
    let key = format!("{BOARD}/SN-REVERT");
    let rt = rt();
    let (a, b) = rt.block_on(async {
        let mut ca = w.config(false);
        ca.state_file = Some(PathBuf::from(&url));
        let mut cb = fixture::config(m2.port, vec![served(BOARD, &w.path)]);
        cb.state_file = Some(PathBuf::from(&url));
        (Running::start(ca).await, Running::start(cb).await)
    });
    let dev = |port, tick| {
        let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), tick);
        d.serial = "SN-REVERT".into();
        d
    };
    rt.block_on(async {
        updated(&device::session(&dev(w.port(), 20)).await, &w.image, "on A");
        assert!(matches!(
            device::session(&dev(w.port(), 21)).await,
            Outcome::NoUpdate("invalid_version")
        ));
        assert!(
            b.events
                .wait_for(
                    |e| matches!(e, Event::Blocked { device, version } if *device == key && version == "1.1.0"),
                    Duration::from_secs(10)
                )
                .await,
            "B did not hear of A's block"
        );
        assert!(matches!(
            device::session(&dev(m2.port, 22)).await,
            Outcome::NoUpdate(_)
        ));
        assert_eq!(
            b.events.count(|e| matches!(e, Event::Offered { .. })),
            0,
            "B offered a version A blocked"
        );
    });
    let out = otactl().args(["status", "--state", &url]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = table.lines().find(|l| l.starts_with(&key)).unwrap_or("");
    assert!(row.contains("reverted 1.1.0"), "{table}");
    let out = otactl()
        .args(["status", "--state", &url, "--unblock", &key])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unblocked 1 version(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.block_on(async {
        for p in [&a, &b] {
            assert!(
                p.events
                    .wait_for(
                        |e| matches!(e, Event::Unblocked { device, .. } if *device == key),
                        Duration::from_secs(10)
                    )
                    .await
            );
        }
        let o = device::session(&dev(m2.port, 23)).await;
        if !matches!(o, Outcome::Updated { .. }) {
            eprintln!("B: {:#?}", b.events.all.lock().unwrap());
        }
        updated(&o, &w.image, "on B after the unblock");
    });
    let out = otactl()
        .args(["status", "--state", &url, "--history", &key])
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<&str> = h
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        kinds,
        ["offer", "transfer", "revert", "block", "unblock", "offer", "transfer"],
        "{h}"
    );
    assert!(
        h.contains(&format!("otactl-test-{}", m2.port)),
        "B's events name B: {h}"
    );
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
    let _ = Arc::clone(&w.image);
}

/// Three `otactl publish` processes in one share group on one database serve 200 identified
/// devices; one is killed with SIGKILL mid-fleet. Every device updates (through the other two),
/// the database holds 200 records, and each device's history has its offer, its transfer and,
/// once it reports the new version, its result.
#[test]
fn three_replicas_serve_200_devices_and_survive_a_sigkill() {
    use crate::util::{lines_of, wait_line, Killed};
    const DEVICES: u16 = 200;
    let Some(pg) = Postgres::start() else {
        return;
    };
    let Some(w) = World::new(fixture::signed_image((1, 1, 0), 8_000, 9), b"") else {
        return;
    };
    let key = write_key(w.path.parent().unwrap());
    let url = pg.url();
    let mut publishers: Vec<Option<Killed>> = (0..3)
        .map(|n| {
            let mut c = otactl()
                .args([
                    "publish",
                    "--broker",
                    &format!("mqtt://127.0.0.1:{}", w.port()),
                ])
                .args(["--board", BOARD, "--share-group", "fleet"])
                .args(["--client-id", &format!("replica-{n}"), "--state", &url])
                .arg("--image")
                .arg(&w.path)
                .arg("--key")
                .arg(&key)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let lines = lines_of(&mut c);
            assert!(
                wait_line(&lines, "listening on", Duration::from_secs(30)).is_some(),
                "replica {n} did not subscribe"
            );
            Some(Killed(c))
        })
        .collect();
    let dev = |i: u16, running, tick| {
        let mut d = DeviceConfig::new(w.port(), BOARD, running, tick);
        d.serial = format!("SN-{i:04}");
        d.job_timeout = Duration::from_secs(3);
        d.data_timeout = Duration::from_secs(5);
        d
    };
    let rt = rt();
    let image = Arc::clone(&w.image);
    rt.block_on(async {
        for wave in 0..DEVICES / 20 {
            if wave == 3 {
                // Mid-fleet: one replica dies without a word (its transfers stop halfway).
                let mut k = publishers[1].take().unwrap();
                k.0.kill().unwrap();
                k.0.wait().unwrap();
            }
            let tasks: Vec<_> = (wave * 20..wave * 20 + 20)
                .map(|i| {
                    let d = dev(i, (1, 0, 0), 1000 + i);
                    tokio::spawn(
                        async move { device::until_updated(d, Duration::from_secs(90)).await },
                    )
                })
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                let o = t.await.unwrap();
                updated(&o, &image, &format!("device {}", wave * 20 + i as u16));
            }
        }
        // Each device boots the new image and checks in: a result per device.
        let tasks: Vec<_> = (0..DEVICES)
            .map(|i| {
                let d = dev(i, (1, 1, 0), 5000 + i);
                tokio::spawn(async move { device::session(&d).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Outcome::NoUpdate(_)));
        }
    });
    let records = || count(&pg, "SELECT COUNT(*) FROM devices WHERE version = '1.1.0'");
    assert!(
        eventually(Duration::from_secs(20), || records() == i64::from(DEVICES)),
        "{} of {DEVICES} records on 1.1.0",
        records()
    );
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM devices"),
        i64::from(DEVICES)
    );
    let per_device = |kind: &str| {
        count(
            &pg,
            &format!("SELECT COUNT(DISTINCT device) FROM events WHERE kind = '{kind}'"),
        )
    };
    let complete = eventually(Duration::from_secs(20), || {
        per_device("result") == i64::from(DEVICES)
    });
    if !complete {
        for row in pg
            .client()
            .query(
                "SELECT device, kind, detail, publisher, id FROM events WHERE device NOT IN
                 (SELECT device FROM events WHERE kind = 'result') ORDER BY id",
                &[],
            )
            .unwrap()
        {
            let (d, k, det, p, id): (String, String, String, String, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            eprintln!("{id} {d} {k} {det} {p}");
        }
    }
    assert!(
        complete,
        "results for {} of {DEVICES} devices",
        per_device("result")
    );
    assert_eq!(per_device("offer"), i64::from(DEVICES));
    // A transfer the killed replica finished in its last moments and had not written yet is
    // inferred by the replica that hears the device report the new version: every device's
    // history has its transfer.
    let inferred = count(
        &pg,
        "SELECT COUNT(*) FROM events WHERE kind = 'transfer' AND detail LIKE 'inferred:%'",
    );
    eprintln!("{inferred} of {DEVICES} transfers inferred");
    assert_eq!(per_device("transfer"), i64::from(DEVICES));
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM blocked"),
        0,
        "nothing blocked"
    );
    drop(publishers);
}

/// The store itself, two replicas' connections on one database: each reports only what the
/// other wrote; an older copy of a record does not undo a newer one (the merge rule in SQL), and
/// a writer whose copy came out of the merge different hears of the merged row.
#[test]
fn the_store_merges_records_and_reports_only_the_other_writers_changes() {
    use otactl::publish::state::{DeviceRecord, LastResult};
    use otactl::publish::store::{Batch, Change, HistoryEvent};
    let Some(pg) = Postgres::start() else {
        return;
    };
    let mut a = PostgresStore::open(&pg.url(), "replica-a").unwrap();
    let mut b = PostgresStore::open(&pg.url(), "replica-b").unwrap();
    assert!(a.load().unwrap().devices.is_empty() && b.load().unwrap().devices.is_empty());
    let key = format!("{BOARD}/SN-1");
    let sent = DeviceRecord {
        board: BOARD.into(),
        version: Some("1.0.0".into()),
        last_seen: 100,
        offered: Some("1.1.0".into()),
        sent: Some("1.1.0".into()),
        ..DeviceRecord::default()
    };
    let event = |kind| HistoryEvent {
        at: 100,
        device: key.clone(),
        version: "1.1.0".into(),
        kind,
        detail: String::new(),
        publisher: String::new(),
    };
    a.write(&Batch {
        records: vec![(key.clone(), sent.clone())],
        removed: vec![],
        events: vec![event(HistoryKind::Transfer), event(HistoryKind::Block)],
    })
    .unwrap();
    assert!(a.changes_since().unwrap().is_empty(), "its own writes");
    let got = b.changes_since().unwrap();
    assert_eq!(
        got,
        [
            Change::Record {
                device: key.clone(),
                record: Box::new(sent.clone())
            },
            Change::Blocked {
                device: key.clone(),
                version: "1.1.0".into()
            }
        ]
    );
    // B's older copy (it had not seen A's transfer: no `sent`, seen earlier, an older result).
    let stale = DeviceRecord {
        last_seen: 90,
        sent: None,
        version: Some("0.9.0".into()),
        last_result: Some(LastResult {
            result: "success".into(),
            version: "1.0.0".into(),
            at: 90,
        }),
        ..sent.clone()
    };
    b.write(&Batch {
        records: vec![(key.clone(), stale)],
        ..Batch::default()
    })
    .unwrap();
    let row = &a.load().unwrap().devices[&key];
    assert_eq!(
        row.sent.as_deref(),
        Some("1.1.0"),
        "an older copy cleared sent"
    );
    assert_eq!(row.version.as_deref(), Some("1.0.0"));
    assert_eq!(row.last_seen, 100);
    assert!(row.last_result.is_some(), "the only result is kept");
    assert!(row.blocked.contains("1.1.0"));
    // B hears of the merged row (its copy was older).
    let back = b.changes_since().unwrap();
    assert!(
        matches!(&back[..], [Change::Record { record, .. }] if record.sent.as_deref() == Some("1.1.0")),
        "{back:?}"
    );
    // A newer report (the device came back on 1.1.0 at B) settles it for everyone.
    let settled = DeviceRecord {
        last_seen: 110,
        sent: None,
        version: Some("1.1.0".into()),
        ..sent
    };
    b.write(&Batch {
        records: vec![(key.clone(), settled.clone())],
        ..Batch::default()
    })
    .unwrap();
    let row = &a.load().unwrap().devices[&key];
    assert_eq!((row.sent.as_deref(), row.last_seen), (None, 110));
    assert_eq!(b.unblock(Some(&key), None).unwrap(), 1);
    assert!(matches!(
        b.unblock(Some("nobody"), None),
        Err(otactl::publish::StateError::NoDevice { .. })
    ));
    let news = a.changes_since().unwrap();
    assert!(
        news.contains(&Change::Unblocked {
            device: key.clone(),
            version: "1.1.0".into()
        }),
        "{news:?}"
    );
}
