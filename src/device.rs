//! The stand-in board behind `otactl device`.
//!
//! Each device is the firmware crate's OTA task ([`ota_host::app::ota::drive`], the loop the
//! simulated board's application runs, around the sans-IO agent) run in-process on
//! memory-backed flash ([`SimDevice`]) against the user's broker: it asks for an update like
//! the example firmware ("Update Availability" with its version, then "Request Update"),
//! downloads into the secondary slot, and the agent verifies the image (hash, key, signature,
//! newer version) with the signing key before marking it pending. Nothing is booted.
//!
//! A device ends with an [`Outcome`]: the image downloaded and verified, or the reason it did
//! not (no update, no answer, the image did not verify, a connection problem retrying cannot
//! fix, time ran out). [`run`] starts several at once, with distinct serials and session names.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ota_core::agent::Delivery;
use ota_core::flashmap::{Area, Device, FlashMap, UpgradeMode};
use ota_core::image::verify::{validate, PublicKey};
use ota_core::protocol::{AppVersion, ErrorCode};
use ota_host::app::config::OtaConfig;
use ota_host::app::link::LinkError;
use ota_host::app::ota::{drive, Drive, Ending};
use ota_host::app::step::Step;
use ota_host::sim::SimDevice;

use crate::mqtt::BrokerUrl;
use crate::publish::transport::{classify_v4, Role};

/// How long the agent waits for the job document (see [`ota_host::app::ota::drive`]).
const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// The flash map of a stand-in without one: overwrite-only, 8 MiB slots of 4 KiB sectors,
/// erased to 0xff, 8-byte writes (the largest image it accepts is a bit under 8 MiB).
pub const DEFAULT_MAP: FlashMap = FlashMap {
    bootloader: Area::new(0x1000_0000, 0x1_0000, 0x1000, 0xff, 8, Device::Internal),
    primary: Area::new(0x1001_0000, 0x80_0000, 0x1000, 0xff, 8, Device::Internal),
    secondary: Area::new(0x1081_0000, 0x80_0000, 0x1000, 0xff, 8, Device::Internal),
    scratch: None,
    status: None,
    mode: UpgradeMode::Overwrite,
    internal_base: 0x1000_0000,
    enc_images: false,
};

/// What every stand-in device shares.
#[derive(Clone, Debug)]
pub struct StandIn {
    /// The broker.
    pub broker: BrokerUrl,
    /// The TLS client configuration (`mqtts://`), from [`crate::mqtt::tls_for`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Topic prefix (`COMPANY_TOPIC_PREPEND`).
    pub prefix: String,
    /// Board string (`CY_TARGET_BOARD_STRING`).
    pub board: String,
    /// The version the devices say they run.
    pub version: AppVersion,
    /// The key downloads must verify with.
    pub key: PublicKey,
    /// Where that key came from (named when an image does not verify).
    pub key_path: PathBuf,
    /// The devices' flash map (the board's, so an image too large for its slot fails here too).
    pub map: FlashMap,
    /// Where the flash map came from (`None`: [`DEFAULT_MAP`]).
    pub map_path: Option<PathBuf>,
    /// Push (the example's "Request Update") or chunk requests.
    pub flow: Delivery,
    /// How long a device may take, from start to verified image.
    pub timeout: Duration,
}

/// How one device's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The image downloaded and verified with the key.
    Updated {
        /// Its version.
        version: String,
        /// Its size (header, body and TLVs).
        bytes: u32,
    },
    /// No update: the publisher had nothing newer, or nobody answered.
    NoUpdate(String),
    /// The download failed or the image did not verify.
    Failed(String),
    /// A connection problem that retrying cannot fix (certificates, authorisation, host name).
    CannotConnect(String),
    /// The time limit passed.
    TimedOut(String),
}

impl Outcome {
    /// Whether the device got a verified image.
    #[must_use]
    pub fn is_updated(&self) -> bool {
        matches!(self, Self::Updated { .. })
    }

