//! The simulated board (host only): file-backed NOR flash laid out by a flash map, the
//! bootloader of [`ota_core::boot`] on every reset, a watchdog, and "boot" = run the application
//! executable found in the primary slot as a child process ([`launch`]).
//!
//! ```text
//! power on ─▶ bootloader (swap / revert / resume, validate primary) ─▶ extract primary payload
//!     ▲                                                                     │
//!     │            reset request (exit 75) · watchdog timeout · crash       ▼
//!     └──────────────────────────────────────────────────────────── run the application
//! ```
//!
//! The image `otactl` signs and publishes *is* the application's executable, so an update
//! really replaces the code that runs. Everything the board and the application print forms
//! the board transcript ([`transcript`]): boot, the bootloader's decision and progress, the
//! running version, LED period, download progress, reboot, revert, confirm.
//!
//! The flash lives in a directory (`primary.bin`, `secondary.bin`, `scratch.bin`, see
//! [`SimDevice::open`]), written through on every operation, so killing the board at any
//! moment is a power cut: the next start resumes whatever the bootloader or the agent was doing.
//!
//! | module | owns |
//! | --- | --- |
//! | [`cli`] | the `otactl-simboard` command line: parsing it ([`cli::main`]) and writing it ([`BoardSpec`]) |
//! | [`process`] | a board as a child process, followed line by line ([`BoardProcess`]) |
//! | [`launch`] | the booted application as the board's child process, and the watchdog |
//! | [`flash`] | the programmer, the watched flash, extracting the booted executable |
//! | [`transcript`] | the board's output lines |

pub mod cli;
pub mod flash;
pub mod launch;
pub mod process;
pub mod transcript;

pub use cli::BoardSpec;
pub use process::BoardProcess;

use std::path::PathBuf;
use std::time::Duration;

use crate::sim::SimDevice;
use flash::Watched;
use launch::AppEnd;
use ota_core::boot::{BootConfig, BootLoader, BootOutcome};
use ota_core::flashmap::{FlashMap, UpgradeMode};
use ota_core::image::trailer::SwapType;
use ota_core::image::verify::PublicKey;

/// Everything the board is started with (see [`cli`]).
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// Directory holding the flash files.
    pub flash: PathBuf,
    /// The flash map (Infineon JSON).
    pub flashmap: PathBuf,
    /// The bootloader's trusted key (public key PEM).
    pub pubkey: PathBuf,
    /// Where booted executables are extracted.
    pub workdir: PathBuf,
    /// Program this signed image into the primary slot first.
    pub provision: Option<PathBuf>,
    /// Watchdog timeout.
    pub watchdog: Duration,
    /// Delay per flash erase while the bootloader runs.
    pub boot_erase_delay: Duration,
    /// Stop after this many boots (`None`: run until killed).
    pub max_boots: Option<u32>,
    /// Environment for the application (`OTA_DEVICE_*`, see [`crate::app::config`]).
    pub app_env: Vec<(String, String)>,
}

