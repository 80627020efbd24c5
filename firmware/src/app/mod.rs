//! The device application (host build): what runs on the simulated board after the bootloader
//! accepted it.
//!
//! It is the host twin of the example's firmware (`mtb-example-ota-mqtt`): a **LED task** that
//! toggles every `BLINKY_DELAY_MS` and keeps the watchdog fed, and an **OTA task** that runs the
//! device OTA agent ([`crate::agent`]) over MQTT ([`link`]) against the board's flash. Its
//! version and blink period are fixed at build time (`APP_VERSION`, `BLINKY_DELAY_MS`, read by
//! the `devapp` binary with `option_env!`, as the example's Makefile passes `-D` flags), and the
//! `test-revert` feature builds the example's `TEST_REVERT` image, which hangs before it feeds
//! the watchdog.
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
pub mod step;

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

pub use crate::board::launch::{FEED, RESET_EXIT_CODE};
use crate::protocol::AppVersion;
use config::DeviceConfig;

/// What the build fixed: the example's Makefile variables.
#[derive(Clone, Copy, Debug)]
pub struct AppBuild {
    /// `APP_VERSION` (`major.minor.build`).
    pub version: &'static str,
    /// `BLINKY_DELAY_MS`: the LED toggles this often (the "blink period" in the transcript).
    pub blinky_ms: u64,
    /// The `TEST_REVERT` image: hang before feeding the watchdog.
    pub test_revert: bool,
}

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

/// The application's `main`.
#[must_use]
pub fn main(build: AppBuild) -> ExitCode {
    watch_power();
    let Some(version) = AppVersion::parse_strict(build.version) else {
        say(
            "app",
            &format!("APP_VERSION {:?} is not major.minor.build", build.version),
        );
        return ExitCode::from(2);
    };
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
            say("app", &format!("configuration error: {e}"));
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
