//! Broker profiles: the limits of the brokers users run (spec/brokers.md), as one named set
//! each, so the publisher stays inside them instead of being throttled, disconnected or having
//! its messages dropped.
//!
//! | limit | `aws` (AWS IoT Core) | `mosquitto` (Debian's defaults) | `generic` |
//! | --- | ---: | ---: | ---: |
//! | PUBLISH/s per connection | 100 | — | — |
//! | bytes/s per connection | 512 KiB | — | — |
//! | payload | 128 KiB | 256 MiB | 256 MiB |
//! | QoS 1 in flight per connection | 64 | 64 | 64 |
//! | messages queued per device | 100 | 1000 | 1000 |
//! | topic length / levels | 256 / 8 | 65535 / — | 65535 / — |
//!
//! A push sends the first half of the device's queue depth at once (every image of Infineon's
//! flash maps fits in mosquitto's half: pushes to fast devices are not slowed) and then paces
//! the rest to [`DEFAULT_DEVICE_RATE`] per device, so a device that reads at least that fast
//! never has more than the queue depth waiting for it at the broker.

use std::fmt;

use crate::aws;

/// Bytes per second a push is paced to once its burst is spent: what a Wi-Fi MCU writing
/// external flash sustains (PSoC 6 + CYW43439 writing QSPI NOR is in the hundreds of KiB/s).
pub const DEFAULT_DEVICE_RATE: u32 = 256 * 1024;

/// A named set of broker limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// `aws`, `mosquitto` or `generic`.
    pub name: &'static str,
    /// PUBLISH packets per second per connection (`None`: no limit).
    pub publish_rate: Option<u32>,
    /// Payload bytes per second per connection (`None`: no limit).
    pub bytes_rate: Option<u32>,
    /// Largest payload the broker accepts.
    pub max_payload: usize,
    /// Unacknowledged QoS 1 PUBLISHes per connection.
    pub inflight: u16,
    /// Messages the broker queues for one client before it drops them.
    pub queue_depth: usize,
    /// Longest topic.
    pub max_topic_len: usize,
    /// Most topic levels (`None`: no limit).
    pub max_topic_levels: Option<usize>,
    /// Per-device pace after the burst (bytes per second).
    pub device_rate: u32,
    /// Longest client id.
    pub max_client_id: usize,
}

impl Profile {
    /// AWS IoT Core's published message-broker limits ([`crate::aws`]).
    pub const AWS: Self = Self {
        name: "aws",
        publish_rate: Some(aws::PUBLISH_PER_SECOND),
        bytes_rate: Some(aws::BYTES_PER_SECOND),
        max_payload: aws::MAX_PAYLOAD,
        inflight: 64,
        queue_depth: 100,
        max_topic_len: aws::MAX_TOPIC_BYTES,
        max_topic_levels: Some(aws::MAX_TOPIC_SLASHES + 1),
        device_rate: DEFAULT_DEVICE_RATE,
        max_client_id: aws::MAX_CLIENT_ID_BYTES,
    };
    /// mosquitto 2.0 with Debian's defaults (`max_queued_messages 1000`).
    pub const MOSQUITTO: Self = Self {
        name: "mosquitto",
        publish_rate: None,
        bytes_rate: None,
        max_payload: 268_435_455,
        inflight: 64,
        queue_depth: 1000,
        max_topic_len: 65_535,
        max_topic_levels: None,
        device_rate: DEFAULT_DEVICE_RATE,
        max_client_id: 65_535,
    };
    /// Any other broker: mosquitto's numbers (EMQX and HiveMQ queue about as much per client).
    pub const GENERIC: Self = Self {
        name: "generic",
        ..Self::MOSQUITTO
    };

    /// The profile called `name`.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "aws" => Some(Self::AWS),
            "mosquitto" => Some(Self::MOSQUITTO),
            "generic" => Some(Self::GENERIC),
            _ => None,
        }
    }

    /// The profile for a broker host when none is named: `aws` for `*.amazonaws.com`.
    #[must_use]
    pub fn for_host(host: &str) -> Self {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        if h.ends_with(".amazonaws.com") {
            Self::AWS
        } else {
            Self::GENERIC
        }
    }

    /// Chunks a push may send at once before pacing starts.
    #[must_use]
    pub fn burst(&self) -> usize {
        (self.queue_depth / 2).max(1)
    }

    /// Checks what can never work with this broker, naming the limit.
    ///
    /// # Errors
    /// A message naming the limit and the value that breaks it.
    pub fn check(
        &self,
        chunk_packet: usize,
        reply_topic: &str,
        client_id: &str,
    ) -> Result<(), ProfileError> {
        if client_id.len() > self.max_client_id {
            return Err(ProfileError(format!(
                "the client id {client_id:?} is {} bytes but the {} profile allows {} (--client-id)",
                client_id.len(),
                self.name,
                self.max_client_id
            )));
        }
        if chunk_packet > self.max_payload {
            return Err(ProfileError(format!(
                "a chunk is {chunk_packet} bytes but the {} profile's payload limit is {} bytes",
                self.name, self.max_payload
            )));
        }
        if reply_topic.len() > self.max_topic_len {
            return Err(ProfileError(format!(
                "reply topics such as {reply_topic:?} are {} bytes but the {} profile allows {} (shorten --topic-prefix or the board string)",
                reply_topic.len(),
                self.name,
                self.max_topic_len
            )));
        }
        if let Some(max) = self.max_topic_levels {
            let levels = reply_topic.split('/').count();
            if levels > max {
                return Err(ProfileError(format!(
                    "reply topics such as {reply_topic:?} have {levels} levels but the {} profile allows {max} (use a --topic-prefix without '/')",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// A configuration the broker would refuse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(String);

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if let Some(r) = self.publish_rate {
            write!(f, ", {r} PUBLISH/s")?;
        }
        if let Some(b) = self.bytes_rate {
            write!(f, ", {} KiB/s", b / 1024)?;
        }
        write!(
            f,
            " per connection; {} queued per device, paced to {} KiB/s after {} chunks",
            self.queue_depth,
            self.device_rate / 1024,
            self.burst()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_is_chosen_for_its_endpoints_and_refuses_deep_prefixes() {
        assert_eq!(
            Profile::for_host("a1b2c3-ats.iot.eu-west-1.amazonaws.com").name,
            "aws"
        );
        assert_eq!(Profile::for_host("192.168.0.10").name, "generic");
        let aws = Profile::AWS;
        let id = "otactl-publish-1";
        assert!(aws
            .check(4128, "MyUniqueTopic/APP_X/OTAImage/65535", id)
            .is_ok());
        let deep = "a/b/c/d/e/f/APP_X/OTAImage/65535";
        let e = aws.check(4128, deep, id).unwrap_err().to_string();
        assert!(e.contains("9 levels") && e.contains("allows 8"), "{e}");
        let long = format!("{}/APP_X/OTAImage/65535", "p".repeat(250));
        let e = aws.check(4128, &long, id).unwrap_err().to_string();
        assert!(e.contains("256"), "{e}");
        assert!(Profile::MOSQUITTO.check(4128, deep, id).is_ok());
        let e = aws
            .check(4128, "a/b", &"c".repeat(129))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--client-id") && e.contains("128"), "{e}");
    }
}
