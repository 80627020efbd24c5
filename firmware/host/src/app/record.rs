//! The application's build record: what the example's Makefile fixes when it builds a
//! version (`APP_VERSION`, `BLINKY_DELAY_MS`, `DEFINES+=TEST_REVERT`), carried at the end of the
//! application executable.
//!
//! One `otactl-devapp` executable serves every version: the demo (or a test) appends a record
//! to a copy of it *before signing*, so the record is part of the signed payload, the
//! bootloader checks it with the rest of the image, and the running application reads it from
//! its own executable, which the board extracted from the primary slot. What an application
//! does therefore comes from the image the bootloader booted, never from its environment.
//!
//! ```text
//! ┌──────────────────────┬─────────────────────────────────────┬─────────┬──────────┐
//! │ executable (ELF)     │ body: "version=1.1.0\n"             │ len u16 │ magic    │
//! │ (unchanged)          │       "blinky_ms=250\n"             │ LE      │ 8 bytes  │
//! │                      │       "test_revert=0\n"             │         │ otaAPPv1 │
//! └──────────────────────┴─────────────────────────────────────┴─────────┴──────────┘
//! ```
//!
//! Linux runs an ELF executable with bytes after its last section unchanged, so a stamped
//! executable still runs. The body is ASCII `key=value` lines, at most [`MAX_BODY`] bytes.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ota_core::protocol::AppVersion;

/// The last eight bytes of a stamped executable.
pub const MAGIC: [u8; 8] = *b"otaAPPv1";
/// The longest record body.
pub const MAX_BODY: usize = 256;
/// Body length (u16) + magic.
const FOOTER: usize = 2 + MAGIC.len();

/// What one build of the application is (the Makefile's variables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppRecord {
    /// `APP_VERSION`, what the application reports to the publisher.
    pub version: AppVersion,
    /// `BLINKY_DELAY_MS`: the LED toggles this often (the "blink period" in the transcript).
    pub blinky_ms: u64,
    /// The `TEST_REVERT` image: it hangs before it feeds the watchdog or confirms itself.
    pub test_revert: bool,
}

