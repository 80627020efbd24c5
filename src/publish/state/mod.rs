//! What the publisher remembers about devices: running versions, last results, and per-device
//! blocked versions. It lives in the state store ([`super::store`]); [`State::load`] reads the
//! JSON state files of older otactl versions, which are imported once.
//!
//! Devices have no reliable identity on the wire (spec §1.4, §2.1): the unique topic changes
//! every session, and the example's templates hard-code `SerialNumber`. A device is keyed as
//! `BOARD/SerialNumber`. A record is *identified* only when its serial is the device's own: the
//! template serial [`TEMPLATE_SERIAL`], a missing serial, and a serial the publisher saw from two
//! devices at once make the record *unidentified* (`shared`). Unidentified records are never
//! blocked automatically: every device behind them that asks on an older version is offered the
//! update; their results and "came back on the old version" reports are still recorded.
//!
//! Blocking (issue item 7): a device that reports `Failure` for version X, or whose next
//! "Update Availability" after being sent all of X still carries an older version (MCUboot
//! reverted it), gets X in its `blocked` set and is not offered X again until an operator
//! clears it (`otactl status --unblock`, `otactl publish --unblock`).
//!
//! "Sent all of X" means: pull mode, the device asked for the last chunk; push mode, the broker
//! acknowledged every chunk and the publisher's connection did not drop between the request and
//! the device's next report (a broker restart makes the report inconclusive, not a revert). A
//! device that resets or loses *its own* connection after the broker accepted the whole push and
//! then asks again on the old version is indistinguishable from a revert on the wire; the
//! operator can unblock it, or allow more than one such report before a block
//! (`--block-after N`: the first N−1 count as `not_installed` and X is offered again).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ota_core::protocol::{AppVersion, TEMPLATE_SERIAL};
use serde::{Deserialize, Serialize};

mod lock;

pub use lock::StateLock;

/// Format version of the JSON state file (and of `otactl status --json`).
pub const STATE_FORMAT: u32 = 1;
/// Default cap on device records (`--max-devices`).
pub const MAX_DEVICES: usize = 100_000;

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read.
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a publisher state file.
    #[error("{} is not a publisher state file: {source}", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A newer (or unknown) format.
    #[error(
        "{} has state format {found}; this otactl reads format {STATE_FORMAT} (was it written by a newer otactl?)",
        path.display()
    )]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// The format it says it has.
        found: u32,
    },
    /// The file (or its folder) cannot be written.
    #[error("cannot write the state file {}: {doing}: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What was being done ("renaming X", "lock file X").
        doing: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The state database cannot be opened, read or written.
    #[error("state database {what}: {source}")]
    Database {
        /// The file (or the database address, without its password).
        what: String,
        /// What the database said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was written by a newer otactl.
    #[error("state database {what} has schema version {found}; this otactl knows versions up to {known} (was it written by a newer otactl?)")]
    Schema {
        /// The file or database.
        what: String,
        /// Its schema version.
        found: i64,
        /// The newest this otactl knows.
        known: i64,
    },
    /// No record for the device named.
    #[error("{what}: no device {device:?} (the DEVICE column of `otactl status`)")]
    NoDevice {
        /// The file or database.
        what: String,
        /// The key asked for.
        device: String,
    },
    /// Another process holds the state.
    #[error("the state database {} is in use by {holder}; stop that publisher first (or give this one its own --state)", path.display())]
    Locked {
        /// The file.
        path: std::path::PathBuf,
        /// Who holds it (pid, host, command, since), as the holder wrote it.
        holder: String,
    },
}

/// The persisted state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Device records by key (`BOARD/SerialNumber`).
    pub devices: BTreeMap<String, DeviceRecord>,
    /// Cap on records (0: [`MAX_DEVICES`]); beyond it the least useful records are dropped.
    #[serde(skip)]
    pub max_devices: usize,
    /// Keys of records dropped beyond the cap since [`State::take_evicted`] was last called
    /// (the store deletes them).
    #[serde(skip)]
    pub evicted: Vec<String>,
}

