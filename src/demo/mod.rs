//! `otactl demo`: the whole update story on this machine — embedded broker, publisher, keys and
//! a simulated board running the real device application — narrated step by step:
//!
//! 1. the board runs 1.0.0 and the publisher has nothing newer: no update;
//! 2. 1.1.0 (faster LED) is published: download, test swap, confirm;
//! 3. a bad 1.2.0 (`TEST_REVERT`) is published: it hangs, the watchdog resets the board and
//!    MCUboot swaps 1.1.0 back;
//! 4. the publisher saw 1.1.0 come back and blocks 1.2.0 for the device: never offered again.
//!
//! Nothing is built while the demo runs: the board (`otactl-simboard`) and the device
//! application (`otactl-devapp`) are installed beside `otactl`. The three versions are one
//! executable with three build records appended before signing
//! ([`ota_host::app::record`]): version, LED period and `TEST_REVERT` travel inside the signed
//! image the board boots from its primary slot.
//!
//! [`run`] succeeds only when every step was observed (each wait has a timeout).
//!
//! | module | owns |
//! | --- | --- |
//! | `bins` | finding `otactl-simboard` and `otactl-devapp` beside `otactl` |
//! | `story` | keys, the three signed images, the steps and what each must show |
//! | `publisher` | the in-process publisher, one image at a time |

mod bins;
mod publisher;
mod story;

use std::path::PathBuf;

pub use story::run;

/// Settings of [`run`].
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Keep every file here (keys, images, flash, state); `None`: a temporary directory that is
    /// removed afterwards.
    pub dir: Option<PathBuf>,
    /// The board's flash map (`None`: otactl's copy of `flashmap/board-host_swap.json`).
    pub flashmap: Option<PathBuf>,
    /// Port of the embedded broker (`None`: a free one).
    pub port: Option<u16>,
    /// Seconds between the device application's update checks.
    pub check_secs: f64,
    /// The board's watchdog timeout in milliseconds (how long the bad 1.2.0 hangs).
    pub watchdog_ms: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            dir: None,
            flashmap: None,
            port: None,
            check_secs: 2.0,
            watchdog_ms: 3000,
        }
    }
}

/// What the demo tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A new step of the story.
    Step(String),
    /// Something being prepared (keys, images, signing).
    Setup(String),
    /// A line of the board transcript.
    Board(String),
    /// What the publisher did.
    Publisher(String),
    /// A step's expected outcome was observed.
    Observed(String),
}
