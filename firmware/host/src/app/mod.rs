//! The device application (host build): what runs on the simulated board after the bootloader
//! accepted it.
//!
//! It is the host twin of the example's firmware (`mtb-example-ota-mqtt`): a **LED task** that
//! toggles every `BLINKY_DELAY_MS` and keeps the watchdog fed, and an **OTA task** that runs the
//! device OTA agent ([`ota_core::agent`]) over MQTT ([`link`]) against the board's flash. What the
//! example's Makefile fixes per build (`APP_VERSION`, `BLINKY_DELAY_MS`, the `TEST_REVERT` image
//! that hangs before it feeds the watchdog) comes from the [`record`] at the end of the
//! application's own executable: the signed image the bootloader booted decides what runs.
//!
//! The OTA task's loop ([`ota::drive`]) reports [`step::Step`]s to an observer; the
//! application prints them as transcript lines, and `otactl device` runs the same loop
//! in-process, against memory-backed flash, as a stand-in board.
//!
//! ## Talking to the board
//!
//! Everything the application prints on stdout is a transcript line `tag: message` that the
//! board relays; the line [`FEED`] kicks the watchdog; exiting with [`RESET_EXIT_CODE`] is
//! `NVIC_SystemReset()`. When stdin reaches EOF the board has lost power (it died or was
//! killed), and the application stops at once.

pub mod config;
pub mod link;
pub mod ota;
pub mod record;
pub mod step;

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

pub use crate::board::launch::{FEED, RESET_EXIT_CODE};
use config::DeviceConfig;
use record::{AppRecord, RecordError};

/// Prints one transcript line.
pub fn say(tag: &str, message: &str) {
    line(format_args!("{tag}: {message}"));
}

fn feed_watchdog() {
    line(format_args!("{FEED}"));
}

/// Writes one line to the board. If the board is gone (its end of the pipe closed), the power
/// is off: stop now, as [`watch_power`] would a moment later, instead of panicking.
fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// The board's power: stdin EOF (or error) means the board is gone, so stop immediately.
fn watch_power() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
}

/// The build record of the running executable (see [`record`]); without one, the Makefile's
/// defaults.
fn own_record() -> Result<AppRecord, RecordError> {
    let exe = std::env::current_exe().map_err(RecordError::Locate)?;
    match AppRecord::read(&exe) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => {
            say(
                "app",
                "no build record in this executable: the Makefile's defaults (1.0.0, 1000 ms)",
            );
            Ok(AppRecord::MAKEFILE_DEFAULTS)
        }
        Err(e) => Err(e),
    }
}

/// The application's `main` (the `otactl-devapp` executable).
#[must_use]
pub fn main() -> ExitCode {
    watch_power();
    let build = match own_record() {
        Ok(r) => r,
        Err(e) => {
            say("app", &e.to_string());
            return ExitCode::from(2);
        }
    };
    let version = build.version;
    say("app", &format!("version {version} started"));
    if build.test_revert {
        say(
            "app",
            "TEST_REVERT build: hanging before the watchdog is fed",
        );
        loop {
            std::thread::park();
        }
    }
    let cfg = match DeviceConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            say(
                "app",
                &format!("configuration error: {}", ota_tls::error_chain(&e)),
            );
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say("app", &format!("cannot start the scheduler: {e}"));
            return ExitCode::from(2);
        }
    };
    rt.block_on(async move {
        tokio::spawn(led_task(build.blinky_ms));
        let reset = ota::ota_task(cfg, version).await;
        say("app", &format!("resetting: {reset}"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    std::process::exit(RESET_EXIT_CODE)
}

/// The LED task: toggles every `blinky_ms` and feeds the watchdog each time, like the example's
/// main loop kicks the WDT.
async fn led_task(blinky_ms: u64) {
    say("led", &format!("blink period {blinky_ms} ms"));
    feed_watchdog();
    let mut tick = tokio::time::interval(Duration::from_millis(blinky_ms.max(1)));
    loop {
        tick.tick().await;
        feed_watchdog();
    }
}
