//! Where the publisher's state lives: one [`Store`] trait, with SQLite ([`sqlite`]) as the
//! embedded default and PostgreSQL ([`postgres`], `--state postgres://…`) for several publishers
//! (replicas behind one `--share-group`) on one database.
//!
//! The sans-IO core decides and keeps the state in memory; it hands the driver a [`Batch`] of
//! what changed (the records it touched, the records it dropped, and one [`HistoryEvent`] per
//! offer, transfer, result, revert and block). The driver writes each batch in one transaction
//! off the event loop, and asks the store now and then what other processes changed
//! ([`Store::changes_since`]: versions `otactl status --unblock` cleared; with PostgreSQL also
//! the blocks and records of the other replicas), so that the running publisher honours an
//! unblock at once and never writes the block back, and a revert one replica saw is refused by
//! all: a device's row never carries its blocked versions; they are rows of their own, added by
//! block events and removed only by an unblock.
//!
//! A state file of the JSON era (`--state FILE.json`, or a `.json` next to the database) is
//! imported once into the database and kept, renamed, as a backup ([`open_sqlite`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::state::{DeviceRecord, State, StateError};

pub mod postgres;
pub mod sqlite;

pub use self::postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What a history row records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A job document offered the version.
    Offer,
    /// The whole image was sent (push acknowledged by the broker, or the last chunk pulled).
    Transfer,
    /// A result: `success`, `failure` (from the device), `updated` or `not_installed` (from
    /// its next report) — in `detail`.
    Result,
    /// The device came back on its old version after being sent the whole image.
    Revert,
    /// The version is blocked for the device (after a failure or a revert).
    Block,
    /// A blocked version was cleared (`otactl status --unblock`, `otactl publish --unblock`).
    Unblock,
}

impl HistoryKind {
    /// The snake_case name stored in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Transfer => "transfer",
            Self::Result => "result",
            Self::Revert => "revert",
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }

    /// The kind named `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Offer,
            Self::Transfer,
            Self::Result,
            Self::Revert,
            Self::Block,
            Self::Unblock,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One row of a device's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    /// Unix seconds.
    pub at: u64,
    /// Device key (`BOARD/SerialNumber`).
    pub device: String,
    /// The version concerned.
    pub version: String,
    /// What happened.
    pub kind: HistoryKind,
    /// More about it (a result's name, why a version was blocked, who unblocked it).
    pub detail: String,
    /// Who recorded it (the publisher's MQTT client id, or the command); empty until the store
    /// writes it.
    pub publisher: String,
}

impl HistoryEvent {
    /// The unblock of `version` for `device` at `at` (the store fills in the publisher).
    #[must_use]
    pub fn unblock(device: &str, version: &str, at: u64) -> Self {
        Self {
            at,
            device: device.to_string(),
            version: version.to_string(),
            kind: HistoryKind::Unblock,
            detail: String::new(),
            publisher: String::new(),
        }
    }
}

/// Everything that changed since the last batch, written in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The records touched, as they are now (their `blocked` sets are not written: see
    /// [`HistoryKind::Block`]).
    pub records: Vec<(String, DeviceRecord)>,
    /// Records dropped beyond the cap.
    pub removed: Vec<String>,
    /// History, in order.
    pub events: Vec<HistoryEvent>,
}

impl Batch {
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.removed.is_empty() && self.events.is_empty()
    }

    /// Adds a later batch (one not written yet): its records replace older copies.
    pub fn merge(&mut self, later: Self) {
        let gone: std::collections::HashSet<&String> = later.removed.iter().collect();
        let fresh: std::collections::HashSet<&String> =
            later.records.iter().map(|(k, _)| k).collect();
        self.records
            .retain(|(k, _)| !gone.contains(k) && !fresh.contains(k));
        self.removed
            .retain(|k| !fresh.contains(k) && !gone.contains(k));
        self.records.extend(later.records);
        self.removed.extend(later.removed);
        self.events.extend(later.events);
    }
}

