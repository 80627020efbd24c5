//! A simulated device's flash: primary, secondary and scratch [`SimFlash`]es for a flash map.
//!
//! A board loop (`crate::board`, or a test) does on every (re)boot:
//!
//! ```text
//! let mut dev = SimDevice::open(dir, map, seed)?;     // or SimDevice::new(map, seed)
//! let outcome = dev.boot(&keys, false)?;              // bootloader: swap/revert/resume
//! // run "the application": outcome.image.header.version is the running version;
//! // give dev.secondary to the OTA agent, dev.primary for confirming
//! ```
//!
//! After a simulated power cut (`dev.rail.cut_after(n)` + an operation failing with
//! [`super::SimFlashError::PowerLoss`]) call `dev.rail.restore()` and boot again.

use std::path::Path;

use super::{PowerRail, SimFlash, SimFlashError};
use ota_core::boot::{BootConfig, BootError, BootLoader, BootOutcome};
use ota_core::flashmap::FlashMap;
use ota_core::image::enc::EncPrivateKey;
use ota_core::image::trailer::TrailerLayout;
use ota_core::image::verify::PublicKey;

/// The flashes of one simulated device.
#[derive(Debug)]
pub struct SimDevice {
    /// The flash map.
    pub map: FlashMap,
    /// Slot 0.
    pub primary: SimFlash,
    /// Slot 1.
    pub secondary: SimFlash,
    /// Scratch (swap mode).
    pub scratch: Option<SimFlash>,
    /// The power rail shared by all three.
    pub rail: PowerRail,
}

impl SimDevice {
    /// Erased in-memory flashes for `map`.
    #[must_use]
    pub fn new(map: FlashMap, seed: u64) -> Self {
        let rail = PowerRail::new(seed);
        Self {
            map,
            primary: SimFlash::new(map.primary, rail.clone()),
            secondary: SimFlash::new(map.secondary, rail.clone()),
            scratch: map.scratch.map(|a| SimFlash::new(a, rail.clone())),
            rail,
        }
    }

    /// File-backed flashes in `dir` (`primary.bin`, `secondary.bin`, `scratch.bin`), created
    /// erased if missing. Every flash operation is written through, so a killed process loses
    /// nothing that the flash would have kept.
    ///
    /// # Errors
    /// I/O errors or files of the wrong size.
    pub fn open(dir: &Path, map: FlashMap, seed: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let rail = PowerRail::new(seed);
        let scratch = match map.scratch {
            Some(a) => Some(SimFlash::open_file(
                &dir.join("scratch.bin"),
                a,
                rail.clone(),
            )?),
            None => None,
        };
        Ok(Self {
            map,
            primary: SimFlash::open_file(&dir.join("primary.bin"), map.primary, rail.clone())?,
            secondary: SimFlash::open_file(
                &dir.join("secondary.bin"),
                map.secondary,
                rail.clone(),
            )?,
            scratch,
            rail,
        })
    }

    /// An in-memory copy of the current contents on a fresh rail (for power-cut sweeps).
    #[must_use]
    pub fn fork(&self, seed: u64) -> Self {
        let rail = PowerRail::new(seed);
        let copy = |f: &SimFlash| SimFlash::with_data(*f.area(), f.data().to_vec(), rail.clone());
        Self {
            map: self.map,
            primary: copy(&self.primary),
            secondary: copy(&self.secondary),
            scratch: self.scratch.as_ref().map(copy),
            rail,
        }
    }

    /// Runs the bootloader once (see [`BootLoader::boot`]).
    ///
    /// # Errors
    /// As [`BootLoader::boot`]; [`SimFlashError::PowerLoss`] inside `BootError::Flash` when the
    /// rail cut power.
    pub fn boot(
        &mut self,
        keys: &[PublicKey],
        downgrade_prevention: bool,
    ) -> Result<BootOutcome, BootError<SimFlashError>> {
        self.boot_with(keys, downgrade_prevention, None)
    }

    /// [`Self::boot`] with a decryption key for encrypted images ([`BootConfig::enc_key`]).
    ///
    /// # Errors
    /// As [`Self::boot`].
    pub fn boot_with(
        &mut self,
        keys: &[PublicKey],
        downgrade_prevention: bool,
        enc_key: Option<&EncPrivateKey>,
    ) -> Result<BootOutcome, BootError<SimFlashError>> {
        let cfg = BootConfig {
            map: self.map,
            keys,
            downgrade_prevention,
            enc_key,
        };
        BootLoader::new(
            cfg,
            &mut self.primary,
            &mut self.secondary,
            self.scratch.as_mut(),
        )?
        .boot()
    }

    /// The primary slot's trailer layout.
    #[must_use]
    pub fn primary_layout(&self) -> TrailerLayout {
        self.map.trailer_for(&self.map.primary)
    }

    /// The secondary slot's trailer layout.
    #[must_use]
    pub fn secondary_layout(&self) -> TrailerLayout {
        self.map.trailer_for(&self.map.secondary)
    }

    /// Flash-modifying operations so far on this device's rail.
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.rail.ops()
    }
}
