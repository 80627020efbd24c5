//! The board's command line, both ends: [`main`] parses it (the `otactl-simboard` executable)
//! and [`BoardSpec::args`] writes it (whoever starts a board: `otactl demo`, the tests).
//!
//! ```text
//! otactl-simboard --flash DIR --flashmap board-host_swap.json --pubkey key.pub.pem \
//!          [--provision signed-v1.0.0.bin] [--broker mqtts://127.0.0.1:8884 --ca ca.pem \
//!          --cert device.pem --key device.key [--tls-server-name NAME]] [--check-secs 10] [--flow push] \
//!          [--watchdog-ms 4000] [--boot-erase-delay-us 0] [--workdir DIR] [--max-boots N]
//! ```
//!
//! The application's settings (`--broker` … `--flow`) are handed to it as the `OTA_DEVICE_*`
//! environment of [`crate::app::config`], as a real board's are compiled into its firmware.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::BoardConfig;

const USAGE: &str =
    "usage: otactl-simboard --flash DIR --flashmap FILE --pubkey PEM [--provision IMAGE] \
[--workdir DIR] [--broker URL] [--ca PEM --cert PEM --key PEM] [--tls-server-name NAME] \
[--prefix P] [--board B] [--serial S] [--check-secs S] [--flow push|chunks] [--watchdog-ms MS] \
[--boot-erase-delay-us US] [--max-boots N]";

/// The board options that become the application's environment.
const APP_ENV: [(&str, &str); 10] = [
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
];

/// How to start a board: the executable and its command line.
#[derive(Clone, Debug)]
pub struct BoardSpec {
    /// The `otactl-simboard` executable.
    pub simboard: PathBuf,
    /// Its flash directory (created on first use).
    pub flash: PathBuf,
    /// Its flash map.
    pub flashmap: PathBuf,
    /// The bootloader's public key (PEM).
    pub pubkey: PathBuf,
    /// Where it extracts the executables it boots.
    pub workdir: PathBuf,
    /// Broker URL for the application (`mqtt://…` or `mqtts://…`).
    pub broker: String,
    /// CA, client certificate and key for `mqtts://`.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// The name the broker's certificate is verified under, when it does not name the address
    /// (`mosquitto_server` for Infineon's generate_ssl_cert.sh broker).
    pub tls_server_name: Option<String>,
    /// Seconds between the application's update checks.
    pub check_secs: f64,
    /// Watchdog timeout in milliseconds.
    pub watchdog_ms: u64,
    /// Delay per flash erase while the bootloader runs (makes swaps long enough to watch or
    /// interrupt), in microseconds.
    pub boot_erase_delay_us: u64,
    /// The `SerialNumber` its requests carry (`None`: the example's template serial, which
    /// the publisher cannot tell apart from other boards').
    pub serial: Option<String>,
    /// The application's download flow (`push` or `chunks`; `None`: the app's default, push).
    pub flow: Option<String>,
}

impl BoardSpec {
    /// The command line (without the executable) that starts this board; with `provision`, it
    /// first writes that signed image into the primary slot, like a programmer would.
    #[must_use]
    pub fn args(&self, provision: Option<&std::path::Path>) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut put = |flag: &str, value: OsString| {
            a.push(format!("--{flag}").into());
            a.push(value);
        };
        put("flash", self.flash.clone().into());
        put("flashmap", self.flashmap.clone().into());
        put("pubkey", self.pubkey.clone().into());
        put("workdir", self.workdir.clone().into());
        put("broker", self.broker.clone().into());
        put("check-secs", self.check_secs.to_string().into());
        put("watchdog-ms", self.watchdog_ms.to_string().into());
        put(
            "boot-erase-delay-us",
            self.boot_erase_delay_us.to_string().into(),
        );
        for (flag, value) in [
            ("serial", &self.serial),
            ("flow", &self.flow),
            ("tls-server-name", &self.tls_server_name),
        ] {
            if let Some(v) = value {
                put(flag, v.into());
            }
        }
        if let Some((ca, cert, key)) = &self.tls {
            put("ca", ca.clone().into());
            put("cert", cert.clone().into());
            put("key", key.clone().into());
        }
        if let Some(p) = provision {
            put("provision", p.into());
        }
        a
    }
}

