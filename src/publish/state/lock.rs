//! One publisher per state database: an advisory lock on `FILE.lock`, held for as long as a
//! publisher runs on it (readers and `otactl status --unblock` go through the database's own
//! locking). The lock file names its holder so the next
//! process can say who it is. The operating system drops the lock when the holder exits, however
//! it exits, so a stale lock file never blocks anyone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::StateError;

/// A held lock on a state file; released on drop.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

impl StateLock {
    /// Takes the lock for `state` on behalf of `what` (e.g. "otactl publish"), without waiting.
    ///
    /// # Errors
    /// [`StateError::Locked`] naming the holder, or [`StateError::Write`] when the lock file
    /// cannot be created (the state folder is not writable).
    pub fn acquire(state: &Path, what: &str) -> Result<Self, StateError> {
        let path = lock_path(state);
        let write_err = |source: std::io::Error| StateError::Write {
            path: state.to_path_buf(),
            doing: format!("lock file {}", path.display()),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(write_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StateError::Locked {
                    path: state.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(write_err(e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let since = super::now();
        let line = format!(
            "{what} (pid {}{}, since unix time {since})\n",
            std::process::id(),
            if host.is_empty() {
                String::new()
            } else {
                format!(" on {host}")
            }
        );
        file.set_len(0).map_err(write_err)?;
        file.rewind().map_err(write_err)?;
        file.write_all(line.as_bytes()).map_err(write_err)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let first = StateLock::acquire(&state, "otactl publish").unwrap();
        let err = StateLock::acquire(&state, "otactl status --unblock").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("in use by otactl publish (pid"), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        drop(first);
        StateLock::acquire(&state, "otactl status --unblock").expect("free again");
    }
}