/// What another process wrote to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A blocked version was cleared (`otactl status --unblock`, or another replica's
    /// `publish --unblock`).
    Unblocked {
        /// Device key.
        device: String,
        /// The version no longer blocked.
        version: String,
    },
    /// Another replica blocked a version for a device.
    Blocked {
        /// Device key.
        device: String,
        /// The version blocked.
        version: String,
    },
    /// Another replica wrote a device's record (as merged in the store; no blocked versions).
    Record {
        /// Device key.
        device: String,
        /// The record.
        record: Box<DeviceRecord>,
    },
}

impl Change {
    /// The change a stored `block` (else `unblock`) event of another process means.
    #[must_use]
    pub fn of_event(kind: &str, device: String, version: String) -> Self {
        if kind == HistoryKind::Block.as_str() {
            Self::Blocked { device, version }
        } else {
            Self::Unblocked { device, version }
        }
    }
}

/// A publisher's state store. Every method is blocking: the driver calls them off its event
/// loop.
pub trait Store: Send {
    /// Where the state is (a file name or a database address without its password), for
    /// messages.
    fn describe(&self) -> String;

    /// Every record, with its blocked versions. Changes before this call are not reported by
    /// [`Store::changes_since`].
    ///
    /// # Errors
    /// The database cannot be read.
    fn load(&mut self) -> Result<State, StateError>;

    /// Writes a batch in one transaction (all of it or nothing).
    ///
    /// # Errors
    /// The database cannot be written; nothing of the batch is.
    fn write(&mut self, batch: &Batch) -> Result<(), StateError>;

    /// What other processes wrote since the last call (or [`Store::load`]), in the order they
    /// wrote it; never what this store wrote.
    ///
    /// # Errors
    /// The database cannot be read.
    fn changes_since(&mut self) -> Result<Vec<Change>, StateError>;

    /// Clears blocked versions, of one device (`Some(key)`) or all, one version or all, and
    /// records an unblock event per cleared version. Returns how many were cleared.
    ///
    /// # Errors
    /// [`StateError::NoDevice`] for an unknown device; the database cannot be written.
    fn unblock(&mut self, device: Option<&str>, version: Option<&str>)
        -> Result<usize, StateError>;

    /// A device's history, oldest first.
    ///
    /// # Errors
    /// The database cannot be read.
    fn history(&mut self, device: &str) -> Result<Vec<HistoryEvent>, StateError>;
}

/// Opens the store `--state` names on behalf of `who`: a PostgreSQL database for a
/// `postgres://` or `postgresql://` address, else the SQLite file ([`open_sqlite`], which may
/// import a JSON state file).
///
/// # Errors
/// See [`open_sqlite`] and [`PostgresStore::open`].
pub fn open(state: &Path, who: &str) -> Result<(Box<dyn Store>, Option<Imported>), StateError> {
    match postgres_address(state) {
        Some(url) => Ok((Box::new(PostgresStore::open(url, who)?), None)),
        None => {
            let (s, imported) = open_sqlite(state, who)?;
            Ok((Box::new(s), imported))
        }
    }
}

/// The PostgreSQL address `--state` holds, if it is one.
#[must_use]
pub fn postgres_address(state: &Path) -> Option<&str> {
    state.to_str().filter(|s| postgres::is_address(s))
}

/// `--state` as messages show it: the database file, or the PostgreSQL address without its
/// password.
#[must_use]
pub fn describe(state: &Path) -> String {
    postgres_address(state).map_or_else(
        || database_path(state).display().to_string(),
        postgres::redacted,
    )
}

/// The database file for `--state PATH`: `PATH` itself, except that a `.json` path (a state
/// file of the JSON era) means the `.db` file next to it.
#[must_use]
pub fn database_path(state: &Path) -> PathBuf {
    if state.extension().is_some_and(|e| e == "json") {
        state.with_extension("db")
    } else {
        state.to_path_buf()
    }
}

