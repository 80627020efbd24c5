//! AWS IoT Core: the message broker's published limits (spec/brokers.md), checks of topics and
//! client IDs against them, and least-privilege IoT policy documents for devices and for the
//! publisher, derived from the topics the C agent really uses (spec/protocol.md §1.3–§1.5).
//!
//! | who | action | resource (`PFX` topic prefix, `BRD` board) |
//! | --- | --- | --- |
//! | device | `iot:Connect` | `client/ID?` … `client/ID?????`: the agent's client ID is its identifier (first 18 bytes) and a 1–5 digit tick |
//! | device | `iot:Publish` | `topic/PFX/BRD/publish_notify`, `topic/cy_ota_device/will` (its last will) |
//! | device | `iot:Subscribe` | `topicfilter/PFX/BRD/OTAImage`, `topicfilter/PFX/BRD/OTAImage/?` … `/?????` |
//! | device | `iot:Receive` | `topic/PFX/BRD/OTAImage`, `topic/PFX/BRD/OTAImage/?` … `/?????` |
//! | device | deny `iot:Subscribe` | `topicfilter/PFX/BRD/OTAImage/+` and `/#` (which `?` would match) |
//! | publisher | `iot:Connect` | `client/PREFIX*` |
//! | publisher | `iot:Subscribe`, `iot:Receive` | the request topic (`$share/GROUP/…` filter with a share group) |
//! | publisher | `iot:Publish` | `topic/PFX/BRD/OTAImage`, `topic/PFX/BRD/OTAImage/?` … `/?????` |
//!
//! IoT policies read `*` as any run of characters and `?` as any one character (`+` and `#` are
//! literal), so `?` … `?????` covers exactly the agent's tick numbers 0–65535 by length.

use ota_core::protocol::topics::{self, TopicError};
use serde::{Deserialize, Serialize};

/// Inbound PUBLISH requests per second per connection (not adjustable).
pub const PUBLISH_PER_SECOND: u32 = 100;
/// Throughput per connection, bytes per second (not adjustable).
pub const BYTES_PER_SECOND: u32 = 512 * 1024;
/// Largest message payload, bytes.
pub const MAX_PAYLOAD: usize = 128 * 1024;
/// Longest topic, bytes.
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most forward slashes in a topic (8 levels).
pub const MAX_TOPIC_SLASHES: usize = 7;
/// Longest client ID, bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 128;
/// ALPN protocol name for MQTT with X.509 client certificates on port 443.
pub const ALPN_MQTT_443: &str = "x-amzn-mqtt-ca";
/// Region written into policy ARNs when none is given (replace it before use).
pub const PLACEHOLDER_REGION: &str = "REGION";
/// Account written into policy ARNs when none is given (replace it before use).
pub const PLACEHOLDER_ACCOUNT: &str = "ACCOUNT";
/// The policy variable that holds the thing name of the connection's certificate.
pub const THING_NAME_VARIABLE: &str = "${iot:Connection.Thing.ThingName}";
/// The identifier of the example application (`pIdentifier`).
pub const EXAMPLE_DEVICE_IDENTIFIER: &str = "CY_IOT_DEVICE";
/// Client-ID prefix of `otactl publish` (its default client ID is this plus the process id).
pub const PUBLISHER_CLIENT_ID_PREFIX: &str = "otactl-publish-";

/// What breaks an AWS IoT Core rule or cannot stand in a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// A topic longer than [`MAX_TOPIC_BYTES`].
    #[error("topic {topic:?} is {len} bytes; AWS IoT Core allows at most {MAX_TOPIC_BYTES}")]
    TopicTooLong {
        /// The topic.
        topic: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A topic with more than [`MAX_TOPIC_SLASHES`] slashes.
    #[error(
        "topic {topic:?} has {slashes} '/'; AWS IoT Core allows at most {MAX_TOPIC_SLASHES} (8 levels)"
    )]
    TooManySlashes {
        /// The topic.
        topic: String,
        /// Its number of `/`.
        slashes: usize,
    },
    /// A client ID longer than [`MAX_CLIENT_ID_BYTES`].
    #[error("client ID {id:?} is {len} bytes; AWS IoT Core allows at most {MAX_CLIENT_ID_BYTES}")]
    ClientIdTooLong {
        /// The client ID.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A topic prefix, board or share group that is not one topic level.
    #[error("{what} {value:?}: {source}")]
    Level {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        #[source]
        source: TopicError,
    },
    /// A character that an IoT policy reads as a wildcard or a variable.
    #[error(
        "{what} {value:?} contains {ch:?}, which an AWS IoT policy reads as a wildcard or variable"
    )]
    PolicyCharacter {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
        /// The character.
        ch: char,
    },
    /// Not a region name.
    #[error("region {0:?} is not an AWS region name (like eu-central-1)")]
    Region(String),
    /// Not an account ID.
    #[error("account {0:?} is not a 12-digit AWS account ID")]
    Account(String),
    /// No board given.
    #[error("name at least one board")]
    NoBoard,
}

