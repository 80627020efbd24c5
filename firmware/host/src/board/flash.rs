//! The board's view of its flash: a decorator that lets a person watch (and a test interrupt)
//! the bootloader's work, the factory programmer, and reading the booted executable out of the
//! primary slot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};

use super::transcript;
use super::BoardError;
use crate::sim::{SimDevice, SimFlash, SimFlashError};
use ota_core::image::verify::VerifiedImage;

/// A [`SimFlash`] the bootloader works on: each erase is slowed down by `delay` (so a swap is
/// long enough to watch, or to kill the board in the middle of it) and erases of the primary
/// slot are reported in the transcript.
pub struct Watched<'a> {
    inner: &'a mut SimFlash,
    delay: Duration,
    /// Report erases under this name (`None`: silent).
    name: Option<&'static str>,
    erased: u32,
}

impl<'a> Watched<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut SimFlash, delay: Duration, name: Option<&'static str>) -> Self {
        Self {
            inner,
            delay,
            name,
            erased: 0,
        }
    }
}

impl ErrorType for Watched<'_> {
    type Error = SimFlashError;
}

impl ReadNorFlash for Watched<'_> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimFlashError> {
        self.inner.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl NorFlash for Watched<'_> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 1;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimFlashError> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.inner.erase(from, to)?;
        if let Some(name) = self.name {
            self.erased += 1;
            if self.erased % 8 == 1 {
                transcript::line(
                    "boot",
                    &format!(
                        "  … {name} sector at {from:#x} rewritten ({} so far)",
                        self.erased
                    ),
                );
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimFlashError> {
        self.inner.write(offset, bytes)
    }
}

/// Programs `image` (a signed MCUboot image file) into the primary slot like a factory
/// programmer: erase the slot, write the bytes. The secondary slot is erased too.
///
/// # Errors
/// The image does not fit, or flash errors.
pub fn provision(dev: &mut SimDevice, image: &[u8]) -> Result<(), BoardError> {
    let slot = dev.map.primary;
    if image.len() as u64 > u64::from(dev.map.max_image_size()) {
        return Err(BoardError::TooLarge {
            len: image.len(),
            max: dev.map.max_image_size(),
        });
    }
    let flash = |doing| move |source| BoardError::Flash { doing, source };
    dev.primary
        .erase(0, slot.size)
        .map_err(flash("erasing the primary slot"))?;
    dev.secondary
        .erase(0, dev.map.secondary.size)
        .map_err(flash("erasing the secondary slot"))?;
    dev.primary.program(0, image);
    Ok(())
}

/// Copies the payload of the validated primary image (the application executable) to a new
/// executable file in `dir` and returns its path.
///
/// # Errors
/// Flash or file errors.
pub fn extract_app(
    dev: &mut SimDevice,
    img: &VerifiedImage,
    dir: &Path,
) -> Result<PathBuf, BoardError> {
    let start = u32::from(img.header.hdr_size);
    let mut payload = vec![0u8; img.header.img_size as usize];
    dev.primary
        .read(start, &mut payload)
        .map_err(|source| BoardError::Flash {
            doing: "reading the primary slot",
            source,
        })?;
    std::fs::create_dir_all(dir).map_err(BoardError::file(dir))?;
    let path = dir.join("app-primary");
    let tmp = dir.join(format!("app-primary.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(&payload)?;
        f.sync_all()?;
        drop(f);
        // Renaming over the previous executable works even while nothing runs it any more.
        std::fs::rename(&tmp, &path)
    };
    write().map_err(BoardError::file(&path))?;
    Ok(path)
}