/// The JSON state file that `--state PATH` may have to import: `PATH` when it is a `.json`,
/// otherwise the `.json` next to the database.
#[must_use]
pub fn legacy_path(state: &Path) -> PathBuf {
    if state.extension().is_some_and(|e| e == "json") {
        state.to_path_buf()
    } else {
        state.with_extension("json")
    }
}

/// Where an imported JSON state file is kept: `FILE.json.imported`.
#[must_use]
pub fn backup_path(legacy: &Path) -> PathBuf {
    let mut name = legacy.file_name().unwrap_or_default().to_os_string();
    name.push(".imported");
    legacy.with_file_name(name)
}

/// Whether a state exists for `--state PATH` (a database, or a JSON file to import); a
/// PostgreSQL address always does (connecting says whether it is there).
#[must_use]
pub fn exists(state: &Path) -> bool {
    postgres_address(state).is_some()
        || database_path(state).exists()
        || legacy_path(state).exists()
}

/// What [`open_sqlite`] did besides opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The JSON file imported.
    pub from: PathBuf,
    /// Where it is kept now.
    pub backup: PathBuf,
    /// The database it went into.
    pub into: PathBuf,
    /// Records imported.
    pub records: usize,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {} device record(s) from {} into {}; the JSON file is kept as {}",
            self.records,
            self.from.display(),
            self.into.display(),
            self.backup.display()
        )
    }
}

/// Opens (creating and migrating) the SQLite state for `--state PATH` on behalf of `who` (the
/// publisher id written with every event). When there is no database yet and a JSON state file
/// exists ([`legacy_path`]), its records are imported first and the file is renamed to
/// [`backup_path`]; the import is reported.
///
/// # Errors
/// An unreadable or foreign JSON file, a database that cannot be opened or written, or one
/// written by a newer otactl.
pub fn open_sqlite(state: &Path, who: &str) -> Result<(SqliteStore, Option<Imported>), StateError> {
    let db = database_path(state);
    let legacy = legacy_path(state);
    let mut imported = None;
    if !db.exists() && legacy.exists() {
        let st = State::load(&legacy)?;
        sqlite::create_from(&db, &st)?;
        let backup = backup_path(&legacy);
        std::fs::rename(&legacy, &backup).map_err(|source| StateError::Write {
            path: legacy.clone(),
            doing: format!("imported; renaming to {}", backup.display()),
            source,
        })?;
        imported = Some(Imported {
            from: legacy,
            backup,
            into: db.clone(),
            records: st.devices.len(),
        });
    }
    Ok((SqliteStore::open(&db, who)?, imported))
}

/// The name this process writes with the events it records outside a publisher (`otactl status
/// --unblock on HOST, pid N`).
#[must_use]
pub fn command_id(command: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        format!("{command} (pid {})", std::process::id())
    } else {
        format!("{command} on {host} (pid {})", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_path_means_the_database_next_to_it() {
        let p = Path::new("/x/state.json");
        assert_eq!(database_path(p), Path::new("/x/state.db"));
        assert_eq!(legacy_path(p), p);
        assert_eq!(
            backup_path(p),
            Path::new("/x/state.json.imported"),
            "kept, renamed"
        );
        let d = Path::new("/x/otactl-state.db");
        assert_eq!(database_path(d), d);
        assert_eq!(legacy_path(d), Path::new("/x/otactl-state.json"));
    }

    #[test]
    fn a_later_batch_replaces_older_records() {
        let r = |v: &str| DeviceRecord {
            version: Some(v.into()),
            ..DeviceRecord::default()
        };
        let mut a = Batch {
            records: vec![("a".into(), r("1")), ("b".into(), r("1"))],
            removed: vec!["c".into()],
            events: vec![],
        };
        a.merge(Batch {
            records: vec![("a".into(), r("2")), ("c".into(), r("3"))],
            removed: vec!["b".into()],
            events: vec![],
        });
        assert_eq!(a.records, vec![("a".into(), r("2")), ("c".into(), r("3"))]);
        assert_eq!(a.removed, vec!["b".to_string()], "c is back, b is gone");
    }
}
