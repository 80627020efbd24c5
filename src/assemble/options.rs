//! Parsing imgtool's option values: integers with `0x`/`0o`/`0b` prefixes, `-s N|auto`,
//! `-d "(id,version)…"`, `--custom-tlv TAG VALUE`.

use ota_core::image::{TlvKind, Version};

/// `-s/--security-counter`: a number or `auto` (derived from the version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityCounter {
    /// `major << 24 | minor << 16 | revision`.
    Auto,
    /// An explicit value.
    Value(u32),
}

impl SecurityCounter {
    /// Parses `auto` (any case) or an integer (`0x…` allowed).
    ///
    /// # Errors
    /// A message for anything else.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        parse_int(s)
            .map(Self::Value)
            .map_err(|e| format!("security counter: {e} (or use `auto`)"))
    }

    /// The counter stored in the SEC_CNT TLV for an image of `version`.
    #[must_use]
    pub fn value(self, version: &Version) -> u32 {
        match self {
            Self::Auto => version.auto_security_counter(),
            Self::Value(v) => v,
        }
    }
}

/// `--public-key-format`: KEYHASH (`hash`, default) or the whole key in PUBKEY (`full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PublicKeyFormat {
    /// `KEYHASH`: SHA-256 of the SubjectPublicKeyInfo.
    #[default]
    Hash,
    /// `PUBKEY`: the 91-byte SubjectPublicKeyInfo.
    Full,
}

/// One `-d` entry: this image needs image `image_id` at `version` or later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The other image's number.
    pub image_id: u8,
    /// Its minimum version.
    pub version: Version,
}

impl Dependency {
    /// The 12-byte DEPENDENCY TLV value: `u8 image_id, 3 × 0, u8 major, u8 minor, u16 revision,
    /// u32 build`.
    #[must_use]
    pub fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = self.image_id;
        b[4..].copy_from_slice(&self.version.to_bytes());
        b
    }
}

/// One `--custom-tlv TAG VALUE`: a protected vendor TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomTlv {
    /// Type, 0x00a0..=0xfffe, not one of MCUboot's own.
    pub tag: u16,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// Parses an integer as Python's `int(s, 0)` does for imgtool's options: decimal, or `0x`,
/// `0o`, `0b` prefixed (any case), `_` separators allowed.
///
/// # Errors
/// A message naming the text.
pub fn parse_int(s: &str) -> Result<u32, String> {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(r) = lower.strip_prefix("0x") {
        (r, 16)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (r, 8)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (r, 2)
    } else {
        if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
            return Err(format!(
                "{s:?} is not a valid integer (leading zero; use 0x/0o/0b)"
            ));
        }
        (lower.as_str(), 10)
    };
    if digits.is_empty() {
        return Err(format!("{s:?} is not a valid integer"));
    }
    u32::from_str_radix(digits, radix).map_err(|e| {
        use std::num::IntErrorKind;
        match e.kind() {
            IntErrorKind::PosOverflow => format!("{s:?} does not fit in 32 bits"),
            _ => format!("{s:?} is not a valid integer (use 0x/0o/0b prefixes for other bases)"),
        }
    })
}

/// Parses `-d`: one or more `(IMAGE_ID,VERSION)` groups, e.g. `"(1,2.0.0+0)"` or
/// `"(0, 1.2.3), (1, 2.0.0)"`.
///
/// # Errors
/// A message naming the offending part.
pub fn parse_dependencies(s: &str) -> Result<Vec<Dependency>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(after_open) = rest.strip_prefix('(') else {
            return Err(format!(
                "dependency {s:?}: expected \"(IMAGE_ID,VERSION)\" groups, e.g. \"(1,2.0.0+0)\""
            ));
        };
        let close = after_open
            .find(')')
            .ok_or_else(|| format!("dependency {s:?}: missing ')'"))?;
        let (id, ver) = after_open[..close]
            .split_once(',')
            .ok_or_else(|| format!("dependency {s:?}: expected \"(IMAGE_ID,VERSION)\""))?;
        let image_id = id
            .trim()
            .parse::<u8>()
            .map_err(|_| format!("dependency {s:?}: image id {:?} is not 0..255", id.trim()))?;
        let version = Version::parse(ver.trim())
            .map_err(|e| format!("dependency {s:?}: version {:?}: {e}", ver.trim()))?;
        out.push(Dependency { image_id, version });
        rest = after_open[close + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if out.is_empty() {
        return Err("dependency: empty".into());
    }
    Ok(out)
}

/// Parses one `--custom-tlv TAG VALUE`: `VALUE` starting with `0x` is hex bytes (even number of
/// digits), anything else is taken as UTF-8 text.
///
/// # Errors
/// A tag outside 0x00a0..=0xfffe or equal to a TLV type MCUboot defines, or bad hex.
pub fn parse_custom_tlv(tag: &str, value: &str) -> Result<CustomTlv, String> {
    let t = parse_int(tag).map_err(|e| format!("custom TLV tag: {e}"))?;
    if !(0xa0..=0xfffe).contains(&t) {
        return Err(format!(
            "custom TLV tag {t:#x} is outside the vendor range 0x00a0..0xfffe"
        ));
    }
    let t = t as u16;
    if TlvKind(t).name().is_some() {
        return Err(format!(
            "custom TLV tag {t:#x} conflicts with a predefined TLV"
        ));
    }
    let value = if let Some(h) = value.strip_prefix("0x") {
        if h.len() % 2 != 0 {
            return Err(format!(
                "custom TLV {t:#x}: odd number of hex digits in {value:?}"
            ));
        }
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("custom TLV {t:#x}: {value:?} is not hex"))?
    } else {
        value.as_bytes().to_vec()
    };
    if value.len() > 0xffff - 8 {
        return Err(format!("custom TLV {t:#x}: value too long"));
    }
    Ok(CustomTlv { tag: t, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_python() {
        assert_eq!(parse_int("0x028000"), Ok(0x28000));
        assert_eq!(parse_int("0X1C0000"), Ok(0x1c0000));
        assert_eq!(parse_int("3584"), Ok(3584));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert!(parse_int("010").is_err());
        assert!(parse_int("0x").is_err());
        assert!(parse_int("0x100000000").is_err());
        assert!(parse_int("12ab").is_err());
    }

    #[test]
    fn dependencies() {
        let d = parse_dependencies("(1,2.0.0+0)").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].encode(), [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let d = parse_dependencies("(0, 1.2.3), (1, 2.0.0+7)").unwrap();
        assert_eq!(d[1].version.build_num, 7);
        assert!(parse_dependencies("1,2.0.0").is_err());
        assert!(parse_dependencies("(300,1.0.0)").is_err());
        assert!(parse_dependencies("(1,1.0.x)").is_err());
    }

    #[test]
    fn custom_tlvs() {
        assert_eq!(
            parse_custom_tlv("0xa0", "0xdeadbeef").unwrap().value,
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_custom_tlv("0xa1", "hi").unwrap().value, b"hi");
        assert!(parse_custom_tlv("0x10", "0x00").is_err());
        assert!(parse_custom_tlv("0xa0", "0xabc").is_err());
    }
}