    /// A short stable name (`otactl device --json`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Updated { .. } => "updated",
            Self::NoUpdate(_) => "no_update",
            Self::Failed(_) => "failed",
            Self::CannotConnect(_) => "cannot_connect",
            Self::TimedOut(_) => "timed_out",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Updated { version, bytes } => {
                write!(
                    f,
                    "updated: image {version} ({bytes} bytes) downloaded and verified"
                )
            }
            Self::NoUpdate(why)
            | Self::Failed(why)
            | Self::CannotConnect(why)
            | Self::TimedOut(why) => f.write_str(why),
        }
    }
}

/// One device of a run, as [`run`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// 1-based.
    pub number: usize,
    /// Its `SerialNumber`.
    pub serial: &'a str,
}

/// Receives every step of every device (from several tasks at once).
pub type Reporter = Arc<dyn Fn(Who<'_>, &Step<'_>) + Send + Sync>;

/// Runs one device per serial at once; returns each one's outcome, in the order of `serials`.
///
/// Session names (client ID `CY_IOT_DEVICE<n>`, unique topic `…/OTAImage/<n>`) come from each
/// device's clock as on a real board; the clocks start spread over the 65536 values, so devices
/// started together do not pick the same names.
///
/// # Panics
/// When a device's task panics.
pub async fn run(cfg: Arc<StandIn>, serials: Vec<String>, report: Reporter) -> Vec<Outcome> {
    let n = serials.len().max(1) as u64;
    let base = ota_host::app::ota::boot_ms();
    let mut tasks = Vec::new();
    for (i, serial) in serials.into_iter().enumerate() {
        let boot_ms = (base + i as u64 * (0x1_0000 / n)) & 0xffff;
        let (cfg, report) = (Arc::clone(&cfg), Arc::clone(&report));
        tasks.push(tokio::spawn(async move {
            one(&cfg, i + 1, &serial, boot_ms, &report).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a stand-in device's task"));
    }
    out
}

/// What a device has seen so far.
struct Watch<'a> {
    cfg: &'a StandIn,
    verified: bool,
    /// A check went unanswered (the agent asks again every [`JOB_TIMEOUT`]).
    unanswered: bool,
    last: String,
    verdict: Option<Outcome>,
}

async fn one(
    cfg: &StandIn,
    number: usize,
    serial: &str,
    boot_ms: u64,
    report: &Reporter,
) -> Outcome {
    let ota = OtaConfig {
        host: cfg.broker.host.clone(),
        port: cfg.broker.port,
        tls: cfg.broker.tls,
        prefix: cfg.prefix.clone(),
        board: cfg.board.clone(),
        serial: serial.to_string(),
        check_interval: JOB_TIMEOUT,
        flow: cfg.flow,
    };
    let mut dev = SimDevice::new(cfg.map, number as u64);
    let keys = [cfg.key];
    let mut w = Watch {
        cfg,
        verified: false,
        unanswered: false,
        last: "starting".into(),
        verdict: None,
    };
    let who = Who { number, serial };
    let mut obs = |step: &Step<'_>| {
        report(who, step);
        w.last = describe(step);
        match w.judge(step) {
            Some(o) => {
                w.verdict = Some(o);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    };
    let run = Drive {
        cfg: &ota,
        map: cfg.map,
        keys: &keys,
        running: cfg.version,
        tls: cfg.tls.clone(),
        boot_ms,
    };
    let ended = tokio::time::timeout(cfg.timeout, drive(run, &mut dev, &mut obs)).await;
    match ended {
        Err(_) if w.unanswered => Outcome::NoUpdate(w.no_answer()),
        Err(_) => Outcome::TimedOut(format!(
            "no verified image within {} s (last step: {})",
            cfg.timeout.as_secs(),
            w.last
        )),
        Ok(Ending::Reset(_)) if w.verified => check(cfg, &dev),
        Ok(Ending::Reset(why)) => Outcome::Failed(why),
        Ok(Ending::Stopped) => w
            .verdict
            .unwrap_or_else(|| Outcome::Failed("stopped".into())),
    }
}

/// The image the agent verified, checked once more with firmware's image verification over the
/// secondary slot (its version and size for the report).
fn check(cfg: &StandIn, dev: &SimDevice) -> Outcome {
    let mut slot: &[u8] = dev.secondary.data();
    let limit = cfg.map.download_max_image_size();
    match validate(&mut slot, limit, &[cfg.key]) {
        Ok(img) => {
            let v = img.header.version;
            let mut version = format!("{}.{}.{}", v.major, v.minor, v.revision);
            if v.build_num != 0 {
                version = format!("{version}+{}", v.build_num);
            }
            Outcome::Updated {
                version,
                bytes: img.end,
            }
        }
        Err(e) => Outcome::Failed(format!(
            "{}: the downloaded image does not verify with this key: {e}",
            cfg.key_path.display()
        )),
    }
}

impl Watch<'_> {
    /// The outcome a step settles, if it does.
    fn judge(&mut self, step: &Step<'_>) -> Option<Outcome> {
        let cfg = self.cfg;
        match step {
            Step::ConnectFailed { error, .. } => match &error.cause {
                LinkError::Net(e) => {
                    let n = classify_v4(e, Role::Device);
                    n.permanent.then(|| {
                        Outcome::CannotConnect(format!(
                            "cannot connect to {}: {}",
                            cfg.broker, n.text
                        ))
                    })
                }
                _ => None,
            },
            // The agent's code for a check nobody answered within JOB_TIMEOUT (a publisher
            // answers "No Update Available", which the agent takes as invalid_version). The
            // publisher may not be up yet: the agent asks again until the time limit.
            Step::NoUpdate(Some(ErrorCode::NoUpdateAvailable)) => {
                self.unanswered = true;
                None
            }
            Step::NoUpdate(code) => Some(self.no_update(*code)),
            Step::Accepted { .. } => {
                self.unanswered = false;
                None
            }
            Step::Verified => {
                self.verified = true;
                None
            }
            Step::DownloadFailed(code) => Some(Outcome::Failed(download_failed(cfg, *code))),
            _ => None,
        }
    }

    /// Why nobody answered, and what to check.
    fn no_answer(&self) -> String {
        let cfg = self.cfg;
        format!(
            "no publisher answered in {} s: check that `otactl publish` runs for board {} with \
             topic prefix {}, and that the broker lets this certificate publish to \
             {}/{}/publish_notify",
            cfg.timeout.as_secs(),
            cfg.board,
            cfg.prefix,
            cfg.prefix,
            cfg.board
        )
    }

    fn no_update(&self, code: Option<ErrorCode>) -> Outcome {
        let cfg = self.cfg;
        Outcome::NoUpdate(match code {
            Some(ErrorCode::WrongBoard) => format!(
                "the publisher offered an image for another board than {} (wrong_board)",
                cfg.board
            ),
            Some(ErrorCode::InvalidVersion) | None => format!(
                "no update available: the publisher has nothing newer than {} for {} (pass \
                 --version with an older version, or publish a newer image)",
                cfg.version, cfg.board
            ),
            Some(c) => format!("no update: {c}"),
        })
    }
}

/// Why a download ended without an image, in words.
fn download_failed(cfg: &StandIn, code: Option<ErrorCode>) -> String {
    let key = cfg.key_path.display();
    match code {
        Some(c @ (ErrorCode::ImageUnknownKey | ErrorCode::ImageBadSignature)) => format!(
            "{key}: the downloaded image's signature does not verify with this key ({c}); the \
             image was signed with another key"
        ),
        Some(c @ ErrorCode::ImageHashMismatch) => {
            format!("the downloaded image is damaged: its SHA-256 does not match ({c})")
        }
        Some(c @ ErrorCode::ImageTooLarge) => format!(
            "the image does not fit the secondary slot ({} bytes) of {} ({c})",
            cfg.map.secondary.size,
            cfg.map_path.as_ref().map_or_else(
                || "the default flash map: pass the board's --flashmap".to_string(),
                |p| p.display().to_string()
            )
        ),
        Some(c @ ErrorCode::InvalidVersion) => format!(
            "the image's header carries a version not newer than {} ({c})",
            cfg.version
        ),
        Some(c) => format!("download failed: {c}"),
        None => "download stopped".into(),
    }
}

/// A step in words, with connection failures explained (permanent or not) for people.
#[must_use]
pub fn describe(step: &Step<'_>) -> String {
    if let Step::ConnectFailed {
        error,
        home: false,
        retry,
    } = step
    {
        let address = format!("{}:{}", error.host, error.port);
        let (why, permanent) = match &error.cause {
            LinkError::Net(e) => {
                let n = classify_v4(e, Role::Device);
                (n.text, n.permanent)
            }
            other => (other.to_string(), false),
        };
        if permanent {
            return format!("cannot connect to {address}: {why}");
        }
        return format!(
            "cannot connect to {address} ({why}); is the broker running? retrying in {} s",
            retry.as_secs()
        );
    }
    step.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stand_in() -> StandIn {
        let key = crate::sign::generate(crate::KeyType::EcdsaP256).public_key();
        StandIn {
            broker: BrokerUrl::parse("mqtt://127.0.0.1:1883").unwrap(),
            tls: None,
            prefix: "MyUniqueTopic".into(),
            board: "APP_CY8CPROTO_062S2_43439".into(),
            version: AppVersion::new(1, 0, 0),
            key,
            key_path: "keys/signing.pem".into(),
            map: DEFAULT_MAP,
            map_path: None,
            flow: Delivery::Push,
            timeout: Duration::from_secs(60),
        }
    }

    fn watch(cfg: &StandIn) -> Watch<'_> {
        Watch {
            cfg,
            verified: false,
            unanswered: false,
            last: String::new(),
            verdict: None,
        }
    }

    #[test]
    fn the_default_map_is_valid() {
        DEFAULT_MAP.validate().unwrap();
    }

    #[test]
    fn an_image_signed_with_another_key_names_the_key_file() {
        let cfg = stand_in();
        for code in [ErrorCode::ImageUnknownKey, ErrorCode::ImageBadSignature] {
            let o = watch(&cfg).judge(&Step::DownloadFailed(Some(code)));
            let Some(Outcome::Failed(why)) = o else {
                panic!("{o:?}")
            };
            assert!(
                why.starts_with("keys/signing.pem: ") && why.contains("signature does not verify"),
                "{why}"
            );
        }
    }

    #[test]
    fn an_unanswered_check_keeps_asking_and_says_what_to_check_at_the_end() {
        let cfg = stand_in();
        let mut w = watch(&cfg);
        let unanswered = Step::NoUpdate(Some(ErrorCode::NoUpdateAvailable));
        assert_eq!(w.judge(&unanswered), None);
        assert!(w.unanswered);
        let why = w.no_answer();
        assert!(
            why.contains("MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify"),
            "{why}"
        );
        // The publisher came up: the download started.
        assert_eq!(w.judge(&Step::Accepted { resumed_from: None }), None);
        assert!(!w.unanswered);
    }

    #[test]
    fn no_update_names_the_running_version() {
        let cfg = stand_in();
        let o = watch(&cfg).judge(&Step::NoUpdate(Some(ErrorCode::InvalidVersion)));
        let Some(Outcome::NoUpdate(why)) = o else {
            panic!("{o:?}")
        };
        assert!(why.contains("nothing newer than 1.0.0"), "{why}");
    }

    #[test]
    fn an_image_too_large_for_the_default_map_asks_for_the_boards() {
        let cfg = stand_in();
        let why = download_failed(&cfg, Some(ErrorCode::ImageTooLarge));
        assert!(why.contains("--flashmap"), "{why}");
    }
}
