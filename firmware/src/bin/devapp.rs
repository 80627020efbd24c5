//! The device application of the simulated board (see `firmware::app`).
//!
//! Build-time settings, as the example's Makefile passes them:
//! `APP_VERSION=1.1.0 BLINKY_DELAY_MS=250 cargo build --release -p firmware --features host --bin devapp`
//! (add `--features test-revert` for the image that never feeds the watchdog).

/// `APP_VERSION` (default 1.0.0, the example Makefile's).
const APP_VERSION: &str = match option_env!("APP_VERSION") {
    Some(v) => v,
    None => "1.0.0",
};

/// `BLINKY_DELAY_MS` (default 1000); a value that is not a number fails the build.
const BLINKY_DELAY_MS: u64 = match option_env!("BLINKY_DELAY_MS") {
    Some(ms) => parse_ms(ms),
    None => 1000,
};

const fn parse_ms(text: &str) -> u64 {
    let b = text.as_bytes();
    assert!(!b.is_empty(), "BLINKY_DELAY_MS is empty");
    let mut v: u64 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "BLINKY_DELAY_MS must be a number of milliseconds"
        );
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

fn main() -> std::process::ExitCode {
    firmware::app::main(firmware::app::AppBuild {
        version: APP_VERSION,
        blinky_ms: BLINKY_DELAY_MS,
        test_revert: cfg!(feature = "test-revert"),
    })
}