/// Why the board (or the device application's set-up) cannot go on; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// A file or folder that cannot be read or written.
    #[error("{}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A key file that is not PEM.
    #[error("{}: not a PEM file", path.display())]
    NotPem {
        /// The key file.
        path: PathBuf,
        /// The PEM decoder's error.
        #[source]
        source: p256::pkcs8::der::Error,
    },
    /// A PEM file that holds something else than a public key.
    #[error("{}: a {label} PEM, expected a PUBLIC KEY", path.display())]
    NotPublicKey {
        /// The key file.
        path: PathBuf,
        /// What it holds.
        label: String,
    },
    /// A public key of a type the bootloader does not verify.
    #[error("{}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ota_core::image::key::KeyError,
    },
    /// A flash map that does not parse.
    #[error("{}", path.display())]
    FlashMap {
        /// The map.
        path: PathBuf,
        /// Why.
        #[source]
        source: ota_core::flashmap::infineon::ParseError,
    },
    /// An image to provision that does not fit the primary slot.
    #[error("the image is {len} bytes; the primary slot takes at most {max}")]
    TooLarge {
        /// The image's size.
        len: usize,
        /// The slot's limit.
        max: u32,
    },
    /// A flash operation that failed (`doing` says which).
    #[error("{doing}")]
    Flash {
        /// "erasing the primary slot", "reading the primary slot".
        doing: &'static str,
        /// The flash's error.
        #[source]
        source: crate::sim::SimFlashError,
    },
    /// The bootloader halted (nothing bootable) or could not start.
    #[error("bootloader")]
    Boot(#[source] ota_core::boot::BootError<crate::sim::SimFlashError>),
    /// The application executable could not be started.
    #[error("starting {}", exe.display())]
    Start {
        /// The executable.
        exe: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl BoardError {
    pub(crate) fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::File { path, source }
    }
}

/// Loads a public key from a PEM file (`-----BEGIN PUBLIC KEY-----`): ECDSA P-256/P-384,
/// Ed25519 or RSA-2048/3072.
///
/// # Errors
/// Unreadable file, not PEM, or not a supported public key.
pub fn load_pubkey(path: &std::path::Path) -> Result<PublicKey, BoardError> {
    let pem = std::fs::read(path).map_err(BoardError::file(path))?;
    let (label, der) =
        p256::pkcs8::der::pem::decode_vec(&pem).map_err(|source| BoardError::NotPem {
            path: path.to_path_buf(),
            source: source.into(),
        })?;
    if label != "PUBLIC KEY" {
        return Err(BoardError::NotPublicKey {
            path: path.to_path_buf(),
            label: label.to_owned(),
        });
    }
    PublicKey::from_spki_der(&der).map_err(|source| BoardError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// The flash map at `path`.
///
/// # Errors
/// Unreadable or not Infineon's schema.
pub fn load_flashmap(path: &std::path::Path) -> Result<FlashMap, BoardError> {
    ota_core::flashmap::infineon::load(path, None).map_err(|source| BoardError::FlashMap {
        path: path.to_path_buf(),
        source,
    })
}

fn open(cfg: &BoardConfig, map: FlashMap) -> Result<SimDevice, BoardError> {
    SimDevice::open(&cfg.flash, map, 1).map_err(BoardError::file(&cfg.flash))
}

/// Runs the board: provision (optional), then boot → run → reset, until `max_boots`.
///
/// # Errors
/// Configuration problems, or a primary slot with nothing bootable (the board halts).
pub fn run(cfg: &BoardConfig) -> Result<(), BoardError> {
    transcript::start();
    let map = load_flashmap(&cfg.flashmap)?;
    let key = load_pubkey(&cfg.pubkey)?;
    if let Some(image) = &cfg.provision {
        let bytes = std::fs::read(image).map_err(BoardError::file(image))?;
        flash::provision(&mut open(cfg, map)?, &bytes)?;
        transcript::line(
            "board",
            &format!("programmed {} into the primary slot", image.display()),
        );
    }
    let mode = match map.mode {
        UpgradeMode::Swap => "swap using scratch",
        UpgradeMode::Overwrite => "overwrite only",
    };
    let mut boots = 0u32;
    loop {
        boots += 1;
        transcript::line("board", &format!("power on (boot #{boots}, {mode})"));
        let exe = {
            let mut dev = open(cfg, map)?;
            let outcome = boot(cfg, &mut dev, &key)?;
            flash::extract_app(&mut dev, &outcome.image, &cfg.workdir)?
        };
        let end = launch::run_app(&exe, &cfg.app_env, cfg.watchdog).map_err(|source| {
            BoardError::Start {
                exe: exe.clone(),
                source,
            }
        })?;
        let why = match end {
            AppEnd::ResetRequested => "software reset".to_string(),
            AppEnd::WatchdogTimeout => format!(
                "watchdog: not fed for {} ms, resetting",
                cfg.watchdog.as_millis()
            ),
            AppEnd::Crashed(status) => format!("application stopped ({status}), resetting"),
        };
        transcript::line("board", &why);
        if cfg.max_boots.is_some_and(|m| boots >= m) {
            return Ok(());
        }
    }
}

fn boot(
    cfg: &BoardConfig,
    dev: &mut SimDevice,
    key: &PublicKey,
) -> Result<BootOutcome, BoardError> {
    let keys = [*key];
    let bc = BootConfig {
        map: dev.map,
        keys: &keys,
        downgrade_prevention: false,
        enc_key: None,
    };
    let d = cfg.boot_erase_delay;
    let mut primary = Watched::new(&mut dev.primary, d, Some("primary"));
    let mut secondary = Watched::new(&mut dev.secondary, d, None);
    let mut scratch_flash = dev.scratch.as_mut().map(|s| Watched::new(s, d, None));
    let mut bl = BootLoader::new(bc, &mut primary, &mut secondary, scratch_flash.as_mut())
        .map_err(BoardError::Boot)?;
    let prim = bl.slot_state(ota_core::flashmap::AreaKind::Primary);
    let sec = bl.slot_state(ota_core::flashmap::AreaKind::Secondary);
    if let (Ok(p), Ok(s)) = (prim, sec) {
        let planned = ota_core::boot::swap_type::decide(&p, &s, false);
        if planned != SwapType::None {
            transcript::line(
                "boot",
                &format!(
                    "swap type {}: {} starting",
                    swap_name(planned),
                    describe(planned, dev.map.mode)
                ),
            );
        }
    }
    let outcome = match bl.boot() {
        Ok(o) => o,
        Err(e) => {
            transcript::line("boot", &format!("halted: {e}"));
            return Err(BoardError::Boot(e));
        }
    };
    if outcome.resumed {
        transcript::line(
            "boot",
            &format!(
                "resumed an interrupted {}",
                describe(outcome.swap_type, dev.map.mode)
            ),
        );
    }
    if outcome.swap_type != SwapType::None {
        transcript::line(
            "boot",
            &format!("{}: done", describe(outcome.swap_type, dev.map.mode)),
        );
    }
    let v = outcome.image.header.version;
    transcript::line(
        "boot",
        &format!("primary slot image {v} valid, jumping to it"),
    );
    Ok(outcome)
}

fn swap_name(t: SwapType) -> &'static str {
    match t {
        SwapType::None => "none",
        SwapType::Test => "test",
        SwapType::Perm => "perm",
        SwapType::Revert => "revert",
        _ => "fail",
    }
}

fn describe(t: SwapType, mode: UpgradeMode) -> &'static str {
    match (t, mode) {
        (SwapType::Revert, _) => "revert (swapping the previous image back)",
        (_, UpgradeMode::Overwrite) => "upgrade (overwriting the primary slot)",
        (SwapType::Test, _) => "test upgrade (swapping slots)",
        _ => "permanent upgrade (swapping slots)",
    }
}

#[cfg(test)]
mod tests {
    use ota_core::flashmap::{infineon, UpgradeMode};
    use std::path::Path;

    #[test]
    fn host_flash_maps_fit_the_application_and_suit_the_bootloader() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flashmap");
        for (name, mode) in [
            ("board-host_swap.json", UpgradeMode::Swap),
            ("board-host_overwrite.json", UpgradeMode::Overwrite),
        ] {
            let map = infineon::load(&dir.join(name), None).unwrap();
            assert_eq!(map.mode, mode, "{name}");
            map.validate_for_boot().unwrap();
            assert!(
                map.max_image_size() >= 15 << 20,
                "{name}: room for a 15 MiB executable (the device application of a debug build)"
            );
        }
    }
}
