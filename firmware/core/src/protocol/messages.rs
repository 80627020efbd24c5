//! Message kinds, the device's version triple and the identity fields of its request templates.

/// The `Message` values of the protocol (spec §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// D → P, job flow: "is there an update for me?" (§2.2).
    UpdateAvailability,
    /// D → P: "send me the whole image" (§2.5).
    RequestUpdate,
    /// D → P: broadcast the image on `PFX/BRD/OTAImage` (§2.8, compatibility only).
    SendDirectUpdate,
    /// D → P: "send me `Size` bytes at `Offset`" (§2.9).
    RequestDataChunk,
    /// D → P: the update was downloaded and verified (§2.6).
    Success,
    /// D → P: the update failed (§2.6).
    Failure,
    /// P → D: the job document (§2.3).
    UpdateAvailable,
    /// P → D: nothing to do (§2.4).
    NoUpdateAvailable,
    /// P → D: acknowledgement of a result (§2.7).
    ResultReceived,
}

/// Every kind, for lookups.
pub const ALL_KINDS: [MessageKind; 9] = [
    MessageKind::UpdateAvailability,
    MessageKind::RequestUpdate,
    MessageKind::SendDirectUpdate,
    MessageKind::RequestDataChunk,
    MessageKind::Success,
    MessageKind::Failure,
    MessageKind::UpdateAvailable,
    MessageKind::NoUpdateAvailable,
    MessageKind::ResultReceived,
];

impl MessageKind {
    /// The exact `Message` string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpdateAvailability => "Update Availability",
            Self::RequestUpdate => "Request Update",
            Self::SendDirectUpdate => "Send Direct Update",
            Self::RequestDataChunk => "Request Data Chunk",
            Self::Success => "Success",
            Self::Failure => "Failure",
            Self::UpdateAvailable => "Update Available",
            Self::NoUpdateAvailable => "No Update Available",
            Self::ResultReceived => "Result Received",
        }
    }

    /// Looks a `Message` value up, ignoring ASCII case and surrounding spaces (tolerant side).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
    }

    /// Whether the device sends this kind (and the publisher must handle it).
    #[must_use]
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            Self::UpdateAvailability
                | Self::RequestUpdate
                | Self::SendDirectUpdate
                | Self::RequestDataChunk
                | Self::Success
                | Self::Failure
        )
    }
}

/// The device's application version `APP_VERSION_MAJOR.MINOR.BUILD` as it appears on the wire
/// (`"%d.%d.%d"`) and in chunk headers (three u16).
///
/// It corresponds to the MCUboot header's `major.minor.revision` (the build number is not part of
/// the protocol). Ordering is lexicographic, which is the device's rule: an offer `x` is taken
/// iff `x > running` ([`AppVersion::accepts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppVersion {
    /// `APP_VERSION_MAJOR`.
    pub major: u16,
    /// `APP_VERSION_MINOR`.
    pub minor: u16,
    /// `APP_VERSION_BUILD` (MCUboot's revision).
    pub build: u16,
}

/// C `atoi` truncated to `uint16_t`: leading whitespace, an optional sign, then digits up to the
/// first non-digit; nothing numeric gives 0.
#[must_use]
pub fn atoi_u16(s: &str) -> u16 {
    let b = s
        .trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: u32 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
    }
    let v = if neg { v.wrapping_neg() } else { v };
    // Truncation to uint16_t, as the C assignment does.
    (v & 0xFFFF) as u16
}

impl AppVersion {
    /// A version.
    #[must_use]
    pub const fn new(major: u16, minor: u16, build: u16) -> Self {
        Self {
            major,
            minor,
            build,
        }
    }

    /// The device's job-document rule (spec §4.2, G9): `atoi` of up to three dot-separated
    /// parts, missing parts 0. `"2"` → 2.0.0, `"1.1"` → 1.1.0, `"v2.0.0"` → 0.0.0.
    #[must_use]
    pub fn parse_device(text: &str) -> Self {
        let mut parts = text.split('.').map(atoi_u16);
        Self {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
            build: parts.next().unwrap_or(0),
        }
    }