/// A record that cannot be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecordError {
    /// The executable could not be read.
    Read {
        /// The executable.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The footer names a body longer than [`MAX_BODY`] or than the file.
    Length(usize),
    /// A body line is not one of the record's `key=value` lines.
    Line {
        /// The line as found.
        line: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key the record must have is missing.
    Missing(&'static str),
    /// The running executable cannot be found (to read its own record).
    Locate(std::io::Error),
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "reading {}: {source}", path.display()),
            Self::Length(n) => write!(
                f,
                "the build record claims {n} bytes (at most {MAX_BODY}, within the file)"
            ),
            Self::Line { line, reason } => write!(f, "build record line {line:?}: {reason}"),
            Self::Missing(key) => write!(f, "the build record has no {key}= line"),
            Self::Locate(e) => write!(f, "locating this executable: {e}"),
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl AppRecord {
    /// The example Makefile's defaults: 1.0.0, 1000 ms, a good image.
    pub const MAKEFILE_DEFAULTS: Self = Self {
        version: AppVersion::new(1, 0, 0),
        blinky_ms: 1000,
        test_revert: false,
    };

    /// The record's bytes: body, length, magic.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let body = format!(
            "version={}\nblinky_ms={}\ntest_revert={}\n",
            self.version,
            self.blinky_ms,
            u8::from(self.test_revert)
        );
        // Three short lines: always far below MAX_BODY (and u16).
        let len = u16::try_from(body.len()).expect("a record body is short");
        let mut out = body.into_bytes();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&MAGIC);
        out
    }

    /// `exe` with this record at its end (a record it already carries is replaced).
    ///
    /// # Errors
    /// `exe` ends with a record that cannot be read.
    pub fn stamp(&self, mut exe: Vec<u8>) -> Result<Vec<u8>, RecordError> {
        if let Some((_, at)) = Self::find(&exe)? {
            exe.truncate(at);
        }
        exe.extend_from_slice(&self.encode());
        Ok(exe)
    }

    /// The record at the end of `bytes` (a whole executable, or at least its last
    /// `MAX_BODY + 10` bytes) and the offset where it starts; `None` when there is none.
    ///
    /// # Errors
    /// The bytes end with the magic but the record is malformed.
    pub fn find(bytes: &[u8]) -> Result<Option<(Self, usize)>, RecordError> {
        let Some(footer_at) = bytes.len().checked_sub(FOOTER) else {
            return Ok(None);
        };
        let footer = &bytes[footer_at..];
        if footer[2..] != MAGIC {
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([footer[0], footer[1]]));
        let start = footer_at
            .checked_sub(len)
            .filter(|_| len <= MAX_BODY)
            .ok_or(RecordError::Length(len))?;
        Ok(Some((Self::parse(&bytes[start..footer_at])?, start)))
    }

    /// Reads the record at the end of the executable `path`.
    ///
    /// # Errors
    /// The file cannot be read, or its record is malformed.
    pub fn read(path: &Path) -> Result<Option<Self>, RecordError> {
        let read = |source| RecordError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(read)?;
        let size = f.metadata().map_err(read)?.len();
        let tail = size.min((MAX_BODY + FOOTER) as u64);
        f.seek(SeekFrom::Start(size - tail)).map_err(read)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(read)?;
        Ok(Self::find(&bytes)?.map(|(r, _)| r))
    }

    fn parse(body: &[u8]) -> Result<Self, RecordError> {
        let text = core::str::from_utf8(body).map_err(|_| RecordError::Line {
            line: String::from_utf8_lossy(body).into_owned(),
            reason: "not UTF-8",
        })?;
        let (mut version, mut blinky_ms, mut test_revert) = (None, None, None);
        for line in text.lines() {
            let bad = |reason| RecordError::Line {
                line: line.to_string(),
                reason,
            };
            let (key, value) = line.split_once('=').ok_or_else(|| bad("not key=value"))?;
            match key {
                "version" => {
                    let v = AppVersion::parse_strict(value)
                        .ok_or_else(|| bad("the version is not major.minor.build"))?;
                    version = Some(v);
                }
                "blinky_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| *ms > 0)
                        .ok_or_else(|| bad("not a positive number of milliseconds"))?;
                    blinky_ms = Some(ms);
                }
                "test_revert" => {
                    test_revert = Some(match value {
                        "0" => false,
                        "1" => true,
                        _ => return Err(bad("expected 0 or 1")),
                    });
                }
                _ => return Err(bad("unknown key")),
            }
        }
        Ok(Self {
            version: version.ok_or(RecordError::Missing("version"))?,
            blinky_ms: blinky_ms.ok_or(RecordError::Missing("blinky_ms"))?,
            test_revert: test_revert.ok_or(RecordError::Missing("test_revert"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: AppRecord = AppRecord {
        version: AppVersion::new(1, 2, 0),
        blinky_ms: 100,
        test_revert: true,
    };

    #[test]
    fn a_stamped_executable_gives_its_record_back() {
        let exe = b"\x7fELF and the rest of the program".to_vec();
        let stamped = BAD.stamp(exe.clone()).unwrap();
        assert_eq!(&stamped[..exe.len()], &exe[..]);
        assert_eq!(AppRecord::find(&stamped).unwrap(), Some((BAD, exe.len())));
        // Only the tail is needed.
        let tail = &stamped[stamped.len() - (MAX_BODY + FOOTER).min(stamped.len())..];
        assert_eq!(AppRecord::find(tail).unwrap().unwrap().0, BAD);
    }

    #[test]
    fn stamping_again_replaces_the_record() {
        let exe = vec![0u8; 1000];
        let once = AppRecord::MAKEFILE_DEFAULTS.stamp(exe.clone()).unwrap();
        let twice = BAD.stamp(once).unwrap();
        assert_eq!(twice, BAD.stamp(exe).unwrap());
    }

    #[test]
    fn an_executable_without_a_record_has_none() {
        assert_eq!(AppRecord::find(b"").unwrap(), None);
        assert_eq!(AppRecord::find(&[0xff; 4096]).unwrap(), None);
    }

    #[test]
    fn a_file_is_read_from_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app");
        std::fs::write(&path, BAD.stamp(vec![7u8; 10_000]).unwrap()).unwrap();
        assert_eq!(AppRecord::read(&path).unwrap(), Some(BAD));
        let e = AppRecord::read(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    fn with_body(body: &str) -> Vec<u8> {
        let mut b = body.as_bytes().to_vec();
        b.extend_from_slice(&u16::try_from(body.len()).unwrap().to_le_bytes());
        b.extend_from_slice(&MAGIC);
        b
    }

    #[test]
    fn malformed_records_name_the_line() {
        for (body, want) in [
            (
                "version=1.2\nblinky_ms=1\ntest_revert=0\n",
                "major.minor.build",
            ),
            ("version=1.2.0\nblinky_ms=0\ntest_revert=0\n", "positive"),
            ("version=1.2.0\nblinky_ms=9\ntest_revert=yes\n", "0 or 1"),
            ("version=1.2.0\ncolour=red\n", "unknown key"),
            ("version=1.2.0\n", "no blinky_ms= line"),
            ("hello\n", "not key=value"),
        ] {
            let e = AppRecord::find(&with_body(body)).unwrap_err().to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
        let mut long = with_body("x");
        let n = long.len();
        long[n - FOOTER..n - MAGIC.len()].copy_from_slice(&500u16.to_le_bytes());
        assert!(matches!(
            AppRecord::find(&long),
            Err(RecordError::Length(500))
        ));
    }
}