/// The record key of a device of `board` that sent `serial`, and whether that serial can be an
/// identity (not the template serial, not missing, not empty).
#[must_use]
pub fn device_key(board: &str, serial: Option<&str>) -> (String, bool) {
    match serial.map(str::trim) {
        Some(s) if !s.is_empty() && s != TEMPLATE_SERIAL => (format!("{board}/{s}"), true),
        Some(s) if !s.is_empty() => (format!("{board}/{s}"), false),
        _ => (format!("{board}/?"), false),
    }
}

/// A device's last result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    /// `success`, `failure`, `updated`, `reverted` or `not_installed`.
    pub result: String,
    /// The version concerned.
    pub version: String,
    /// Unix seconds.
    pub at: u64,
}

/// One device (or group of devices sharing a serial).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Board string.
    pub board: String,
    /// Last reported running version.
    pub version: Option<String>,
    /// Unix seconds of the last request.
    pub last_seen: u64,
    /// Last version offered in a job document.
    pub offered: Option<String>,
    /// Version of which the whole image was sent, awaiting the device's next report.
    pub sent: Option<String>,
    /// Last result.
    pub last_result: Option<LastResult>,
    /// Versions not to offer again.
    pub blocked: BTreeSet<String>,
    /// Unidentified: the template serial, no serial, or several devices report under this key
    /// at once. Never blocked automatically.
    pub shared: bool,
    /// Per version: how often the device came back on an older version after being sent all of
    /// it, without that version being blocked yet (see `--block-after`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_installed: BTreeMap<String, u32>,
    /// The publisher's connection epoch when `sent` was recorded (not persisted): if the broker
    /// connection dropped since, the device may simply have missed chunks, so an old version
    /// in its next report is not taken as a revert.
    #[serde(skip)]
    pub sent_epoch: Option<u64>,
}

/// Why no update is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoUpdate {
    /// The image is not newer than what the device runs.
    NotNewer,
    /// The operator (or a failure/revert) blocked this version for the device.
    Blocked,
}

impl NoUpdate {
    /// snake_case reason.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotNewer => "not_newer",
            Self::Blocked => "blocked",
        }
    }
}

