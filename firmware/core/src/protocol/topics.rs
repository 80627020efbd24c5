//! Topic names (spec §1.2–§1.5). Always build topics with these functions, never by hand.
//!
//! With `PFX` the company prefix and `BRD` the board string:
//!
//! | topic | built by | who publishes |
//! | --- | --- | --- |
//! | `PFX/BRD/publish_notify` | [`request_topic`] | device (requests, results) |
//! | `PFX/BRD/OTAImage/<n>` | [`unique_topic`] | publisher (job, chunks, replies) |
//! | `PFX/BRD/OTAImage` | [`direct_topic`] | publisher ("Send Direct Update" broadcast) |
//! | `cy_ota_device/will` | [`WILL_TOPIC`] | broker (device's last will) |

use core::fmt::Write as _;

/// Longest topic the device stores (its unique-topic buffer is 256 bytes with the NUL).
pub const TOPIC_MAX: usize = 255;
/// A topic in a fixed-capacity string.
pub type Topic = heapless::String<TOPIC_MAX>;
/// Longest MQTT client ID the device makes (18 + 5 digits).
pub const CLIENT_ID_MAX: usize = 23;

/// `COMPANY_TOPIC_PREPEND` of the example application (and `otactl publish`'s default).
pub const PREFIX_APP: &str = "MyUniqueTopic";
/// `COMPANY_TOPIC_PREPEND` of the library's defaults.
pub const PREFIX_LIB: &str = "OTAUpdate";
/// `PUBLISHER_LISTEN_TOPIC`: last level of the request topic.
pub const LISTEN_LEVEL: &str = "publish_notify";
/// `PUBLISHER_DIRECT_TOPIC` and `CY_OTA_MQTT_MAGIC`: last level of the direct topic and third
/// level of unique topics.
pub const IMAGE_LEVEL: &str = "OTAImage";
/// The device's will topic.
pub const WILL_TOPIC: &str = "cy_ota_device/will";
/// The device's will payload (36 bytes).
pub const WILL_PAYLOAD: &str = "MQTT demo unexpectedly disconnected.";
/// `CY_OTA_MQTT_CLIENT_ID_PREFIX`: used when the application's identifier is empty.
pub const DEFAULT_CLIENT_ID_PREFIX: &str = "cy_device";

/// Why a topic could not be built or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// Empty topic or level.
    Empty,
    /// Contains `+`, `#` or NUL (not publishable), or a level contains `/`.
    BadCharacter,
    /// Starts with `$` (broker-internal topics).
    Reserved,
    /// Longer than [`TOPIC_MAX`].
    TooLong,
    /// Not the unique topic `PFX/BRD/OTAImage/<0–65535>` of the board the request came from.
    NotUniqueTopic,
}

impl core::fmt::Display for TopicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty topic",
            Self::BadCharacter => "topic contains a wildcard, NUL or misplaced '/'",
            Self::Reserved => "topic starts with '$'",
            Self::TooLong => "topic longer than 255 bytes",
            Self::NotUniqueTopic => {
                "not the requesting board's unique topic PREFIX/BOARD/OTAImage/<0-65535>"
            }
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TopicError {}

/// Checks one topic level (prefix or board): non-empty, no `/`, `+`, `#`, NUL, not `$…`.
///
/// # Errors
/// The first problem found.
pub fn check_level(level: &str) -> Result<(), TopicError> {
    if level.is_empty() {
        return Err(TopicError::Empty);
    }
    if level.starts_with('$') {
        return Err(TopicError::Reserved);
    }
    if level.bytes().any(|b| matches!(b, b'/' | b'+' | b'#' | 0)) {
        return Err(TopicError::BadCharacter);
    }
    Ok(())
}

/// Checks a topic a device asked us to publish to (its `UniqueTopicName`): non-empty, at most
/// [`TOPIC_MAX`] bytes, no wildcard or NUL, not `$…`, no JSON escape (`\`, `"`).
///
/// # Errors
/// The first problem found.
pub fn check_reply_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > TOPIC_MAX {
        return Err(TopicError::TooLong);
    }
    if topic.starts_with('$') {
        return Err(TopicError::Reserved);
    }
    if topic
        .bytes()
        .any(|b| matches!(b, b'+' | b'#' | 0 | b'\\' | b'"') || b < 0x20)
    {
        return Err(TopicError::BadCharacter);
    }
    Ok(())
}