/// A command line the board cannot run with; the Display names the option (and shows the usage
/// where that helps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `-h` or `--help`: the usage itself.
    #[error("{USAGE}")]
    Help,
    /// An argument that is not an option.
    #[error("unexpected argument {0:?}\n{USAGE}")]
    Unexpected(String),
    /// An option at the end without its value.
    #[error("{0} needs a value")]
    NeedsValue(String),
    /// A required option is missing.
    #[error("--{0} is required\n{USAGE}")]
    Required(&'static str),
    /// A number option with something else.
    #[error("--{flag} {value:?}: not a number")]
    NotANumber {
        /// The option (without `--`).
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// An option the board does not know.
    #[error("unknown option --{0}\n{USAGE}")]
    Unknown(String),
}

/// Parses the board's command line (without the executable name).
///
/// # Errors
/// A message naming the option that is missing, unknown or malformed (with the usage).
pub fn parse(args: &[String]) -> Result<BoardConfig, UsageError> {
    let mut get = std::collections::HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(UsageError::Help);
        }
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| UsageError::Unexpected(flag.clone()))?;
        let value = it
            .next()
            .ok_or_else(|| UsageError::NeedsValue(flag.clone()))?;
        get.insert(name.to_string(), value.clone());
    }
    let mut take = |k: &str| get.remove(k);
    let need = |v: Option<String>, k: &'static str| v.ok_or(UsageError::Required(k));
    let num = |v: Option<String>, k: &'static str, default: u64| -> Result<u64, UsageError> {
        v.map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| UsageError::NotANumber { flag: k, value: s })
        })
    };
    let flash = PathBuf::from(need(take("flash"), "flash")?);
    let flashmap = PathBuf::from(need(take("flashmap"), "flashmap")?);
    let pubkey = PathBuf::from(need(take("pubkey"), "pubkey")?);
    let mut env = vec![
        ("OTA_DEVICE_FLASH".to_string(), flash.display().to_string()),
        ("OTA_DEVICE_FLASHMAP".into(), flashmap.display().to_string()),
        ("OTA_DEVICE_PUBKEY".into(), pubkey.display().to_string()),
    ];
    for (flag, var) in APP_ENV {
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
                s.parse().map_err(|_| UsageError::NotANumber {
                    flag: "max-boots",
                    value: s,
                })
            })
            .transpose()?,
        app_env: env,
    };
    if let Some(k) = get.keys().next() {
        return Err(UsageError::Unknown(k.clone()));
    }
    Ok(cfg)
}

/// The board's `main` (the `otactl-simboard` executable): parse, then [`super::run`].
#[must_use]
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("otactl-simboard: {e}");
            return ExitCode::from(2);
        }
    };
    match super::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otactl-simboard: {}", ota_tls::error_chain(&e));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BoardSpec {
        BoardSpec {
            simboard: "otactl-simboard".into(),
            flash: "/b/flash".into(),
            flashmap: "/b/map.json".into(),
            pubkey: "/b/key.pem".into(),
            workdir: "/b/run".into(),
            broker: "mqtts://127.0.0.1:8884".into(),
            tls: Some(("ca.pem".into(), "dev.pem".into(), "dev.key".into())),
            tls_server_name: Some("mosquitto_server".into()),
            check_secs: 1.5,
            watchdog_ms: 1500,
            boot_erase_delay_us: 20,
            serial: Some("DEV-1".into()),
            flow: Some("chunks".into()),
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn the_written_command_line_parses_back() {
        let cfg = parse(&strings(spec().args(Some("/img.bin".as_ref())))).unwrap();
        assert_eq!(cfg.flash, PathBuf::from("/b/flash"));
        assert_eq!(cfg.workdir, PathBuf::from("/b/run"));
        assert_eq!(cfg.provision, Some(PathBuf::from("/img.bin")));
        assert_eq!(cfg.watchdog, Duration::from_millis(1500));
        assert_eq!(cfg.boot_erase_delay, Duration::from_micros(20));
        let env: std::collections::HashMap<_, _> = cfg.app_env.into_iter().collect();
        for (var, want) in [
            ("OTA_DEVICE_FLASH", "/b/flash"),
            ("OTA_DEVICE_BROKER", "mqtts://127.0.0.1:8884"),
            ("OTA_DEVICE_CA", "ca.pem"),
            ("OTA_DEVICE_CERT", "dev.pem"),
            ("OTA_DEVICE_KEY", "dev.key"),
            ("OTA_DEVICE_TLS_SERVER_NAME", "mosquitto_server"),
            ("OTA_DEVICE_SERIAL", "DEV-1"),
            ("OTA_DEVICE_CHECK_SECS", "1.5"),
            ("OTA_DEVICE_FLOW", "chunks"),
        ] {
            assert_eq!(env.get(var).map(String::as_str), Some(want), "{var}");
        }
    }

    #[test]
    fn mistakes_name_the_option() {
        let e = parse(&["--flash".into(), "x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--flashmap is required"), "{e}");
        let mut a = strings(spec().args(None));
        a.extend(["--colour".into(), "red".into()]);
        assert!(parse(&a)
            .unwrap_err()
            .to_string()
            .starts_with("unknown option --colour"));
        a.truncate(a.len() - 2);
        a.extend(["--watchdog-ms".into(), "soon".into()]);
        let e = parse(&a).unwrap_err().to_string();
        assert!(e.contains("--watchdog-ms \"soon\": not a number"), "{e}");
    }
}
