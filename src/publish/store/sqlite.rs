//! The embedded default store: one SQLite file (rusqlite, SQLite compiled in).
//!
//! - Schema versions are SQLite's `user_version`; [`MIGRATIONS`] run in order at open, each in
//!   its own transaction. A database of a newer schema is refused by name.
//! - Write-ahead logging: readers (`otactl status`) never wait for the publisher, and a write
//!   (`status --unblock`) waits at most [`BUSY_WAIT`] for the publisher's current transaction.
//! - `synchronous = NORMAL` (in WAL mode): a batch that [`Store::write`] returned for is in the
//!   log and survives the publisher's end however it ends (SIGKILL included); only an operating
//!   system crash or power loss before the next checkpoint can undo the last batches. An fsync
//!   per transaction (`FULL`) made a 1,000-device fleet 25–60 % slower (BENCHMARKS.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{Batch, Change, HistoryEvent, HistoryKind, Store};
use crate::publish::state::{now, DeviceRecord, LastResult, State, StateError, STATE_FORMAT};

/// How long a write waits for another connection's transaction.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

/// The schema, one step per version (version N is `MIGRATIONS[N - 1]`).
pub const MIGRATIONS: &[&str] = &[
    // 1: records, blocked versions, history.
    "CREATE TABLE devices (
        key TEXT PRIMARY KEY NOT NULL,
        board TEXT NOT NULL,
        version TEXT,
        last_seen INTEGER NOT NULL,
        offered TEXT,
        sent TEXT,
        result TEXT,
        result_version TEXT,
        result_at INTEGER,
        shared INTEGER NOT NULL,
        not_installed TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE blocked (
        device TEXT NOT NULL,
        version TEXT NOT NULL,
        since INTEGER NOT NULL,
        PRIMARY KEY (device, version)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        device TEXT NOT NULL,
        version TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        publisher TEXT NOT NULL
    );
    CREATE INDEX events_by_device ON events (device, id);",
];

/// A state database file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    who: String,
    /// The last event id this store has seen (unblocks after it are news).
    seen: i64,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StateError + '_ {
    move |e| {
        // SQLite's own words, once (rusqlite's error repeats them with the code as its cause).
        let text = match &e {
            rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
            rusqlite::Error::SqliteFailure(f, None) => f.to_string(),
            other => other.to_string(),
        };
        StateError::Database {
            what: path.display().to_string(),
            source: text.into(),
        }
    }
}

/// Brings `conn` to the newest schema.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let err = db_err(path);
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    if found > known {
        return Err(StateError::Schema {
            what: path.display().to_string(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(&err)?;
        tx.execute_batch(sql).map_err(&err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
    }
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, StateError> {
    let err = db_err(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(BUSY_WAIT).map_err(&err)?;
    Ok(conn)
}

/// Creates the database `path` holding `state` (a JSON file's records), through a temporary
/// file renamed into place, so that a failed import leaves no half database behind.
pub(super) fn create_from(path: &Path, state: &State) -> Result<(), StateError> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".importing");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let err = db_err(&tmp);
    {
        let mut conn = connect(&tmp)?;
        migrate(&mut conn, &tmp)?;
        let tx = conn.transaction().map_err(&err)?;
        for (k, r) in &state.devices {
            put_record(&tx, k, r).map_err(&err)?;
            for v in &r.blocked {
                tx.execute(
                    "INSERT OR IGNORE INTO blocked (device, version, since) VALUES (?1, ?2, ?3)",
                    params![k, v, now() as i64],
                )
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
    }
    std::fs::rename(&tmp, path).map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        doing: format!("renaming {}", tmp.display()),
        source,
    })
}

fn put_record(tx: &Transaction<'_>, key: &str, r: &DeviceRecord) -> rusqlite::Result<()> {
    let not_installed = serde_json::to_string(&r.not_installed).unwrap_or_else(|_| "{}".into());
    let (result, result_version, result_at) =
        r.last_result.as_ref().map_or((None, None, None), |l| {
            (Some(&l.result), Some(&l.version), Some(l.at as i64))
        });
    tx.prepare_cached(
        "INSERT INTO devices (key, board, version, last_seen, offered, sent, result,
             result_version, result_at, shared, not_installed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (key) DO UPDATE SET board = excluded.board, version = excluded.version,
             last_seen = excluded.last_seen, offered = excluded.offered, sent = excluded.sent,
             result = excluded.result, result_version = excluded.result_version,
             result_at = excluded.result_at, shared = excluded.shared,
             not_installed = excluded.not_installed",
    )?
    .execute(params![
        key,
        r.board,
        r.version,
        r.last_seen as i64,
        r.offered,
        r.sent,
        result,
        result_version,
        result_at,
        r.shared,
        not_installed
    ])?;
    Ok(())
}

fn put_event(tx: &Transaction<'_>, e: &HistoryEvent, who: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (at, device, version, kind, detail, publisher)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.at as i64,
        e.device,
        e.version,
        e.kind.as_str(),
        e.detail,
        who
    ])?;
    match e.kind {
        HistoryKind::Block => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO blocked (device, version, since) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.device, e.version, e.at as i64])?;
        }
        HistoryKind::Unblock => {
            tx.prepare_cached("DELETE FROM blocked WHERE device = ?1 AND version = ?2")?
                .execute(params![e.device, e.version])?;
        }
        _ => {}
    }
    Ok(())
}

