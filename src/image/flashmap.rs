//! Signing options derived from an Infineon flash map, the way Infineon's build derives them
//! (`mcuboot_support.mk` + `sign_script.bash` + `flashmap.py`, spec `mcuboot.md` §5):
//!
//! | imgtool flag | from the map |
//! | --- | --- |
//! | `-H 0x400 --pad-header` | fixed (`MCUBOOT_HEADER_SIZE`) |
//! | `-S` | primary slot size |
//! | `-L` | primary slot offset in internal flash (sets RAM_LOAD, as Infineon's images have) |
//! | `-M` | largest `ceil(slot size / erase size)` of the two slots, at least 32 |
//! | `-R 0` | only when the secondary slot erases to 0x00 (PSoC 6 internal flash) |
//! | `--align 8` | the slots' write size (8 on every Infineon map) |
//! | `--overwrite-only` | when the map's upgrade mode is overwrite |
//! | `-x` | the primary slot address, for HEX output from a binary input |
//!
//! Infineon's PSoC 6 script never passes `--overwrite-only`; it only changes the trailer size
//! used for the room check and `--pad`, so outputs without `--pad` are byte-identical either way,
//! and with it the room check matches the overwrite-only bootloader.

use std::path::Path;

use firmware::flashmap::{infineon, FlashMap};

/// Infineon's `MCUBOOT_HEADER_SIZE`.
pub const INFINEON_HEADER_SIZE: u32 = 0x400;

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
    /// `-x` default: the primary slot's address.
    pub hex_addr: u32,
    /// The largest image MCUboot (and otactl's simulated bootloader) installs with this map
    /// (`FlashMap::max_image_size`), for a warning.
    pub bootloader_max_image: u32,
}

impl FlashmapOptions {
    /// Derives the options from a parsed map.
    #[must_use]
    pub fn from_map(map: &FlashMap) -> Self {
        let p = map.sign_params();
        Self {
            header_size: INFINEON_HEADER_SIZE,
            pad_header: true,
            slot_size: p.slot_size,
            align: p.align,
            max_sectors: p.max_sectors,
            erased_val: p.erased_val,
            load_addr: p.load_offset,
            overwrite_only: p.overwrite_only,
            hex_addr: map.primary.address,
            bootloader_max_image: map.max_image_size(),
        }
    }

    /// Reads an Infineon flash map JSON (PSoC 6 or XMC7000 schema; `platform` overrides the
    /// PSoC 6 platform guessed from the file name) and derives the options.
    ///
    /// # Errors
    /// Unreadable or invalid maps, naming the file.
    pub fn read(path: &Path, platform: Option<&str>) -> anyhow::Result<Self> {
        let map = infineon::load(path, platform)
            .map_err(|e| anyhow::anyhow!("flash map {}: {e}", path.display()))?;
        map.validate()
            .map_err(|e| anyhow::anyhow!("flash map {}: {e}", path.display()))?;
        Ok(Self::from_map(&map))
    }

    /// The imgtool arguments these options stand for (for logs and docs).
    #[must_use]
    pub fn imgtool_args(&self) -> String {
        let mut s = format!(
            "--pad-header -H {:#x} --align {} -M {} -L {:#x} -S {:#x}",
            self.header_size, self.align, self.max_sectors, self.load_addr, self.slot_size
        );
        if self.erased_val == 0 {
            s.push_str(" -R 0");
        }
        if self.overwrite_only {
            s.push_str(" --overwrite-only");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flash map with Infineon's values from `tests/data/flashmap`.
    fn map(name: &str) -> std::path::PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/flashmap")).join(name)
    }

    #[test]
    fn psoc6_maps_give_the_vectors_arguments() {
        let o = FlashmapOptions::read(&map("psoc62_2m_ext_swap_single.json"), None).unwrap();
        assert_eq!(
            o.imgtool_args(),
            "--pad-header -H 0x400 --align 8 -M 3584 -L 0x28000 -S 0x1c0000"
        );
        let o = FlashmapOptions::read(&map("psoc62_2m_int_swap_single.json"), None).unwrap();
        assert_eq!(
            o.imgtool_args(),
            "--pad-header -H 0x400 --align 8 -M 1840 -L 0x28000 -S 0xe6000 -R 0"
        );
        let o = FlashmapOptions::read(&map("psoc62_2m_ext_overwrite_single.json"), None).unwrap();
        assert!(o.overwrite_only);
        assert_eq!(o.load_addr, 0x18000);
    }
}
