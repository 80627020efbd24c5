//! The simulated board (see `firmware::board`).
//!
//! ```text
//! simboard --flash DIR --flashmap flashmap/board-host_swap.json --pubkey key.pub.pem \
//!          [--provision signed-v1.0.0.bin] [--broker mqtts://127.0.0.1:8884 --ca ca.pem \
//!          --cert device.pem --key device.key [--tls-server-name NAME]] [--check-secs 10] [--flow push] \
//!          [--watchdog-ms 4000] [--boot-erase-delay-us 0] [--workdir DIR] [--max-boots N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use firmware::board::{self, BoardConfig};

const USAGE: &str = "usage: simboard --flash DIR --flashmap FILE --pubkey PEM [--provision IMAGE] \
[--workdir DIR] [--broker URL] [--ca PEM --cert PEM --key PEM] [--tls-server-name NAME] \
[--prefix P] [--board B] [--serial S] [--check-secs S] [--flow push|chunks] [--watchdog-ms MS] [--boot-erase-delay-us US] \
[--max-boots N]";

fn parse(args: &[String]) -> Result<BoardConfig, String> {
    let mut get = std::collections::HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}\n{USAGE}"))?;
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        get.insert(name.to_string(), value.clone());
    }
    let mut take = |k: &str| get.remove(k);
    let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("--{k} is required\n{USAGE}"));
    let num = |v: Option<String>, k: &str, default: u64| -> Result<u64, String> {
        v.map_or(Ok(default), |s| {
            s.parse().map_err(|_| format!("--{k} {s:?}: not a number"))
        })
    };
    let flash = PathBuf::from(need(take("flash"), "flash")?);
    let mut env = vec![("OTA_DEVICE_FLASH".to_string(), flash.display().to_string())];
    let flashmap = PathBuf::from(need(take("flashmap"), "flashmap")?);
    env.push(("OTA_DEVICE_FLASHMAP".into(), flashmap.display().to_string()));
    let pubkey = PathBuf::from(need(take("pubkey"), "pubkey")?);
    env.push(("OTA_DEVICE_PUBKEY".into(), pubkey.display().to_string()));
    for (flag, var) in [
        ("broker", "OTA_DEVICE_BROKER"),
        ("ca", "OTA_DEVICE_CA"),
        ("cert", "OTA_DEVICE_CERT"),
        ("key", "OTA_DEVICE_KEY"),
        ("tls-server-name", "OTA_DEVICE_TLS_SERVER_NAME"),
        ("prefix", "OTA_DEVICE_PREFIX"),
        ("board", "OTA_DEVICE_BOARD"),
        ("serial", "OTA_DEVICE_SERIAL"),
        ("check-secs", "OTA_DEVICE_CHECK_SECS"),
        ("flow", "OTA_DEVICE_FLOW"),
    ] {
        if let Some(v) = take(flag) {
            env.push((var.into(), v));
        }
    }
    let cfg = BoardConfig {
        workdir: take("workdir").map_or_else(|| flash.join("run"), PathBuf::from),
        flash,
        flashmap,
        pubkey,
        provision: take("provision").map(PathBuf::from),
        watchdog: Duration::from_millis(num(take("watchdog-ms"), "watchdog-ms", 4000)?),
        boot_erase_delay: Duration::from_micros(num(
            take("boot-erase-delay-us"),
            "boot-erase-delay-us",
            0,
        )?),
        max_boots: take("max-boots")
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("--max-boots {s:?}: not a number"))
            })
            .transpose()?,
        app_env: env,
    };
    if let Some(k) = get.keys().next() {
        return Err(format!("unknown option --{k}\n{USAGE}"));
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("simboard: {e}");
            return ExitCode::from(2);
        }
    };
    match board::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simboard: {e}");
            ExitCode::from(1)
        }
    }
}
