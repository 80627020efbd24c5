//! Parsing Infineon's flash-map JSON (the files of `ota-bootloader-abstraction`), both schemas:
//!
//! - **PSoC 6** (`psoc62_2m_ext_swap_single.json` …): `boot_and_upgrade.bootloader` with
//!   `address`/`size`/`scratch_*`/`status_*` objects holding `"value"` strings, and
//!   `boot_and_upgrade.application_1` with `address`, `size`, `upgrade_address`, `upgrade_size`;
//!   optional `external_flash: [{"model": …}]`. The files carry no geometry: it comes from the
//!   platform named by the file-name prefix (`psoc62_2m_`, `psoc62_1m_`, `psoc62_512k_`) or an
//!   explicit platform argument ([`PSOC6_PLATFORMS`]).
//! - **XMC7000** (`xmc7200_int_swap_single.json` …): `bootloader.{bootloader_area, status_area,
//!   scratch_area}.{address,size}` and `application_1.slots.{boot, upgrade, size}`; geometry from
//!   the sibling `<prefix>_platform.json` (`memory_regions[]` with `address`, `size`,
//!   `erase_size`, `erase_value`, `mem_type`).
//!
//! The mode is [`UpgradeMode::Overwrite`] when the file name contains `overwrite`, else
//! [`UpgradeMode::Swap`] when it contains `swap`, else swap iff the map has a scratch area.
//! All write sizes are 8 (Infineon signs with `--align 8`).

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use super::{Area, Device, FlashMap, FlashMapError, UpgradeMode};

/// Trailer write size Infineon builds use (`imgtool --align 8`).
pub const INFINEON_WRITE_SIZE: u32 = 8;

/// One flash region of a platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Start address.
    pub address: u32,
    /// Size.
    pub size: u32,
    /// Erase size.
    pub erase_size: u32,
    /// Erased value.
    pub erase_value: u8,
    /// Internal or external.
    pub device: Device,
}

/// PSoC 6 internal flash start.
pub const PSOC6_INTERNAL_BASE: u32 = 0x1000_0000;
/// PSoC 6 SMIF (external flash) window start.
pub const PSOC6_EXTERNAL_BASE: u32 = 0x1800_0000;
/// S25HS256T: 32 MiB, 256 KiB uniform sectors, erases to 0xff.
pub const S25HS256T: (u32, u32) = (0x200_0000, 0x4_0000);

/// Known PSoC 6 platforms: (file-name prefix, platform name, internal flash size).
pub const PSOC6_PLATFORMS: [(&str, &str, u32); 3] = [
    ("psoc62_2m", "PSOC_062_2M", 0x20_0000),
    ("psoc62_1m", "PSOC_062_1M", 0x10_0000),
    ("psoc62_512k", "PSOC_062_512K", 0x8_0000),
];

/// Why a flash-map file could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ParseError {
    /// Not valid JSON.
    Json(String),
    /// A required field is missing (its JSON path).
    Missing(String),
    /// A field is not a hex/decimal number string (path, value).
    BadNumber(String, String),
    /// The platform cannot be told from the file name or argument.
    UnknownPlatform(String),
    /// The external flash model is not known.
    UnknownExternalFlash(String),
    /// No region of the platform holds the area (area, address).
    NoRegion(super::AreaKind, u32),
    /// The parsed map fails [`FlashMap::validate`].
    Invalid(FlashMapError),
    /// Reading a file failed.
    #[cfg(feature = "std")]
    Io(std::path::PathBuf, std::io::Error),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "not valid JSON: {e}"),
            Self::Missing(p) => write!(f, "missing field `{p}`"),
            Self::BadNumber(p, v) => write!(f, "field `{p}`: {v:?} is not a number"),
            Self::UnknownPlatform(p) => write!(
                f,
                "unknown platform {p:?} (expected a file name starting with psoc62_2m_, psoc62_1m_, \
                 psoc62_512k_ or xmc7x00_, or an explicit platform)"
            ),
            Self::UnknownExternalFlash(m) => {
                write!(f, "unknown external flash model {m:?} (known: S25HS256T)")
            }
            Self::NoRegion(a, addr) => {
                write!(f, "{a} at {addr:#010x} is not inside any flash region of the platform")
            }
            Self::Invalid(e) => write!(f, "invalid flash map: {e}"),
            #[cfg(feature = "std")]
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {}

fn num(v: &Value, path: &str) -> Result<u32, ParseError> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Err(ParseError::Missing(path.to_string())),
        other => return Err(ParseError::BadNumber(path.to_string(), other.to_string())),
    };
    let parsed = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        s.parse()
    };
    parsed.map_err(|_| ParseError::BadNumber(path.to_string(), s))
}