/// Unix seconds now.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DeviceRecord {
    /// The device's own rule plus the blocklist: offer `image` to a device running `running`?
    ///
    /// # Errors
    /// The reason for not offering.
    pub fn decide(&self, running: AppVersion, image: AppVersion) -> Result<(), NoUpdate> {
        if !running.accepts(image) {
            return Err(NoUpdate::NotNewer);
        }
        if !self.shared && self.blocked.contains(&image.to_string()) {
            return Err(NoUpdate::Blocked);
        }
        Ok(())
    }

    /// Records a reported running version; returns a result when this report settles a version
    /// that was sent: `updated`, `reverted` (now blocked) or, while fewer than `block_after`
    /// such reports were seen for that version, `not_installed` (offered again). A device that
    /// moves from an older version to the one it was offered is `updated` too when no transfer
    /// was recorded (a replica sent it the image and died before writing that down).
    ///
    /// `epoch` is the publisher's current connection epoch (see [`DeviceRecord::sent_epoch`]).
    pub fn observe_version(
        &mut self,
        running: AppVersion,
        epoch: u64,
        block_after: u32,
    ) -> Option<LastResult> {
        let before = self.version.replace(running.to_string());
        self.last_seen = now();
        let Some(sent) = self.sent.take() else {
            let offered = self.offered.as_deref().and_then(AppVersion::parse_strict)?;
            let was = before.as_deref().and_then(AppVersion::parse_strict)?;
            if offered != running || was >= running {
                return None;
            }
            self.not_installed.clear();
            let r = LastResult {
                result: "updated".into(),
                version: running.to_string(),
                at: now(),
            };
            self.last_result = Some(r.clone());
            return Some(r);
        };
        let sent_epoch = self.sent_epoch.take();
        let sent_v = AppVersion::parse_strict(&sent)?;
        let result = if running >= sent_v {
            self.not_installed.clear();
            "updated"
        } else if sent_epoch.is_some_and(|e| e != epoch) {
            return None;
        } else if self.shared {
            // Some device of this group came back on an older version: recorded, never blocked
            // (it may well be another device that has not updated yet).
            "not_installed"
        } else {
            let seen = self.not_installed.entry(sent.clone()).or_insert(0);
            *seen += 1;
            if *seen < block_after {
                "not_installed"
            } else {
                self.not_installed.remove(&sent);
                self.blocked.insert(sent.clone());
                "reverted"
            }
        };
        let r = LastResult {
            result: result.into(),
            version: sent,
            at: now(),
        };
        self.last_result = Some(r.clone());
        Some(r)
    }

    /// Merges a copy of this record written by another publisher on the same store (a replica),
    /// field by field, the same rule the PostgreSQL store applies when it writes a record:
    /// - the copy that saw the device last (`last_seen`, in seconds) gives `version`,
    ///   `offered` and `not_installed`; at the same second, the copy with the newer result (the
    ///   report that settled an update beats a copy written the same second by the replica that
    ///   sent the image), else `other`;
    /// - `sent` is `other`'s when it saw the device later; at the same `last_seen` (seconds)
    ///   the copy with the newer result (the one that settled it), else whichever has one
    ///   (`other`'s first): a copy that saw no newer report cannot clear what another replica
    ///   sent, and an older copy (a backlog written late) cannot bring back a `sent` that a
    ///   newer report settled;
    /// - the newer `last_result` wins; `shared` once set stays set; `blocked` is untouched
    ///   (blocked versions come and go as block and unblock events).
    pub fn merge_from(&mut self, other: &DeviceRecord) {
        let result_at = |r: &DeviceRecord| r.last_result.as_ref().map_or(-1, |l| l.at as i64);
        let report_wins = match other.last_seen.cmp(&self.last_seen) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => result_at(other) >= result_at(self),
        };
        if report_wins {
            self.version.clone_from(&other.version);
            self.offered.clone_from(&other.offered);
            self.not_installed.clone_from(&other.not_installed);
            self.board.clone_from(&other.board);
        }
        let take_sent = match other.last_seen.cmp(&self.last_seen) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => match result_at(other).cmp(&result_at(self)) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => other.sent.is_some(),
            },
        };
        if take_sent {
            self.sent.clone_from(&other.sent);
            self.sent_epoch = None;
        }
        self.last_seen = self.last_seen.max(other.last_seen);
        let newer = match (&self.last_result, &other.last_result) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b.at >= a.at,
        };
        if newer {
            self.last_result.clone_from(&other.last_result);
        }
        self.shared |= other.shared;
    }

    /// Records a reported result (`Success` / `Failure`) for `version`; a failure blocks the
    /// version for an identified device.
    pub fn observe_result(&mut self, success: bool, version: &str) -> LastResult {
        if !success {
            if !self.shared {
                self.blocked.insert(version.to_string());
            }
            self.sent = None;
        }
        let r = LastResult {
            result: if success { "success" } else { "failure" }.into(),
            version: version.to_string(),
            at: now(),
        };
        self.last_result = Some(r.clone());
        r
    }
}

impl State {
    /// An empty state of the current format.
    #[must_use]
    pub fn new() -> Self {
        Self {
            format: STATE_FORMAT,
            ..Self::default()
        }
    }

