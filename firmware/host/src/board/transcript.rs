//! The board transcript: one line per event, `[  12.345] source: message`, on stdout.
//!
//! Every line a person (or a test) follows comes through here: the board's own lines (`board`,
//! `boot`) and the application's lines relayed from its stdout (`app`, `led`, `ota`). Times are
//! seconds since the board process started, so a transcript reads the same across resets.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Prints one transcript line for `source` (a short tag such as `board` or `boot`).
pub fn line(source: &str, message: &str) {
    relay(&format!("{source}: {message}"));
}

/// Prints a line that already carries its `source: ` tag (a relayed application line).
pub fn relay(tagged: &str) {
    let t = epoch().elapsed();
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not kill the board mid-swap: ignore errors.
    let _ = writeln!(
        out,
        "[{:>4}.{:03}] {tagged}",
        t.as_secs(),
        t.subsec_millis()
    );
    let _ = out.flush();
}

/// Starts the transcript clock (call first thing, so times count from power-on).
pub fn start() {
    let _ = epoch();
}
