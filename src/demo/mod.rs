//! `otactl demo`: the whole update story on this machine — embedded broker, publisher, keys and
//! a simulated board running the real device application — narrated step by step:
//!
//! 1. the board runs 1.0.0 and the publisher has nothing newer: no update;
//! 2. 1.1.0 (faster LED) is published: download, test swap, confirm;
//! 3. a bad 1.2.0 (`TEST_REVERT`) is published: it hangs, the watchdog resets the board and
//!    MCUboot swaps 1.1.0 back;
//! 4. the publisher saw 1.1.0 come back and blocks 1.2.0 for the device: never offered again.
//!
//! [`run`] succeeds only when every step was observed (each wait has a timeout).
//!
//! | module | owns |
//! | --- | --- |
//! | [`build`] | building the device application (`APP_VERSION`, `BLINKY_DELAY_MS`, `test-revert`) |
//! | [`board`] | running `simboard` and following its transcript |
//! | [`publisher`] | the in-process publisher, one image at a time |

pub mod board;
pub mod build;
pub mod publisher;
mod story;

use std::path::PathBuf;

pub use story::run;

/// Settings of [`run`].
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Keep every file here (keys, images, flash, state); `None`: a temporary directory that is
    /// removed afterwards.
    pub dir: Option<PathBuf>,
    /// The board's flash map (`None`: `flashmap/board-host_swap.json` of the source tree).
    pub flashmap: Option<PathBuf>,
    /// How to build the device application.
    pub builder: build::Builder,
    /// Port of the embedded broker (`None`: a free one).
    pub port: Option<u16>,
}

/// What the demo tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A new step of the story.
    Step(String),
    /// Something being prepared (keys, builds, signing).
    Setup(String),
    /// A line of the board transcript.
    Board(String),
    /// What the publisher did.
    Publisher(String),
    /// A step's expected outcome was observed.
    Observed(String),
}