fn get_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, DeviceRecord)> {
    let result: Option<String> = row.get("result")?;
    let last_result = match result {
        Some(result) => Some(LastResult {
            result,
            version: row
                .get::<_, Option<String>>("result_version")?
                .unwrap_or_default(),
            at: row.get::<_, Option<i64>>("result_at")?.unwrap_or(0) as u64,
        }),
        None => None,
    };
    let not_installed: String = row.get("not_installed")?;
    Ok((
        row.get("key")?,
        DeviceRecord {
            board: row.get("board")?,
            version: row.get("version")?,
            last_seen: row.get::<_, i64>("last_seen")? as u64,
            offered: row.get("offered")?,
            sent: row.get("sent")?,
            last_result,
            blocked: std::collections::BTreeSet::new(),
            shared: row.get("shared")?,
            not_installed: serde_json::from_str::<BTreeMap<String, u32>>(&not_installed)
                .unwrap_or_default(),
            sent_epoch: None,
        },
    ))
}

impl SqliteStore {
    /// Opens (creating) the database `path` in WAL mode and migrates it; `who` is written with
    /// every event this store records.
    ///
    /// # Errors
    /// The file cannot be opened or is not a database; a newer schema.
    pub fn open(path: &Path, who: &str) -> Result<Self, StateError> {
        let err = db_err(path);
        let mut conn = connect(path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!(
                "{}: the file system does not allow write-ahead logging (journal mode {mode}); readers may wait for the publisher",
                path.display()
            );
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&err)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            who: who.to_string(),
            seen: 0,
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        db_err(&self.path)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&mut self) -> Result<State, StateError> {
        let err = db_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut st = State::new();
        st.format = STATE_FORMAT;
        {
            let mut q = tx.prepare("SELECT * FROM devices").map_err(&err)?;
            let rows = q.query_map([], get_record).map_err(&err)?;
            for row in rows {
                let (k, r) = row.map_err(&err)?;
                st.devices.insert(k, r);
            }
            let mut q = tx
                .prepare("SELECT device, version FROM blocked")
                .map_err(&err)?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(&err)?;
            for row in rows {
                let (d, v) = row.map_err(&err)?;
                if let Some(r) = st.devices.get_mut(&d) {
                    r.blocked.insert(v);
                }
            }
        }
        self.seen = tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(st)
    }

    fn write(&mut self, batch: &Batch) -> Result<(), StateError> {
        let err = db_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        for (k, r) in &batch.records {
            put_record(&tx, k, r).map_err(&err)?;
        }
        for k in &batch.removed {
            tx.prepare_cached("DELETE FROM devices WHERE key = ?1")
                .and_then(|mut s| s.execute([k]))
                .map_err(&err)?;
            tx.prepare_cached("DELETE FROM blocked WHERE device = ?1")
                .and_then(|mut s| s.execute([k]))
                .map_err(&err)?;
        }
        for e in &batch.events {
            put_event(&tx, e, &self.who).map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    fn changes_since(&mut self) -> Result<Vec<Change>, StateError> {
        // One publisher per file (the lock): what others write here are unblocks (and, in
        // principle, blocks); records are this publisher's own.
        let err = db_err(&self.path);
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT id, device, version, publisher, kind FROM events
                 WHERE id > ?1 AND kind IN ('unblock', 'block') ORDER BY id",
            )
            .map_err(&err)?;
        let rows = q
            .query_map([self.seen], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, device, version, by, kind) = row.map_err(&err)?;
            self.seen = self.seen.max(id);
            if by != self.who {
                out.push(Change::of_event(&kind, device, version));
            }
        }
        Ok(out)
    }