fn get<'a>(root: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(root, |v, k| &v[*k])
}

fn field(root: &Value, path: &[&str]) -> Result<u32, ParseError> {
    num(get(root, path), &path.join("."))
}

fn opt_field(root: &Value, path: &[&str]) -> Result<Option<u32>, ParseError> {
    match get(root, path) {
        Value::Null => Ok(None),
        v => num(v, &path.join(".")).map(Some),
    }
}

/// Regions of a PSoC 6 platform by name (`PSOC_062_2M`) or file prefix (`psoc62_2m`), plus the
/// external flash model if any.
///
/// # Errors
/// Unknown platform or external flash model.
pub fn psoc6_regions(platform: &str, external: Option<&str>) -> Result<Vec<Region>, ParseError> {
    let p = PSOC6_PLATFORMS
        .iter()
        .find(|(prefix, name, _)| {
            platform.eq_ignore_ascii_case(name) || platform.eq_ignore_ascii_case(prefix)
        })
        .ok_or_else(|| ParseError::UnknownPlatform(platform.to_string()))?;
    let mut regions = alloc::vec![Region {
        address: PSOC6_INTERNAL_BASE,
        size: p.2,
        erase_size: 512,
        erase_value: 0x00,
        device: Device::Internal,
    }];
    if let Some(model) = external {
        if !model.eq_ignore_ascii_case("S25HS256T") {
            return Err(ParseError::UnknownExternalFlash(model.to_string()));
        }
        regions.push(Region {
            address: PSOC6_EXTERNAL_BASE,
            size: S25HS256T.0,
            erase_size: S25HS256T.1,
            erase_value: 0xff,
            device: Device::External,
        });
    }
    Ok(regions)
}

/// Regions from an XMC7000 `<prefix>_platform.json` (all internal).
///
/// # Errors
/// JSON or field errors.
pub fn xmc_regions(platform_json: &str) -> Result<Vec<Region>, ParseError> {
    let root: Value =
        serde_json::from_str(platform_json).map_err(|e| ParseError::Json(e.to_string()))?;
    let list = root["memory_regions"]
        .as_array()
        .ok_or_else(|| ParseError::Missing("memory_regions".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |k: &str| num(&r[k], &format!("memory_regions[{i}].{k}"));
            Ok(Region {
                address: at("address")?,
                size: at("size")?,
                erase_size: at("erase_size")?,
                erase_value: at("erase_value")? as u8,
                device: Device::Internal,
            })
        })
        .collect()
}

fn place(
    regions: &[Region],
    kind: super::AreaKind,
    address: u32,
    size: u32,
) -> Result<Area, ParseError> {
    let r = regions
        .iter()
        .find(|r| {
            let end = u64::from(r.address) + u64::from(r.size);
            address >= r.address && u64::from(address) + u64::from(size) <= end
        })
        .ok_or(ParseError::NoRegion(kind, address))?;
    Ok(Area::new(
        address,
        size,
        r.erase_size,
        r.erase_value,
        INFINEON_WRITE_SIZE,
        r.device,
    ))
}

/// The file name's prefix before the first `_` followed by a letter group naming the layout
/// (`psoc62_2m_ext_swap_single.json` → `psoc62_2m`, `xmc7200_int_swap_single.json` → `xmc7200`).
#[must_use]
pub fn platform_prefix(file_name: &str) -> &str {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    for (prefix, _, _) in PSOC6_PLATFORMS {
        if base.len() > prefix.len()
            && base[..prefix.len()].eq_ignore_ascii_case(prefix)
            && base.as_bytes()[prefix.len()] == b'_'
        {
            return &base[..prefix.len()];
        }
    }
    base.split('_').next().unwrap_or(base)
}

fn mode_from_name(file_name: &str, has_scratch: bool) -> UpgradeMode {
    let lower = file_name.to_ascii_lowercase();
    if lower.contains("overwrite") {
        UpgradeMode::Overwrite
    } else if lower.contains("swap") || has_scratch {
        UpgradeMode::Swap
    } else {
        UpgradeMode::Overwrite
    }
}

/// Parses a flash map.
///
/// - `file_name`: the file's name (its prefix names the platform, `overwrite` the mode);
/// - `platform`: overrides the platform (`PSOC_062_2M`, `psoc62_1m`, …) for PSoC 6 files;
/// - `platform_json`: the contents of the sibling `<prefix>_platform.json` (XMC7000 schema).
///
/// # Errors
/// [`ParseError`] naming the field, platform or check that failed.
pub fn parse(
    file_name: &str,
    json: &str,
    platform: Option<&str>,
    platform_json: Option<&str>,
) -> Result<FlashMap, ParseError> {
    let root: Value = serde_json::from_str(json).map_err(|e| ParseError::Json(e.to_string()))?;
    let map = if root.get("boot_and_upgrade").is_some() {
        parse_psoc6(file_name, &root, platform)?
    } else {
        let pj = platform_json.ok_or_else(|| {
            ParseError::UnknownPlatform(format!(
                "{}_platform.json (needed for the XMC7000 schema)",
                platform_prefix(file_name)
            ))
        })?;
        parse_xmc(file_name, &root, &xmc_regions(pj)?)?
    };
    map.validate().map_err(ParseError::Invalid)?;
    Ok(map)
}

