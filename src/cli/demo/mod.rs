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
//! [`story::run`] succeeds only when every step was observed (each wait has a timeout).
//!
//! | module | owns |
//! | --- | --- |
//! | `bins` | finding `otactl-simboard` and `otactl-devapp` beside `otactl` |
//! | `story` | keys, the three signed images, the steps and what each must show |
//! | `publisher` | the in-process publisher, one image at a time |

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Ctx;

mod bins;
mod publisher;
mod story;

/// Sign three versions of the device application (1.0.0, 1.1.0 with a faster LED, a bad
/// 1.2.0 that hangs), start an embedded broker, the publisher and a simulated board on 1.0.0,
/// and narrate: no update at 1.0.0 → update to 1.1.0 → bad 1.2.0 reverted by the watchdog and
/// MCUboot → 1.2.0 not offered again. Exits 0 only when every step was observed.
///
/// The board and the application are otactl-simboard and otactl-devapp, installed beside
/// otactl; each version is otactl-devapp with its build record (version, LED period,
/// TEST_REVERT) appended before signing. Nothing is built and no source tree is needed.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl demo\n  otactl demo --dir demo-run\n  cargo run --release -- demo"
)]
pub struct Cmd {
    /// Keep keys, images, flash and state in this directory (default: a temporary one).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The board's flash map (default: otactl's copy of flashmap/board-host_swap.json).
    #[arg(long, value_name = "FILE")]
    flashmap: Option<PathBuf>,
    /// Port of the embedded broker (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Seconds between the device application's update checks.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = positive_secs)]
    check_secs: f64,
    /// The board's watchdog timeout (how long the bad 1.2.0 hangs before the reset), in ms.
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    watchdog_ms: u64,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| (0.1..=3600.0).contains(v))
        .ok_or_else(|| format!("{s:?} is not a number of seconds between 0.1 and 3600"))
}

/// Prints a note. Write errors are ignored: if the reader goes away (`otactl demo | head`), the
/// story still runs to its end, so the board and broker it started are stopped, not orphaned.
fn print(note: &Note) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = match note {
        Note::Step(s) => writeln!(out, "\n==> {s}"),
        Note::Setup(s) => writeln!(out, "    {s}"),
        Note::Board(s) => writeln!(out, "    board     | {s}"),
        Note::Publisher(s) => writeln!(out, "    publisher | {s}"),
        Note::Observed(s) => writeln!(out, "    ✓ {s}"),
    };
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let cfg = DemoConfig {
            dir: self.dir,
            flashmap: self.flashmap,
            port: self.port,
            check_secs: self.check_secs,
            watchdog_ms: self.watchdog_ms,
        };
        let quiet = ctx.quiet;
        let story = story::run(&cfg, move |n| {
            if !quiet || matches!(n, Note::Step(_)) {
                print(&n);
            }
        })?;
        outln!(
            "\ndemo complete: every step of the update story was observed (the story took {:.1} s)",
            story.as_secs_f64()
        );
        Ok(())
    }
}

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
