//! Signing options derived from an Infineon flash map, the way Infineon's build derives them.
//! The map's platform picks the [`Recipe`]: Infineon's example signs PSoC 6 images with imgtool
//! (`sign_script.bash`) and XMC7000 images with cysecuretools (`sign_script_xmc7000.bash`).
//!
//! PSoC 6 ([`Recipe::Imgtool`]: `mcuboot_support.mk` + `sign_script.bash` + `flashmap.py`, spec
//! `mcuboot.md` §5):
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
//!
//! XMC7000 (`xmc7100_…`, `xmc7200_…` maps, [`Recipe::Cysecuretools`]): `cysecuretools -t xmc7200
//! sign-image --header-size 0x400 --align 8 -v … -S <slot size> -R 0xff --overwrite-only
//! --hex-addr=<slot start>`, which is imgtool's layout with these differences:
//!
//! - no `-L`: the header's load address and flags are 0 (no `RAM_LOAD`);
//! - `-R 0xff` and `--overwrite-only` whatever the map says, `--align 8`, `-M 512` (its value;
//!   with `--overwrite-only` it does not change the output);
//! - the header's last 4 bytes (`_pad1`, offset 28) hold the erased value (0xffffffff), where
//!   imgtool writes 0, so the hash and signature differ from imgtool's for the same input.
//!
//! Infineon signs the update a second time with `--hex-addr` = the secondary slot's start; with
//! otactl that is `-x <secondary start>` (only HEX output carries the address).

use std::path::Path;

use ota_core::flashmap::{infineon, FlashMap, FlashMapError};

/// A flash map that cannot be signed for.
#[derive(Debug, thiserror::Error)]
pub enum FlashmapFileError {
    /// Unreadable, not JSON, or not Infineon's schema.
    #[error("flash map {}", path.display())]
    Parse {
        /// The map.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        source: infineon::ParseError,
    },
    /// Its slots do not make a layout MCUboot can use.
    #[error("flash map {}", path.display())]
    Invalid {
        /// The map.
        path: std::path::PathBuf,
        /// What is wrong with the layout.
        #[source]
        source: FlashMapError,
    },
}

/// Infineon's `MCUBOOT_HEADER_SIZE`.
pub const INFINEON_HEADER_SIZE: u32 = 0x400;
/// The `max_sectors` cysecuretools passes to its imgtool for XMC7000.
pub const CYSECURETOOLS_MAX_SECTORS: u32 = 512;

/// Which of Infineon's signers (and its command line) a flash map's images are made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// PSoC 6: `imgtool sign` 2.5.0 as `sign_script.bash` runs it.
    Imgtool,
    /// XMC7000: `cysecuretools 5.0.0 -t xmc7200 sign-image` as `sign_script_xmc7000.bash` runs it.
    Cysecuretools,
}

impl Recipe {
    /// The recipe Infineon's example uses for a platform (`xmc7100`, `xmc7200` → cysecuretools).
    #[must_use]
    pub fn for_platform(prefix: &str) -> Self {
        if prefix.len() >= 4 && prefix[..4].eq_ignore_ascii_case("xmc7") {
            Self::Cysecuretools
        } else {
            Self::Imgtool
        }
    }

    /// Parses `imgtool` or `cysecuretools`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "imgtool" => Ok(Self::Imgtool),
            "cysecuretools" => Ok(Self::Cysecuretools),
            _ => Err(format!(
                "{s:?} is not a recipe: use imgtool or cysecuretools"
            )),
        }
    }

    /// Whether the header's `_pad1` holds the erased value (cysecuretools) instead of 0.
    #[must_use]
    pub const fn header_pad_erased(self) -> bool {
        matches!(self, Self::Cysecuretools)
    }

    /// The signer and script it reproduces, for people.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Imgtool => "Infineon's PSoC 6 recipe (imgtool 2.5.0, sign_script.bash)",
            Self::Cysecuretools => {
                "Infineon's XMC7000 recipe (cysecuretools 5.0.0 sign-image, sign_script_xmc7000.bash)"
            }
        }
    }
}

/// What `--flashmap` fills in (explicit flags still win).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashmapOptions {
    /// The signer whose output this reproduces.
    pub recipe: Recipe,
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
    /// The same for a bootloader built with `MCUBOOT_ENC_IMAGES` (the one an `-E` image is
    /// for): in swap mode its trailer also holds two AES keys, so the limit is lower.
    pub bootloader_max_enc_image: u32,
}