/// Checks a topic name or filter against AWS IoT Core's length and level limits.
///
/// # Errors
/// [`AwsError::TopicTooLong`] or [`AwsError::TooManySlashes`].
pub fn check_topic(topic: &str) -> Result<(), AwsError> {
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(AwsError::TopicTooLong {
            topic: topic.into(),
            len: topic.len(),
        });
    }
    let slashes = topic.bytes().filter(|&b| b == b'/').count();
    if slashes > MAX_TOPIC_SLASHES {
        return Err(AwsError::TooManySlashes {
            topic: topic.into(),
            slashes,
        });
    }
    Ok(())
}

/// Checks a client ID against AWS IoT Core's length limit.
///
/// # Errors
/// [`AwsError::ClientIdTooLong`].
pub fn check_client_id(id: &str) -> Result<(), AwsError> {
    if id.len() > MAX_CLIENT_ID_BYTES {
        return Err(AwsError::ClientIdTooLong {
            id: id.into(),
            len: id.len(),
        });
    }
    Ok(())
}

/// Whose policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Devices running Infineon's OTA agent.
    Device,
    /// `otactl publish`.
    Publisher,
}

/// An AWS IoT policy document (`aws iot create-policy --policy-document`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// Policy language version, `2012-10-17`.
    #[serde(rename = "Version")]
    pub version: String,
    /// The statements.
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

/// One statement of a [`PolicyDocument`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// `Allow` or `Deny`.
    #[serde(rename = "Effect")]
    pub effect: String,
    /// Actions such as `iot:Publish`.
    #[serde(rename = "Action")]
    pub action: Vec<String>,
    /// Resource ARNs.
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
    /// Conditions, if any.
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

/// What a policy is derived from.
#[derive(Clone, Debug)]
pub struct PolicySpec {
    /// AWS region of the ARNs ([`PLACEHOLDER_REGION`] if unknown).
    pub region: String,
    /// Account ID of the ARNs ([`PLACEHOLDER_ACCOUNT`] if unknown).
    pub account: String,
    /// `COMPANY_TOPIC_PREPEND`.
    pub prefix: String,
    /// `CY_TARGET_BOARD_STRING` of every board the policy covers.
    pub boards: Vec<String>,
    /// The devices' `pIdentifier` (empty: the agent's `cy_device`).
    pub device_identifier: String,
    /// Scope device connections to the certificate's thing instead of `device_identifier`.
    pub thing_name: bool,
    /// Start of the publisher's client IDs.
    pub publisher_client_id: String,
    /// The publisher's MQTT 5 shared-subscription group, if it uses one.
    pub share_group: Option<String>,
}

impl PolicySpec {
    /// The example's identifiers and placeholder region/account for `prefix` and `boards`.
    #[must_use]
    pub fn new(prefix: &str, boards: Vec<String>) -> Self {
        Self {
            region: PLACEHOLDER_REGION.into(),
            account: PLACEHOLDER_ACCOUNT.into(),
            prefix: prefix.into(),
            boards,
            device_identifier: EXAMPLE_DEVICE_IDENTIFIER.into(),
            thing_name: false,
            publisher_client_id: PUBLISHER_CLIENT_ID_PREFIX.into(),
            share_group: None,
        }
    }

    /// Whether region or account is still a placeholder.
    #[must_use]
    pub fn has_placeholders(&self) -> bool {
        self.region == PLACEHOLDER_REGION || self.account == PLACEHOLDER_ACCOUNT
    }

