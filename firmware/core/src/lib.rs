//! # ota-core — the device core of otactl
//!
//! Everything the device and the host tool share lives here, once, `no_std` and
//! allocation-free (build it with `--no-default-features`; only the `rsa` feature needs a global
//! allocator):
//!
//! | module | owns |
//! | --- | --- |
//! | [`image`] | MCUboot image header, TLV areas, trailer layout, hashing, signature verification and decryption |
//! | [`protocol`] | Infineon `ota-update` MQTT topics, JSON messages and the 32-byte chunk header |
//! | [`flashmap`] | slot geometry (primary, secondary, scratch, status) and its checks |
//! | [`boot`] | MCUboot-equivalent bootloader logic: swap type, swap/overwrite/revert, resume |
//! | [`agent`] | the device OTA agent: a sans-IO state machine that downloads into the secondary slot |
//!
//! The simulated flash and board and the host device application live in `ota-host`, the TLS
//! client set-up in `ota-tls`; both depend on this crate, never the reverse.
//!
//! ## Features (all additive)
//! - `std` (default): use the standard library.
//! - `serde`: parse Infineon flash-map JSON and derive serde for shared types.
//! - `p384`, `ed25519`, `rsa`: verify ECDSA P-384, Ed25519 and RSA-2048/3072 (PSS) signatures
//!   besides ECDSA P-256 (MCUboot's `MCUBOOT_SIGN_*`).
//! - `enc`: decrypt encrypted images (MCUboot's `MCUBOOT_ENC_IMAGES`).
//! - `log`: log through the `log` crate.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod fmt;

pub mod agent;
pub mod boot;
pub mod flashmap;
pub mod image;
pub mod protocol;