fn build(args: core::fmt::Arguments<'_>) -> Result<Topic, TopicError> {
    let mut t = Topic::new();
    t.write_fmt(args).map_err(|_| TopicError::TooLong)?;
    Ok(t)
}

/// `PFX/BRD/publish_notify`: where devices send requests and results.
///
/// # Errors
/// A bad prefix or board level, or a topic that is too long.
pub fn request_topic(prefix: &str, board: &str) -> Result<Topic, TopicError> {
    check_level(prefix)?;
    check_level(board)?;
    build(format_args!("{prefix}/{board}/{LISTEN_LEVEL}"))
}

/// `PFX/BRD/OTAImage`: the application's filter topic, where "Send Direct Update" broadcasts go.
///
/// # Errors
/// A bad prefix or board level, or a topic that is too long.
pub fn direct_topic(prefix: &str, board: &str) -> Result<Topic, TopicError> {
    check_level(prefix)?;
    check_level(board)?;
    build(format_args!("{prefix}/{board}/{IMAGE_LEVEL}"))
}

/// `PFX/BRD/OTAImage/<n>` with `n = tick_ms & 0xFFFF` in plain decimal, as the device makes it at
/// the start of every session (`cy_ota_wait_for_start`).
///
/// # Errors
/// A bad prefix or board level, or a topic that is too long.
pub fn unique_topic(prefix: &str, board: &str, tick_ms: u32) -> Result<Topic, TopicError> {
    check_level(prefix)?;
    check_level(board)?;
    let n = tick_ms & 0xFFFF;
    build(format_args!("{prefix}/{board}/{IMAGE_LEVEL}/{n}"))
}

/// The board level of a request topic `PFX/BRD/publish_notify` with the given prefix (also
/// when the topic came through a `$share/...` subscription, which brokers strip).
#[must_use]
pub fn board_of_request_topic<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let board = rest.strip_suffix(LISTEN_LEVEL)?.strip_suffix('/')?;
    check_level(board).ok()?;
    Some(board)
}

/// The session number `n` of a unique topic `PFX/BRD/OTAImage/<n>` (spec §1.4), checked
/// strictly against the prefix and board of the request topic the request arrived on: `n` is
/// plain decimal 0–65535 without leading zeros, exactly as the device's `%d` prints it. This is
/// the only topic a publisher may reply to; anything else (another board or prefix, the
/// broadcast topic, wildcards, characters brokers reject) is [`TopicError::NotUniqueTopic`].
///
/// # Errors
/// [`TopicError::NotUniqueTopic`] (or the level error of a bad `prefix`/`board`).
pub fn parse_unique_topic(topic: &str, prefix: &str, board: &str) -> Result<u16, TopicError> {
    check_level(prefix)?;
    check_level(board)?;
    let n = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(board))
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(IMAGE_LEVEL))
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(TopicError::NotUniqueTopic)?;
    let digits_ok = !n.is_empty()
        && n.len() <= 5
        && n.bytes().all(|b| b.is_ascii_digit())
        && (n == "0" || !n.starts_with('0'));
    if !digits_ok {
        return Err(TopicError::NotUniqueTopic);
    }
    n.parse::<u16>().map_err(|_| TopicError::NotUniqueTopic)
}

/// An MQTT 5 shared-subscription filter: `$share/GROUP/FILTER`.
///
/// # Errors
/// A bad group name, or a filter that is too long.
pub fn shared_filter(group: &str, filter: &str) -> Result<Topic, TopicError> {
    check_level(group)?;
    build(format_args!("$share/{group}/{filter}"))
}