    fn check(&self) -> Result<(), AwsError> {
        let region_ok = self.region == PLACEHOLDER_REGION
            || (!self.region.is_empty()
                && self.region.len() <= 32
                && self.region.split('-').count() >= 3
                && self
                    .region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        if !region_ok {
            return Err(AwsError::Region(self.region.clone()));
        }
        let account_ok = self.account == PLACEHOLDER_ACCOUNT
            || (self.account.len() == 12 && self.account.bytes().all(|b| b.is_ascii_digit()));
        if !account_ok {
            return Err(AwsError::Account(self.account.clone()));
        }
        if self.boards.is_empty() {
            return Err(AwsError::NoBoard);
        }
        level("topic prefix", &self.prefix)?;
        for b in &self.boards {
            level("board", b)?;
            let longest = topics::unique_topic(&self.prefix, b, 0xFFFF)
                .map_err(|source| level_error("board", b, source))?;
            check_topic(&longest)?;
        }
        if let Some(g) = &self.share_group {
            level("share group", g)?;
            for b in &self.boards {
                check_topic(&self.request_filter(b)?)?;
            }
        }
        plain("device identifier", &self.device_identifier)?;
        plain("publisher client ID", &self.publisher_client_id)?;
        check_client_id(&self.publisher_client_id)
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.region, self.account)
    }

    fn request_filter(&self, board: &str) -> Result<String, AwsError> {
        let t = topics::request_topic(&self.prefix, board)
            .map_err(|source| level_error("board", board, source))?;
        Ok(match &self.share_group {
            Some(g) => topics::shared_filter(g, &t)
                .map_err(|source| level_error("share group", g, source))?
                .to_string(),
            None => t.to_string(),
        })
    }

    /// ARNs of `kind` for every board's direct topic and its unique topics (`/?` … `/?????`).
    fn image_arns(&self, kind: &str) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        for b in &self.boards {
            let direct = topics::direct_topic(&self.prefix, b)
                .map_err(|source| level_error("board", b, source))?;
            out.push(self.arn(kind, &direct));
            out.extend((1..=5).map(|n| self.arn(kind, &format!("{direct}/{}", "?".repeat(n)))));
        }
        Ok(out)
    }

    fn device(&self) -> Result<Vec<Statement>, AwsError> {
        let id = if self.thing_name {
            THING_NAME_VARIABLE.to_string()
        } else {
            device_client_id_base(&self.device_identifier).to_string()
        };
        let mut connect = allow(
            "iot:Connect",
            (1..=5)
                .map(|n| self.arn("client", &format!("{id}{}", "?".repeat(n))))
                .collect(),
        );
        if self.thing_name {
            connect.condition = Some(serde_json::json!({
                "Bool": { "iot:Connection.Thing.IsAttached": "true" }
            }));
        }
        let mut publish = Vec::new();
        let mut wildcard_filters = Vec::new();
        for b in &self.boards {
            let request = topics::request_topic(&self.prefix, b)
                .map_err(|source| level_error("board", b, source))?;
            publish.push(self.arn("topic", &request));
            let direct = topics::direct_topic(&self.prefix, b)
                .map_err(|source| level_error("board", b, source))?;
            for w in ["+", "#"] {
                wildcard_filters.push(self.arn("topicfilter", &format!("{direct}/{w}")));
            }
        }
        publish.push(self.arn("topic", topics::WILL_TOPIC));
        Ok(vec![
            connect,
            allow("iot:Publish", publish),
            allow("iot:Subscribe", self.image_arns("topicfilter")?),
            allow("iot:Receive", self.image_arns("topic")?),
            Statement {
                effect: "Deny".into(),
                ..allow("iot:Subscribe", wildcard_filters)
            },
        ])
    }

    fn publisher(&self) -> Result<Vec<Statement>, AwsError> {
        let mut filters = Vec::new();
        let mut requests = Vec::new();
        for b in &self.boards {
            filters.push(self.arn("topicfilter", &self.request_filter(b)?));
            let request = topics::request_topic(&self.prefix, b)
                .map_err(|source| level_error("board", b, source))?;
            requests.push(self.arn("topic", &request));
        }
        Ok(vec![
            allow(
                "iot:Connect",
                vec![self.arn("client", &format!("{}*", self.publisher_client_id))],
            ),
            allow("iot:Subscribe", filters),
            allow("iot:Receive", requests),
            allow("iot:Publish", self.image_arns("topic")?),
        ])
    }
}

/// The part of a device's client ID before its tick number: the identifier cut to 18 bytes,
/// or the agent's default `cy_device` when empty (as `ota_core::protocol::topics::client_id`).
#[must_use]
pub fn device_client_id_base(identifier: &str) -> &str {
    let base = if identifier.is_empty() {
        topics::DEFAULT_CLIENT_ID_PREFIX
    } else {
        identifier
    };
    let mut cut = base.len().min(18);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    &base[..cut]
}

