//! # otactl
//!
//! Over-the-air firmware updates for MCUboot-based microcontrollers over MQTT: a drop-in
//! replacement for Infineon's `publisher.py`, `format_cert_key.py`, `generate_ssl_cert.sh`,
//! the imgtool fork and the hand-edited job JSON of the "OTA update using MQTT" example.
//!
//! The library holds everything the `otactl` binary does, without any terminal UI, so tests and
//! benchmarks call it directly. On-wire and on-flash formats are not defined here: they live once,
//! in the `ota-core` crate that the device also runs.
//!
//! | module | owns |
//! | --- | --- |
//! | [`fsutil`] | atomic file writes, private-key files (0600), refuse-to-overwrite |
//! | [`config`] | `otactl.toml` |
//! | [`sign`] | signing keys (ECDSA P-256/P-384, Ed25519, RSA-2048/3072): generate, load (PEM), getpub encodings, signing |
//! | [`assemble`] | assembling a signed MCUboot image (imgtool `sign`), Intel HEX in/out, flashmap-derived options |
//! | [`certs`] | TLS material (CA, broker, publisher, device certificates), mosquitto config, C headers, whether a set belongs together |
//! | [`aws`] | AWS IoT Core: its broker limits, least-privilege policy documents |
//! | [`mqtt`] | the one place that builds MQTT options and rustls client configs |
//! | [`publish`] | the update server |
//! | [`device`] | `otactl device`: the firmware's OTA task in-process as stand-in boards against the user's broker |
#![forbid(unsafe_code)]

pub mod assemble;
pub mod aws;
pub mod certs;
pub mod config;
pub mod device;
pub mod fsutil;
pub mod mqtt;
pub mod publish;
pub mod sign;

pub use ota_core::image::KeyType;

/// A "no" answer: verification failed, a device rejected the update. The CLI exits with 1 for it
/// (2 for every other error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);