    /// Reads a state file; a missing file is an empty state.
    ///
    /// # Errors
    /// Unreadable file, not a state file, or a format this otactl does not know (named).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut s: Self = serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if s.format != STATE_FORMAT {
            return Err(StateError::Format {
                path: path.to_path_buf(),
                found: s.format,
            });
        }
        // Files written before identity was a decision: the template serial never identifies.
        for (k, r) in &mut s.devices {
            if !device_key(&r.board, k.rsplit_once('/').map(|(_, s)| s)).1 {
                r.shared = true;
            }
        }
        Ok(s)
    }

    /// The record for `key`, created for `board` if new (unidentified unless `identified`).
    /// Beyond the cap, records are dropped in batches, least useful first: unidentified before
    /// identified, records without blocked versions before those with, oldest seen first.
    pub fn device(&mut self, key: &str, board: &str, identified: bool) -> &mut DeviceRecord {
        let cap = if self.max_devices == 0 {
            MAX_DEVICES
        } else {
            self.max_devices
        };
        if !self.devices.contains_key(key) && self.devices.len() >= cap {
            self.evict(cap - cap / 10 - 1);
        }
        self.devices
            .entry(key.to_string())
            .or_insert_with(|| DeviceRecord {
                board: board.to_string(),
                shared: !identified,
                ..DeviceRecord::default()
            })
    }

    /// Drops records until at most `keep` remain (see [`State::device`]).
    fn evict(&mut self, keep: usize) {
        let excess = self.devices.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let mut order: Vec<(bool, bool, u64, &String)> = self
            .devices
            .iter()
            .map(|(k, r)| (!r.shared, !r.blocked.is_empty(), r.last_seen, k))
            .collect();
        order.sort_unstable();
        let drop: Vec<String> = order[..excess].iter().map(|e| e.3.clone()).collect();
        for k in drop {
            self.devices.remove(&k);
            self.evicted.push(k);
        }
    }

    /// The keys of records evicted since the last call.
    pub fn take_evicted(&mut self) -> Vec<String> {
        std::mem::take(&mut self.evicted)
    }

    /// Clears blocked versions: of one device (`Some(key)`) or all; one version or all.
    /// Returns how many entries were removed.
    pub fn unblock(&mut self, key: Option<&str>, version: Option<&str>) -> usize {
        let mut n = 0;
        for (k, r) in &mut self.devices {
            if key.is_some_and(|want| want != k) {
                continue;
            }
            let before = r.blocked.len();
            match version {
                Some(v) => {
                    r.blocked.remove(v);
                }
                None => r.blocked.clear(),
            }
            n += before - r.blocked.len();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The replica that heard the device report the new version, and the replica that sent it
    /// the image, both wrote the record within the same second: whichever copy arrives last,
    /// the report that settled the update keeps the version (seconds cannot order them).
    #[test]
    fn a_settled_report_beats_the_senders_copy_of_the_same_second() {
        let t = 1_000;
        let sender = DeviceRecord {
            version: Some("1.0.0".into()),
            offered: Some("1.1.0".into()),
            sent: Some("1.1.0".into()),
            last_seen: t,
            ..DeviceRecord::default()
        };
        let reporter = DeviceRecord {
            version: Some("1.1.0".into()),
            offered: Some("1.1.0".into()),
            last_seen: t,
            last_result: Some(LastResult {
                result: "updated".into(),
                version: "1.1.0".into(),
                at: t,
            }),
            ..DeviceRecord::default()
        };
        for (mut mine, theirs) in [
            (reporter.clone(), sender.clone()),
            (sender.clone(), reporter.clone()),
        ] {
            mine.merge_from(&theirs);
            assert_eq!(mine.version.as_deref(), Some("1.1.0"));
            assert_eq!(mine.sent, None);
            assert_eq!(
                mine.last_result.as_ref().map(|r| r.result.as_str()),
                Some("updated")
            );
        }
    }

    const V1: AppVersion = AppVersion::new(1, 0, 0);
    const V2: AppVersion = AppVersion::new(2, 0, 0);

    #[test]
    fn moving_to_the_offered_version_is_an_update_even_without_a_recorded_transfer() {
        let mut r = DeviceRecord::default();
        assert_eq!(r.observe_version(V1, 0, 1), None);
        r.offered = Some("2.0.0".into());
        let got = r.observe_version(V2, 0, 1).expect("a result");
        assert_eq!(
            (got.result.as_str(), got.version.as_str()),
            ("updated", "2.0.0")
        );
        assert_eq!(r.observe_version(V2, 0, 1), None, "once");
        assert!(r.blocked.is_empty());
    }

    #[test]
    fn block_after_allows_that_many_reports_on_the_old_version() {
        let mut r = DeviceRecord::default();
        let send = |r: &mut DeviceRecord| r.sent = Some("2.0.0".into());
        send(&mut r);
        let first = r.observe_version(V1, 0, 2).unwrap();
        assert_eq!(first.result, "not_installed");
        assert_eq!(r.decide(V1, V2), Ok(()), "offered again");
        send(&mut r);
        assert_eq!(r.observe_version(V1, 0, 2).unwrap().result, "reverted");
        assert_eq!(r.decide(V1, V2), Err(NoUpdate::Blocked));
        assert!(r.not_installed.is_empty());
        // An update that takes clears the count.
        let mut ok = DeviceRecord::default();
        send(&mut ok);
        ok.observe_version(V1, 0, 2);
        send(&mut ok);
        assert_eq!(ok.observe_version(V2, 0, 2).unwrap().result, "updated");
        assert!(ok.not_installed.is_empty() && ok.blocked.is_empty());
    }

    #[test]
    fn revert_blocks_and_update_settles() {
        let mut r = DeviceRecord::default();
        assert_eq!(r.decide(V1, V2), Ok(()));
        assert_eq!(r.decide(V2, V2), Err(NoUpdate::NotNewer));
        r.sent = Some("2.0.0".into());
        assert_eq!(r.observe_version(V1, 0, 1).unwrap().result, "reverted");
        assert_eq!(r.decide(V1, V2), Err(NoUpdate::Blocked));
        let mut ok = DeviceRecord {
            sent: Some("2.0.0".into()),
            ..DeviceRecord::default()
        };
        assert_eq!(ok.observe_version(V2, 0, 1).unwrap().result, "updated");
        assert!(ok.blocked.is_empty());
        let mut shared = DeviceRecord {
            sent: Some("2.0.0".into()),
            shared: true,
            ..DeviceRecord::default()
        };
        let r = shared.observe_version(V1, 0, 1).unwrap();
        assert_eq!(
            r.result, "not_installed",
            "recorded for an unidentified group, never a block"
        );
        let mut cut = DeviceRecord {
            sent: Some("2.0.0".into()),
            sent_epoch: Some(3),
            ..DeviceRecord::default()
        };
        assert_eq!(
            cut.observe_version(V1, 4, 1),
            None,
            "broker lost since the send: inconclusive"
        );
        assert!(cut.blocked.is_empty() && cut.sent.is_none());
        assert!(shared.blocked.is_empty());
    }

    #[test]
    fn eviction_keeps_identified_records_with_blocked_versions_longest() {
        let mut s = State::new();
        s.max_devices = 100;
        s.device("B/REAL", "B", true).observe_result(false, "2.0.0");
        s.devices.get_mut("B/REAL").unwrap().last_seen = 1;
        s.device("B/ABC213450001", "B", false).last_seen = 5;
        for i in 0..1000 {
            s.device(&format!("B/FAKE-{i}"), "B", true).last_seen = 10 + i;
        }
        assert!(s.devices.len() <= 100);
        assert!(
            s.devices["B/REAL"].blocked.contains("2.0.0"),
            "oldest, but blocked"
        );
        assert!(
            !s.devices.contains_key("B/ABC213450001"),
            "unidentified first"
        );
        assert!(s.devices.contains_key("B/FAKE-999"), "the newest stay");
    }

    #[test]
    fn an_unknown_format_or_a_foreign_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(&p, br#"{"format": 99, "devices": {}}"#).unwrap();
        let e = State::load(&p).unwrap_err().to_string();
        assert!(e.contains("format 99") && e.contains("newer otactl"), "{e}");
        std::fs::write(&p, b"[1, 2]").unwrap();
        let e = State::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a publisher state file"), "{e}");
        // A file written before identity was a decision: the template serial is unidentified.
        std::fs::write(
            &p,
            br#"{"format": 1, "devices": {"B/ABC213450001": {"board": "B", "version": null, "last_seen": 0, "offered": null, "sent": null, "last_result": null, "blocked": ["2.0.0"], "shared": false}}}"#,
        )
        .unwrap();
        let s = State::load(&p).unwrap();
        let r = &s.devices["B/ABC213450001"];
        assert!(r.shared);
        assert_eq!(
            r.decide(V1, V2),
            Ok(()),
            "an old automatic block no longer applies"
        );
    }

    #[test]
    fn failure_blocks_and_unblock_clears() {
        let mut s = State::default();
        s.device("B/1", "B", true).observe_result(false, "2.0.0");
        assert_eq!(s.devices["B/1"].decide(V1, V2), Err(NoUpdate::Blocked));
        assert_eq!(s.unblock(Some("B/2"), None), 0);
        assert_eq!(s.unblock(Some("B/1"), Some("2.0.0")), 1);
        assert_eq!(s.devices["B/1"].decide(V1, V2), Ok(()));
    }
}