/// The least-privilege policy document for `role`.
///
/// # Errors
/// A value that is not a valid region, account, topic level or client ID, or topics over AWS's
/// limits.
pub fn policy(role: Role, spec: &PolicySpec) -> Result<PolicyDocument, AwsError> {
    spec.check()?;
    let statement = match role {
        Role::Device => spec.device()?,
        Role::Publisher => spec.publisher()?,
    };
    Ok(PolicyDocument {
        version: "2012-10-17".into(),
        statement,
    })
}

fn allow(action: &str, resource: Vec<String>) -> Statement {
    Statement {
        effect: "Allow".into(),
        action: vec![action.into()],
        resource,
        condition: None,
    }
}

fn level_error(what: &'static str, value: &str, source: TopicError) -> AwsError {
    AwsError::Level {
        what,
        value: value.into(),
        source,
    }
}

fn level(what: &'static str, value: &str) -> Result<(), AwsError> {
    topics::check_level(value).map_err(|source| level_error(what, value, source))?;
    plain(what, value)
}

/// Refuses the characters an IoT policy gives a meaning: `*`, `?` (wildcards), `$` (variables).
fn plain(what: &'static str, value: &str) -> Result<(), AwsError> {
    match value.chars().find(|c| matches!(c, '*' | '?' | '$')) {
        Some(ch) => Err(AwsError::PolicyCharacter {
            what,
            value: value.into(),
            ch,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PolicySpec {
        PolicySpec::new("MyUniqueTopic", vec!["APP_CY8CPROTO_062S2_43439".into()])
    }

    #[test]
    fn topic_limits_are_aws_limits() {
        assert!(check_topic(&"a".repeat(256)).is_ok());
        assert!(matches!(
            check_topic(&"a".repeat(257)),
            Err(AwsError::TopicTooLong { len: 257, .. })
        ));
        assert!(check_topic("1/2/3/4/5/6/7/8").is_ok());
        let e = check_topic("1/2/3/4/5/6/7/8/9").unwrap_err();
        assert!(matches!(e, AwsError::TooManySlashes { slashes: 8, .. }));
        assert!(e.to_string().contains("at most 7"), "{e}");
        assert!(check_client_id(&"c".repeat(128)).is_ok());
        assert!(check_client_id(&"c".repeat(129)).is_err());
    }

    #[test]
    fn device_client_ids_follow_the_agent() {
        assert_eq!(device_client_id_base(""), "cy_device");
        assert_eq!(device_client_id_base("CY_IOT_DEVICE"), "CY_IOT_DEVICE");
        assert_eq!(
            device_client_id_base("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            "ABCDEFGHIJKLMNOPQR"
        );
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let mut s = spec();
        s.boards = vec!["A*".into()];
        let e = policy(Role::Device, &s).unwrap_err().to_string();
        assert!(e.contains("board \"A*\"") && e.contains("wildcard"), "{e}");
        let mut s = spec();
        s.prefix = "a/b".into();
        assert!(matches!(
            policy(Role::Device, &s),
            Err(AwsError::Level {
                what: "topic prefix",
                ..
            })
        ));
        let mut s = spec();
        s.account = "12345".into();
        assert!(policy(Role::Publisher, &s)
            .unwrap_err()
            .to_string()
            .contains("12-digit"));
        let mut s = spec();
        s.region = "Europe".into();
        assert!(matches!(
            policy(Role::Publisher, &s),
            Err(AwsError::Region(_))
        ));
        let mut s = spec();
        s.boards.clear();
        assert!(matches!(policy(Role::Device, &s), Err(AwsError::NoBoard)));
        let mut s = spec();
        // The device's 255-byte topic buffer is tighter than AWS's 256 bytes.
        s.boards = vec!["B".repeat(230)];
        assert!(matches!(
            policy(Role::Device, &s),
            Err(AwsError::Level {
                source: TopicError::TooLong,
                ..
            })
        ));
    }

    #[test]
    fn arns_use_region_and_account() {
        let mut s = spec();
        s.region = "eu-central-1".into();
        s.account = "123456789012".into();
        assert!(!s.has_placeholders());
        let p = policy(Role::Publisher, &s).unwrap();
        assert_eq!(
            p.statement[0].resource,
            ["arn:aws:iot:eu-central-1:123456789012:client/otactl-publish-*"]
        );
        assert!(spec().has_placeholders());
    }

    #[test]
    fn shared_subscription_filter_for_the_publisher() {
        let mut s = spec();
        s.share_group = Some("otactl".into());
        let p = policy(Role::Publisher, &s).unwrap();
        assert_eq!(
            p.statement[1].resource,
            ["arn:aws:iot:REGION:ACCOUNT:topicfilter/$share/otactl/MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify"]
        );
    }
}
