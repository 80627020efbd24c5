//! The shared store: one PostgreSQL database that several publishers (replicas behind one
//! `--share-group`) and `otactl status` use at once (`--state postgres://USER@HOST:PORT/DB`).
//!
//! - Schema versions are rows of `schema_version`; [`MIGRATIONS`] run in order at connect, each
//!   in its own transaction, under the write lock (two replicas starting at once migrate once).
//!   A database of a newer schema is refused by name.
//! - Every write (a batch of the core, an unblock) is one transaction that first takes one
//!   transaction-scoped advisory lock ([`WRITE_LOCK`]): writes of all replicas are serialised,
//!   so the change numbers they draw from the `changes` sequence become visible in order, and a
//!   reader's cursor ([`Store::changes_since`]) never skips a row committed late.
//! - Records are merged, not overwritten (the rule is [`DeviceRecord::merge_from`], written
//!   here once more in SQL, [`UPSERT`]): the copy that saw the device last wins the reported
//!   fields; a copy that did not see a newer report cannot clear what another replica sent; the
//!   newer result wins; unidentified stays unidentified. Blocked versions are rows of their own:
//!   a block by any replica holds until an unblock.
//! - The connection is made again on the next call after it broke (the driver retries writes
//!   with the backlog merged). No TLS: `sslmode=require` is refused by name; reach a remote
//!   database through a local socket or a tunnel.
//! - A password in the address is used to log in and never shown ([`PostgresStore::describe`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls, Transaction};

use super::{Batch, Change, HistoryEvent, HistoryKind, Store};
use crate::publish::state::{now, DeviceRecord, LastResult, State, StateError, STATE_FORMAT};

/// How long connecting may take before the attempt fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long unacknowledged data or a silent peer is tolerated on the connection.
pub const DEAD_PEER: Duration = Duration::from_secs(15);

/// The advisory lock every writing transaction takes first (an arbitrary constant: "otactl").
pub const WRITE_LOCK: i64 = 0x6f74_6163_746c;

/// The schema, one step per version (version N is `MIGRATIONS[N - 1]`).
pub const MIGRATIONS: &[&str] = &[
    // 1: records (with the change number and writer of their last write), blocked versions,
    // history (event ids drawn from the same sequence).
    "CREATE SEQUENCE changes;
    CREATE TABLE devices (
        key TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        version TEXT,
        last_seen BIGINT NOT NULL,
        offered TEXT,
        sent TEXT,
        result TEXT,
        result_version TEXT,
        result_at BIGINT,
        shared BOOLEAN NOT NULL,
        not_installed TEXT NOT NULL DEFAULT '{}',
        change BIGINT NOT NULL,
        writer TEXT NOT NULL
    );
    CREATE INDEX devices_by_change ON devices (change);
    CREATE TABLE blocked (
        device TEXT NOT NULL,
        version TEXT NOT NULL,
        since BIGINT NOT NULL,
        PRIMARY KEY (device, version)
    );
    CREATE TABLE events (
        id BIGINT PRIMARY KEY DEFAULT nextval('changes'),
        at BIGINT NOT NULL,
        device TEXT NOT NULL,
        version TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        publisher TEXT NOT NULL
    );
    CREATE INDEX events_by_device ON events (device, id);",
];

