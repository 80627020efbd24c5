//! Signing options derived from an Infineon flash map, the way Infineon's build derives them.

use std::path::Path;

/// What `--flashmap` fills in (explicit flags still win).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashmapOptions {
    /// `-H`.
    pub header_size: u32,
    /// `--pad-header`.
    pub pad_header: bool,
    /// `-S`.
    pub slot_size: u32,
    /// `--align`.
    pub align: u32,
    /// `-M`.
    pub max_sectors: u32,
    /// `-R`.
    pub erased_val: u8,
    /// `-L`.
    pub load_addr: u32,
    /// `--overwrite-only`.
    pub overwrite_only: bool,
}

impl FlashmapOptions {
    /// Reads a flash map JSON and derives the options.
    ///
    /// # Errors
    /// Always, for now: flash-map parsing is not available yet.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        anyhow::bail!(
            "--flashmap {}: flash-map support is not available yet; pass -S, -L, -M, -R and -H",
            path.display()
        )
    }
}