    fn unblock(
        &mut self,
        device: Option<&str>,
        version: Option<&str>,
    ) -> Result<usize, StateError> {
        let err = db_err(&self.path);
        let what = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        if let Some(d) = device {
            let known = tx
                .query_row("SELECT 1 FROM devices WHERE key = ?1", [d], |_| Ok(()))
                .optional()
                .map_err(&err)?;
            if known.is_none() {
                return Err(StateError::NoDevice {
                    what,
                    device: d.to_string(),
                });
            }
        }
        let pairs: Vec<(String, String)> = {
            let mut q = tx
                .prepare(
                    "SELECT device, version FROM blocked
                     WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR version = ?2)",
                )
                .map_err(&err)?;
            let rows = q
                .query_map(params![device, version], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&err)?;
            rows.collect::<Result<_, _>>().map_err(&err)?
        };
        let at = now();
        for (d, v) in &pairs {
            let e = HistoryEvent::unblock(d, v, at);
            put_event(&tx, &e, &self.who).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(pairs.len())
    }

    fn history(&mut self, device: &str) -> Result<Vec<HistoryEvent>, StateError> {
        let err = self.err();
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT at, device, version, kind, detail, publisher FROM events
                 WHERE device = ?1 ORDER BY id",
            )
            .map_err(&err)?;
        let rows = q
            .query_map([device], |r| {
                Ok(HistoryEvent {
                    at: r.get::<_, i64>(0)? as u64,
                    device: r.get(1)?,
                    version: r.get(2)?,
                    kind: HistoryKind::parse(&r.get::<_, String>(3)?)
                        .unwrap_or(HistoryKind::Result),
                    detail: r.get(4)?,
                    publisher: r.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: HistoryKind, device: &str, version: &str) -> HistoryEvent {
        HistoryEvent {
            at: 7,
            device: device.into(),
            version: version.into(),
            kind,
            detail: String::new(),
            publisher: String::new(),
        }
    }

    #[test]
    fn records_blocks_and_history_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let mut s = SqliteStore::open(&p, "pub-1").unwrap();
        let rec = DeviceRecord {
            board: "B".into(),
            version: Some("1.0.0".into()),
            last_seen: 5,
            not_installed: [("2.0.0".to_string(), 1)].into(),
            last_result: Some(LastResult {
                result: "failure".into(),
                version: "2.0.0".into(),
                at: 6,
            }),
            ..DeviceRecord::default()
        };
        s.write(&Batch {
            records: vec![("B/1".into(), rec.clone()), ("B/2".into(), rec.clone())],
            removed: vec![],
            events: vec![
                event(HistoryKind::Result, "B/1", "2.0.0"),
                event(HistoryKind::Block, "B/1", "2.0.0"),
            ],
        })
        .unwrap();
        s.write(&Batch {
            removed: vec!["B/2".into()],
            ..Batch::default()
        })
        .unwrap();
        drop(s);
        let mut s = SqliteStore::open(&p, "status").unwrap();
        let st = s.load().unwrap();
        let mut want = rec;
        want.blocked.insert("2.0.0".into());
        assert_eq!(st.devices.len(), 1);
        assert_eq!(st.devices["B/1"], want);
        let h = s.history("B/1").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].kind, HistoryKind::Block);
        assert_eq!(h[1].publisher, "pub-1");
    }

    #[test]
    fn an_unblock_by_another_connection_is_reported_once_and_never_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let mut publisher = SqliteStore::open(&p, "pub-1").unwrap();
        let rec = DeviceRecord {
            board: "B".into(),
            ..DeviceRecord::default()
        };
        publisher
            .write(&Batch {
                records: vec![("B/1".into(), rec.clone())],
                removed: vec![],
                events: vec![event(HistoryKind::Block, "B/1", "2.0.0")],
            })
            .unwrap();
        publisher.load().unwrap();
        let mut status = SqliteStore::open(&p, "otactl status").unwrap();
        assert!(matches!(
            status.unblock(Some("B/9"), None),
            Err(StateError::NoDevice { .. })
        ));
        assert_eq!(status.unblock(Some("B/1"), None).unwrap(), 1);
        assert_eq!(status.unblock(None, None).unwrap(), 0, "nothing left");
        let news = publisher.changes_since().unwrap();
        assert_eq!(
            news,
            vec![Change::Unblocked {
                device: "B/1".into(),
                version: "2.0.0".into()
            }]
        );
        assert!(publisher.changes_since().unwrap().is_empty(), "once");
        // The publisher rewrites the record (its copy still had the block in memory).
        let mut stale = rec;
        stale.blocked.insert("2.0.0".into());
        publisher
            .write(&Batch {
                records: vec![("B/1".into(), stale)],
                ..Batch::default()
            })
            .unwrap();
        assert!(status.load().unwrap().devices["B/1"].blocked.is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        drop(SqliteStore::open(&p, "x").unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = SqliteStore::open(&p, "x").err().unwrap().to_string();
        assert!(
            e.contains("schema version 99") && e.contains("newer otactl"),
            "{e}"
        );
        std::fs::write(dir.path().join("t.db"), b"not a database at all, just text").unwrap();
        let e = SqliteStore::open(&dir.path().join("t.db"), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("t.db"), "{e}");
    }
}