/// Writes a record, merging it with the row there (see the module docs).
const UPSERT: &str = "INSERT INTO devices AS d (key, board, version, last_seen, offered, sent,
        result, result_version, result_at, shared, not_installed, change, writer)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nextval('changes'), $12)
    ON CONFLICT (key) DO UPDATE SET
        board = excluded.board,
        version = CASE WHEN (excluded.last_seen > d.last_seen OR (excluded.last_seen = d.last_seen
            AND COALESCE(excluded.result_at, -1) >= COALESCE(d.result_at, -1))) THEN excluded.version ELSE d.version END,
        offered = CASE WHEN (excluded.last_seen > d.last_seen OR (excluded.last_seen = d.last_seen
            AND COALESCE(excluded.result_at, -1) >= COALESCE(d.result_at, -1))) THEN excluded.offered ELSE d.offered END,
        not_installed = CASE WHEN (excluded.last_seen > d.last_seen OR (excluded.last_seen = d.last_seen
            AND COALESCE(excluded.result_at, -1) >= COALESCE(d.result_at, -1)))
            THEN excluded.not_installed ELSE d.not_installed END,
        sent = CASE WHEN excluded.last_seen > d.last_seen THEN excluded.sent
            WHEN excluded.last_seen < d.last_seen THEN d.sent
            WHEN COALESCE(excluded.result_at, -1) > COALESCE(d.result_at, -1) THEN excluded.sent
            WHEN COALESCE(excluded.result_at, -1) < COALESCE(d.result_at, -1) THEN d.sent
            ELSE COALESCE(excluded.sent, d.sent) END,
        last_seen = GREATEST(excluded.last_seen, d.last_seen),
        result = CASE WHEN COALESCE(excluded.result_at, -1) >= COALESCE(d.result_at, -1)
            THEN excluded.result ELSE d.result END,
        result_version = CASE WHEN COALESCE(excluded.result_at, -1) >= COALESCE(d.result_at, -1)
            THEN excluded.result_version ELSE d.result_version END,
        result_at = GREATEST(excluded.result_at, d.result_at),
        shared = excluded.shared OR d.shared,
        change = excluded.change,
        writer = excluded.writer
    RETURNING *";

/// A PostgreSQL state database.
pub struct PostgresStore {
    config: Config,
    client: Option<Client>,
    what: String,
    who: String,
    /// The highest change number seen (rows and events after it are news).
    seen: i64,
    /// Records this store wrote that came out of the merge different (another replica's copy
    /// was newer in some field): reported by the next [`Store::changes_since`], as rows written
    /// by this publisher are not.
    merged: Vec<Change>,
}

/// `postgres://USER@HOST:PORT/DB` of `config`, without the password.
fn address(config: &Config) -> String {
    let user = config
        .get_user()
        .map_or_else(String::new, |u| format!("{u}@"));
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]:{port}"),
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(p)) => format!("{} (socket, port {port})", p.display()),
        None => format!("localhost:{port}"),
    };
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}/{db}")
}

/// `url` as messages show it: without its password (`postgres://…` when it does not parse).
#[must_use]
pub fn redacted(url: &str) -> String {
    url.parse::<Config>()
        .map_or_else(|_| "postgres://…".into(), |c| address(&c))
}

/// Whether `state` names a PostgreSQL database rather than a file.
#[must_use]
pub fn is_address(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

fn pg_err(what: &str) -> impl Fn(postgres::Error) -> StateError + '_ {
    move |e| {
        // The server's own words when it said something; else the client's, with the cause.
        let text = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => {
                let mut t = e.to_string();
                let mut src = std::error::Error::source(&e);
                for _ in 0..4 {
                    let Some(s) = src else { break };
                    let s_text = s.to_string();
                    if !t.contains(&s_text) {
                        t = format!("{t}: {s_text}");
                    }
                    src = s.source();
                }
                t
            }
        };
        StateError::Database {
            what: what.to_string(),
            source: text.into(),
        }
    }
}