/// The device's MQTT client ID: the identifier (or [`DEFAULT_CLIENT_ID_PREFIX`] if empty)
/// truncated to 18 bytes, then `tick_ms & 0xFFFF` in decimal. A new one per connection.
#[must_use]
pub fn client_id(identifier: &str, tick_ms: u32) -> heapless::String<CLIENT_ID_MAX> {
    let base = if identifier.is_empty() {
        DEFAULT_CLIENT_ID_PREFIX
    } else {
        identifier
    };
    let mut cut = base.len().min(18);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut id = heapless::String::new();
    // 18 bytes + at most 5 digits always fit in 23.
    let _ = write!(id, "{}{}", &base[..cut], tick_ms & 0xFFFF);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRD: &str = "APP_CY8CPROTO_062S2_43439";

    #[test]
    fn g11_identifiers() {
        assert_eq!(
            client_id("CY_IOT_DEVICE", 31415).as_str(),
            "CY_IOT_DEVICE31415"
        );
        assert_eq!(
            client_id("CY_IOT_DEVICE", 70000).as_str(),
            "CY_IOT_DEVICE4464"
        );
        assert_eq!(client_id("", 7).as_str(), "cy_device7");
        assert_eq!(
            client_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 65535).as_str(),
            "ABCDEFGHIJKLMNOPQR65535"
        );
        assert_eq!(
            unique_topic(PREFIX_APP, BRD, 10234).unwrap().as_str(),
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"
        );
        assert_eq!(
            request_topic(PREFIX_APP, BRD).unwrap().as_str(),
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify"
        );
        assert_eq!(
            direct_topic(PREFIX_APP, BRD).unwrap().as_str(),
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage"
        );
        assert_eq!(WILL_PAYLOAD.len(), 36);
    }

    #[test]
    fn request_topic_board_and_bad_levels() {
        let t = request_topic(PREFIX_LIB, "B1").unwrap();
        assert_eq!(board_of_request_topic(&t, PREFIX_LIB), Some("B1"));
        assert_eq!(board_of_request_topic(&t, PREFIX_APP), None);
        assert_eq!(
            board_of_request_topic("OTAUpdate/a/b/publish_notify", PREFIX_LIB),
            None
        );
        assert_eq!(request_topic("", BRD), Err(TopicError::Empty));
        assert_eq!(request_topic("a/b", BRD), Err(TopicError::BadCharacter));
        assert_eq!(request_topic("x", "+"), Err(TopicError::BadCharacter));
        assert_eq!(
            shared_filter("g1", &t).unwrap().as_str(),
            "$share/g1/OTAUpdate/B1/publish_notify"
        );
    }

    #[test]
    fn unique_topic_is_checked_against_the_request_topic() {
        let ok = |t: &str| parse_unique_topic(t, PREFIX_APP, BRD);
        assert_eq!(
            ok("MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"),
            Ok(10234)
        );
        assert_eq!(
            ok("MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/0"),
            Ok(0)
        );
        assert_eq!(
            ok("MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/65535"),
            Ok(65535)
        );
        for bad in [
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/65536",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/007",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/1/2",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/+",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/#",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/1\u{ffff}",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/ 1",
            "MyUniqueTopic/OTHER_BOARD/OTAImage/1",
            "OTAUpdate/APP_CY8CPROTO_062S2_43439/OTAImage/1",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify",
            "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImagX/1",
            "other/device/topic",
            "",
        ] {
            assert_eq!(ok(bad), Err(TopicError::NotUniqueTopic), "{bad:?}");
        }
    }

    #[test]
    fn reply_topic_checks() {
        assert!(check_reply_topic("MyUniqueTopic/B/OTAImage/1").is_ok());
        assert_eq!(check_reply_topic(""), Err(TopicError::Empty));
        assert_eq!(check_reply_topic("a/+/b"), Err(TopicError::BadCharacter));
        assert_eq!(check_reply_topic("a/#"), Err(TopicError::BadCharacter));
        assert_eq!(check_reply_topic("$SYS/x"), Err(TopicError::Reserved));
        let long = [b'a'; 256];
        assert_eq!(
            check_reply_topic(core::str::from_utf8(&long).unwrap()),
            Err(TopicError::TooLong)
        );
    }
}