    /// Strict parsing for the publisher side: exactly `N.N.N` with decimal u16 parts.
    #[must_use]
    pub fn parse_strict(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let mut next = || -> Option<u16> {
            let p = parts.next()?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let v = Self::new(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }

    /// The device's version gate (spec §3.3): would a device running `self` take `offered`?
    #[must_use]
    pub fn accepts(self, offered: Self) -> bool {
        offered > self
    }

    /// From an MCUboot image version (`major.minor.revision`; the build number is dropped).
    #[must_use]
    pub fn from_image(v: crate::image::Version) -> Self {
        Self::new(u16::from(v.major), u16::from(v.minor), v.revision)
    }
}

impl core::fmt::Display for AppVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The identity literals compiled into a device's request templates (spec §2.2). They are the
/// same on every device built from one template set, so they are never an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceIdentity<'a> {
    /// `Manufacturer`.
    pub manufacturer: &'a str,
    /// `ManufacturerID`.
    pub manufacturer_id: &'a str,
    /// `ProductID`.
    pub product_id: &'a str,
    /// `SerialNumber`.
    pub serial_number: &'a str,
    /// `BoardName` (a fixed literal, not the real board).
    pub board_name: &'a str,
}

/// The `SerialNumber` every request template of the example and of the library hard-codes
/// (spec §2.1): a device that sends it has not been given an identity of its own.
pub const TEMPLATE_SERIAL: &str = "ABC213450001";

impl DeviceIdentity<'static> {
    /// The example application's templates (APP `configs/cy_ota_config.h`).
    pub const APP: Self = Self {
        manufacturer: "Infineon",
        manufacturer_id: "ABCD123",
        product_id: "EFGH456",
        serial_number: TEMPLATE_SERIAL,
        board_name: "CY8CPROTO_062_4343W",
    };
    /// The library's default templates (`cy_ota_defaults.h`).
    pub const LIB: Self = Self {
        manufacturer: "Express Widgits Corporation",
        manufacturer_id: "EWCO",
        product_id: "Easy Widgit",
        serial_number: TEMPLATE_SERIAL,
        board_name: "CY8CPROTO_062_4343W",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g9_version_rule() {
        let v = AppVersion::parse_device;
        let cases = [
            ("1.0.0", Some("1.0.0"), false),
            ("1.0.0", Some("1.0.1"), true),
            ("1.2.0", Some("1.1.9"), false),
            ("1.2.0", Some("2.0.0"), true),
            ("0.0.0", Some("0.0.0"), false),
            ("1.0.0", Some("2"), true),
            ("1.0.0", Some("1.1"), true),
            ("1.0.0", None, false),
            ("1.0.0", Some("v2.0.0"), false),
        ];
        for (running, offered, verdict) in cases {
            let offered = offered.map_or(AppVersion::default(), v);
            assert_eq!(
                v(running).accepts(offered),
                verdict,
                "{running} vs {offered}"
            );
        }
        assert_eq!(v("2"), AppVersion::new(2, 0, 0));
        assert_eq!(v("1.1"), AppVersion::new(1, 1, 0));
        assert_eq!(v("v2.0.0"), AppVersion::new(0, 0, 0));
        assert_eq!(v("65537.1.2"), AppVersion::new(1, 1, 2));
        assert_eq!(v(" 3x.-1.9"), AppVersion::new(3, 65535, 9));
    }

    #[test]
    fn strict_parse_and_display() {
        assert_eq!(
            AppVersion::parse_strict("1.2.3"),
            Some(AppVersion::new(1, 2, 3))
        );
        for bad in ["1.2", "1.2.3.4", "v1.2.3", "1..3", "1.2.70000", ""] {
            assert_eq!(AppVersion::parse_strict(bad), None, "{bad}");
        }
        assert_eq!(
            format_args!("{}", AppVersion::new(1, 0, 0)).to_string(),
            "1.0.0"
        );
    }

    #[test]
    fn message_kinds() {
        for k in ALL_KINDS {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(
            MessageKind::parse(" request update "),
            Some(MessageKind::RequestUpdate)
        );
        assert_eq!(MessageKind::parse("Request"), None);
    }
}