/// Writes `r` (merged with the row there); returns the merged record when it differs from `r`
/// (another replica's write was newer in some field), for the writer to merge back.
fn put_record(
    tx: &mut Transaction<'_>,
    key: &str,
    r: &DeviceRecord,
    who: &str,
) -> Result<Option<DeviceRecord>, postgres::Error> {
    let not_installed = serde_json::to_string(&r.not_installed).unwrap_or_else(|_| "{}".into());
    let (result, result_version, result_at) =
        r.last_result.as_ref().map_or((None, None, None), |l| {
            (Some(&l.result), Some(&l.version), Some(l.at as i64))
        });
    let q = tx.prepare(UPSERT)?;
    let row = tx.query_one(
        &q,
        &[
            &key,
            &r.board,
            &r.version,
            &(r.last_seen as i64),
            &r.offered,
            &r.sent,
            &result,
            &result_version,
            &result_at,
            &r.shared,
            &not_installed,
            &who,
        ],
    )?;
    let (_, merged) = get_record(&row);
    let mut mine = r.clone();
    mine.blocked.clear();
    mine.sent_epoch = None;
    Ok((merged != mine).then_some(merged))
}

fn put_event(tx: &mut Transaction<'_>, e: &HistoryEvent, who: &str) -> Result<(), postgres::Error> {
    let q = tx.prepare(
        "INSERT INTO events (at, device, version, kind, detail, publisher)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    tx.execute(
        &q,
        &[
            &(e.at as i64),
            &e.device,
            &e.version,
            &e.kind.as_str(),
            &e.detail,
            &who,
        ],
    )?;
    match e.kind {
        HistoryKind::Block => {
            tx.execute(
                "INSERT INTO blocked (device, version, since) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&e.device, &e.version, &(e.at as i64)],
            )?;
        }
        HistoryKind::Unblock => {
            tx.execute(
                "DELETE FROM blocked WHERE device = $1 AND version = $2",
                &[&e.device, &e.version],
            )?;
        }
        _ => {}
    }
    Ok(())
}

fn get_record(row: &postgres::Row) -> (String, DeviceRecord) {
    let last_result = row
        .get::<_, Option<String>>("result")
        .map(|result| LastResult {
            result,
            version: row
                .get::<_, Option<String>>("result_version")
                .unwrap_or_default(),
            at: row.get::<_, Option<i64>>("result_at").unwrap_or(0) as u64,
        });
    let not_installed: String = row.get("not_installed");
    (
        row.get("key"),
        DeviceRecord {
            board: row.get("board"),
            version: row.get("version"),
            last_seen: row.get::<_, i64>("last_seen") as u64,
            offered: row.get("offered"),
            sent: row.get("sent"),
            last_result,
            blocked: BTreeSet::new(),
            shared: row.get("shared"),
            not_installed: serde_json::from_str::<BTreeMap<String, u32>>(&not_installed)
                .unwrap_or_default(),
            sent_epoch: None,
        },
    )
}