impl FlashmapOptions {
    /// Derives the options from a parsed map with `recipe`.
    #[must_use]
    pub fn from_map(map: &FlashMap, recipe: Recipe) -> Self {
        let enc_map = FlashMap {
            enc_images: true,
            ..*map
        };
        let p = map.sign_params();
        if recipe == Recipe::Cysecuretools {
            return Self {
                recipe,
                header_size: INFINEON_HEADER_SIZE,
                pad_header: true,
                slot_size: p.slot_size,
                align: 8,
                max_sectors: CYSECURETOOLS_MAX_SECTORS,
                erased_val: 0xff,
                load_addr: 0,
                overwrite_only: true,
                hex_addr: map.primary.address,
                bootloader_max_image: map.max_image_size(),
                bootloader_max_enc_image: enc_map.max_image_size(),
            };
        }
        Self {
            recipe,
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
            bootloader_max_enc_image: enc_map.max_image_size(),
        }
    }

    /// Reads an Infineon flash map JSON (PSoC 6 or XMC7000 schema; `platform` overrides the
    /// PSoC 6 platform guessed from the file name) and derives the options with `recipe`, or
    /// the recipe of the map's platform ([`Recipe::for_platform`]).
    ///
    /// # Errors
    /// Unreadable or invalid maps, naming the file.
    pub fn read(
        path: &Path,
        platform: Option<&str>,
        recipe: Option<Recipe>,
    ) -> Result<Self, FlashmapFileError> {
        let map = infineon::load(path, platform).map_err(|source| FlashmapFileError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        map.validate()
            .map_err(|source| FlashmapFileError::Invalid {
                path: path.to_path_buf(),
                source,
            })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let recipe = recipe.unwrap_or_else(|| {
            Recipe::for_platform(platform.unwrap_or(infineon::platform_prefix(name)))
        });
        Ok(Self::from_map(&map, recipe))
    }

    /// The signer's arguments these options stand for (for logs and docs).
    #[must_use]
    pub fn signer_args(&self) -> String {
        if self.recipe == Recipe::Cysecuretools {
            return format!(
                "cysecuretools -t xmc7200 sign-image --header-size {:#x} --align {} -S {:#x} -R 0xff \
                 --overwrite-only --hex-addr={:#x}",
                self.header_size, self.align, self.slot_size, self.hex_addr
            );
        }
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
        let o = FlashmapOptions::read(&map("psoc62_2m_ext_swap_single.json"), None, None).unwrap();
        assert_eq!(o.recipe, Recipe::Imgtool);
        assert_eq!(
            o.signer_args(),
            "--pad-header -H 0x400 --align 8 -M 3584 -L 0x28000 -S 0x1c0000"
        );
        let o = FlashmapOptions::read(&map("psoc62_2m_int_swap_single.json"), None, None).unwrap();
        assert_eq!(
            o.signer_args(),
            "--pad-header -H 0x400 --align 8 -M 1840 -L 0x28000 -S 0xe6000 -R 0"
        );
        let o =
            FlashmapOptions::read(&map("psoc62_2m_ext_overwrite_single.json"), None, None).unwrap();
        assert!(o.overwrite_only);
        assert_eq!(o.load_addr, 0x18000);
    }

    #[test]
    fn xmc7000_maps_take_the_cysecuretools_recipe() {
        for name in [
            "xmc7200_int_swap_single.json",
            "xmc7200_int_overwrite_single.json",
            "xmc7100_int_swap_single.json",
        ] {
            let o = FlashmapOptions::read(&map(name), None, None).unwrap();
            assert_eq!(o.recipe, Recipe::Cysecuretools, "{name}");
            assert_eq!(
                (o.load_addr, o.erased_val, o.overwrite_only, o.align),
                (0, 0xff, true, 8),
                "{name}"
            );
            assert!(o.signer_args().starts_with("cysecuretools"), "{name}");
        }
        let o = FlashmapOptions::read(
            &map("xmc7200_int_overwrite_single.json"),
            None,
            Some(Recipe::Imgtool),
        )
        .unwrap();
        assert_eq!(o.load_addr, 0x80000, "the imgtool recipe keeps -L");
        assert_eq!(Recipe::for_platform("xmcsim"), Recipe::Imgtool);
    }
}