fn parse_psoc6(
    file_name: &str,
    root: &Value,
    platform: Option<&str>,
) -> Result<FlashMap, ParseError> {
    let external = root["external_flash"][0]["model"].as_str();
    let regions = psoc6_regions(platform.unwrap_or(platform_prefix(file_name)), external)?;
    let b = ["boot_and_upgrade", "bootloader"];
    let a = ["boot_and_upgrade", "application_1"];
    let v = |base: &[&str; 2], key: &str| field(root, &[base[0], base[1], key, "value"]);
    let ov = |base: &[&str; 2], key: &str| opt_field(root, &[base[0], base[1], key, "value"]);
    use super::AreaKind as K;
    let bootloader = place(&regions, K::Bootloader, v(&b, "address")?, v(&b, "size")?)?;
    let primary = place(&regions, K::Primary, v(&a, "address")?, v(&a, "size")?)?;
    let secondary = place(
        &regions,
        K::Secondary,
        v(&a, "upgrade_address")?,
        v(&a, "upgrade_size")?,
    )?;
    let scratch = match (ov(&b, "scratch_address")?, ov(&b, "scratch_size")?) {
        (Some(addr), Some(size)) => Some(place(&regions, K::Scratch, addr, size)?),
        _ => None,
    };
    let status = match (ov(&b, "status_address")?, ov(&b, "status_size")?) {
        (Some(addr), Some(size)) => Some(place(&regions, K::Status, addr, size)?),
        _ => None,
    };
    Ok(FlashMap {
        bootloader,
        primary,
        secondary,
        scratch,
        status,
        mode: mode_from_name(file_name, scratch.is_some()),
        internal_base: PSOC6_INTERNAL_BASE,
        enc_images: false,
    })
}

fn parse_xmc(file_name: &str, root: &Value, regions: &[Region]) -> Result<FlashMap, ParseError> {
    use super::AreaKind as K;
    let area = |kind, name: &str| -> Result<Option<Area>, ParseError> {
        let path = ["bootloader", name];
        match (
            opt_field(root, &[path[0], path[1], "address"])?,
            opt_field(root, &[path[0], path[1], "size"])?,
        ) {
            (Some(a), Some(s)) => place(regions, kind, a, s).map(Some),
            _ => Ok(None),
        }
    };
    let bootloader = area(K::Bootloader, "bootloader_area")?
        .ok_or_else(|| ParseError::Missing("bootloader.bootloader_area".into()))?;
    let slots = ["application_1", "slots"];
    let size = field(root, &[slots[0], slots[1], "size"])?;
    let primary = place(
        regions,
        K::Primary,
        field(root, &[slots[0], slots[1], "boot"])?,
        size,
    )?;
    let secondary = place(
        regions,
        K::Secondary,
        field(root, &[slots[0], slots[1], "upgrade"])?,
        size,
    )?;
    let scratch = area(K::Scratch, "scratch_area")?;
    let internal_base = regions.iter().map(|r| r.address).min().unwrap_or(0);
    Ok(FlashMap {
        bootloader,
        primary,
        secondary,
        scratch,
        status: area(K::Status, "status_area")?,
        mode: mode_from_name(file_name, scratch.is_some()),
        internal_base,
        enc_images: false,
    })
}

/// Reads and parses a flash-map file; for the XMC7000 schema the sibling
/// `<prefix>_platform.json` is read from the same directory.
///
/// # Errors
/// I/O errors (with the path) and everything [`parse`] reports.
#[cfg(feature = "std")]
pub fn load(path: &std::path::Path, platform: Option<&str>) -> Result<FlashMap, ParseError> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| ParseError::Io(p.to_path_buf(), e))
    };
    let json = read(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_psoc6 = json.contains("\"boot_and_upgrade\"");
    let platform_json = if is_psoc6 {
        None
    } else {
        let prefix = platform
            .unwrap_or(platform_prefix(&name))
            .to_ascii_lowercase();
        let sibling = path.with_file_name(format!("{prefix}_platform.json"));
        Some(read(&sibling)?)
    };
    parse(&name, &json, platform, platform_json.as_deref())
}

#[cfg(all(test, feature = "std"))]
mod tests;