/// The highest change number committed.
const TOP: &str = "SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM events),
                               (SELECT COALESCE(MAX(change), 0) FROM devices))";

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`) and migrates the database; `who`
    /// is written with every change this store records.
    ///
    /// # Errors
    /// A malformed address, `sslmode=require`, a database that cannot be reached (named,
    /// without the password, with what to do), a newer schema.
    pub fn open(url: &str, who: &str) -> Result<Self, StateError> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| {
            let text = e.to_string();
            StateError::Database {
                what: "--state".into(),
                source: format!(
                    "not a PostgreSQL address ({text}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                )
                .into(),
            }
        })?;
        let what = address(&config);
        if config.get_ssl_mode() == SslMode::Require {
            return Err(StateError::Database {
                what,
                source: "sslmode=require: this otactl talks to PostgreSQL without TLS; reach the database over a local socket, the loopback or an encrypted tunnel, and drop sslmode=require".into(),
            });
        }
        config.ssl_mode(SslMode::Disable);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A database host that vanishes without closing the connection (a network cut) fails
        // the write within seconds instead of holding the store task: the driver then serves
        // from memory and retries.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(DEAD_PEER);
        }
        if config.get_keepalives_idle() > DEAD_PEER {
            config.keepalives_idle(DEAD_PEER);
        }
        if config.get_application_name().is_none() {
            config.application_name("otactl");
        }
        let mut s = Self {
            config,
            client: None,
            what,
            who: who.to_string(),
            seen: 0,
            merged: Vec::new(),
        };
        s.client().map_err(|e| match e {
            StateError::Database { what, source } => StateError::Database {
                source: format!(
                    "cannot connect ({source}); is PostgreSQL running there and does it let this user in? Start it, or pass another --state (also OTACTL_STATE, otactl.toml)"
                )
                .into(),
                what,
            },
            other => other,
        })?;
        s.migrate()?;
        Ok(s)
    }

    /// The connection, made (again) when there is none or it broke.
    fn client(&mut self) -> Result<&mut Client, StateError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let c = self.config.connect(NoTls).map_err(pg_err(&self.what))?;
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("just made"))
    }

    /// Runs `f` in one transaction; a failed one drops the connection (it is made again next
    /// time), so a database that went away and came back is used again.
    fn in_tx<T>(
        &mut self,
        lock: bool,
        f: impl FnOnce(&mut Transaction<'_>, &str) -> Result<T, postgres::Error>,
    ) -> Result<T, StateError> {
        let who = self.who.clone();
        let what = self.what.clone();
        let r = (|| {
            let c = self.client()?;
            let run = |c: &mut Client| -> Result<T, postgres::Error> {
                let mut tx = c.transaction()?;
                if lock {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                }
                let out = f(&mut tx, &who)?;
                tx.commit()?;
                Ok(out)
            };
            run(c).map_err(pg_err(&what))
        })();
        if r.is_err() {
            self.client = None;
        }
        r
    }

    /// Brings the database to the newest schema.
    fn migrate(&mut self) -> Result<(), StateError> {
        let known = MIGRATIONS.len() as i64;
        let what = self.what.clone();
        let found = self.in_tx(true, |tx, _| {
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            )?;
            let found: i64 = tx
                .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
                .get(0);
            if found <= known {
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                    tx.batch_execute(sql)?;
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&(i as i64 + 1)],
                    )?;
                }
            }
            Ok(found)
        })?;
        if found > known {
            return Err(StateError::Schema { what, found, known });
        }
        Ok(())
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn load(&mut self) -> Result<State, StateError> {
        let (st, top) = self.in_tx(false, |tx, _| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            let mut st = State::new();
            st.format = STATE_FORMAT;
            for row in tx.query("SELECT * FROM devices", &[])? {
                let (k, r) = get_record(&row);
                st.devices.insert(k, r);
            }
            for row in tx.query("SELECT device, version FROM blocked", &[])? {
                let d: String = row.get(0);
                if let Some(r) = st.devices.get_mut(&d) {
                    r.blocked.insert(row.get(1));
                }
            }
            let top: i64 = tx.query_one(TOP, &[])?.get(0);
            Ok((st, top))
        })?;
        self.seen = top;
        Ok(st)
    }

    fn write(&mut self, batch: &Batch) -> Result<(), StateError> {
        let merged = self.in_tx(true, |tx, who| {
            let mut merged = Vec::new();
            for (k, r) in &batch.records {
                if let Some(record) = put_record(tx, k, r, who)? {
                    merged.push(Change::Record {
                        device: k.clone(),
                        record: Box::new(record),
                    });
                }
            }
            for k in &batch.removed {
                tx.execute("DELETE FROM devices WHERE key = $1", &[k])?;
                tx.execute("DELETE FROM blocked WHERE device = $1", &[k])?;
            }
            for e in &batch.events {
                put_event(tx, e, who)?;
            }
            Ok(merged)
        })?;
        self.merged.extend(merged);
        Ok(())
    }

    fn changes_since(&mut self) -> Result<Vec<Change>, StateError> {
        let seen = self.seen;
        let (out, top) = self.in_tx(false, |tx, who| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            let top: i64 = tx.query_one(TOP, &[])?.get(0);
            let mut out = Vec::new();
            if top <= seen {
                return Ok((out, top));
            }
            for row in tx.query(
                "SELECT * FROM devices WHERE change > $1 AND writer <> $2 ORDER BY change",
                &[&seen, &who],
            )? {
                let (device, record) = get_record(&row);
                out.push(Change::Record {
                    device,
                    record: Box::new(record),
                });
            }
            for row in tx.query(
                "SELECT device, version, kind FROM events
                 WHERE id > $1 AND publisher <> $2 AND kind IN ('block', 'unblock')
                 ORDER BY id",
                &[&seen, &who],
            )? {
                let (device, version): (String, String) = (row.get(0), row.get(1));
                out.push(Change::of_event(row.get(2), device, version));
            }
            Ok((out, top))
        })?;
        self.seen = self.seen.max(top);
        let mut all = std::mem::take(&mut self.merged);
        all.extend(out);
        Ok(all)
    }

    fn unblock(
        &mut self,
        device: Option<&str>,
        version: Option<&str>,
    ) -> Result<usize, StateError> {
        let what = self.what.clone();
        let r = self.in_tx(true, |tx, who| {
            if let Some(d) = device {
                if tx
                    .query_opt("SELECT 1 FROM devices WHERE key = $1", &[&d])?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            let pairs: Vec<(String, String)> = tx
                .query(
                    "SELECT device, version FROM blocked
                     WHERE ($1::TEXT IS NULL OR device = $1) AND ($2::TEXT IS NULL OR version = $2)
                     ORDER BY device, version",
                    &[&device, &version],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let at = now();
            for (d, v) in &pairs {
                let e = HistoryEvent::unblock(d, v, at);
                put_event(tx, &e, who)?;
            }
            Ok(Some(pairs.len()))
        })?;
        r.ok_or_else(|| StateError::NoDevice {
            what,
            device: device.unwrap_or_default().to_string(),
        })
    }

    fn history(&mut self, device: &str) -> Result<Vec<HistoryEvent>, StateError> {
        self.in_tx(false, |tx, _| {
            Ok(tx
                .query(
                    "SELECT at, device, version, kind, detail, publisher FROM events
                     WHERE device = $1 ORDER BY id",
                    &[&device],
                )?
                .iter()
                .map(|r| HistoryEvent {
                    at: r.get::<_, i64>(0) as u64,
                    device: r.get(1),
                    version: r.get(2),
                    kind: HistoryKind::parse(r.get(3)).unwrap_or(HistoryKind::Result),
                    detail: r.get(4),
                    publisher: r.get(5),
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_shown_has_no_password() {
        let c: Config = "postgres://ota:s3cret@db.example:6543/fleet"
            .parse()
            .unwrap();
        assert_eq!(address(&c), "postgres://ota@db.example:6543/fleet");
        let c: Config = "postgresql://127.0.0.1/otactl".parse().unwrap();
        assert_eq!(address(&c), "postgres://127.0.0.1:5432/otactl");
        assert!(is_address("postgresql://x/y") && is_address("postgres://x/y"));
        assert!(!is_address("otactl-state.db"));
    }

    #[test]
    fn sslmode_require_and_a_bad_address_are_refused_by_name() {
        let e = PostgresStore::open("postgres://u:pw@127.0.0.1:1/db?sslmode=require", "x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sslmode=require") && !e.contains("pw"), "{e}");
        let e = PostgresStore::open("postgres://u@127.0.0.1:notaport/db", "x")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--state") && e.contains("postgres://USER"),
            "{e}"
        );
    }

    #[test]
    fn a_database_that_is_down_is_named_without_the_password() {
        // Port 1 on the loopback: nothing listens there.
        let e = PostgresStore::open("postgres://u:hunter2@127.0.0.1:1/db", "x")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("postgres://u@127.0.0.1:1/db")
                && e.contains("is PostgreSQL running")
                && !e.contains("hunter2"),
            "{e}"
        );
    }
}
