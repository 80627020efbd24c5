//! # firmware — the device side of otactl
//!
//! Everything the device and the host tool share lives here, once:
//!
//! | module | owns |
//! | --- | --- |
//! | [`image`] | MCUboot image header, TLV areas, trailer layout, hashing and signature verification |
//! | [`protocol`] | Infineon `ota-update` MQTT topics, JSON messages and the 32-byte chunk header |
//! | [`flashmap`] | slot geometry (primary, secondary, scratch, status) and its checks |
//! | [`boot`] | MCUboot-equivalent bootloader logic: swap type, swap/overwrite/revert, resume |
//! | [`agent`] | the device OTA agent: a sans-IO state machine that downloads into the secondary slot |
//! | `sim` | (feature `sim`) `SimFlash`, a NOR flash with power-cut injection and optional file backing, and `SimDevice`, a board's flashes + boot |
//! | `pem`, `tls` | (features `pem`, `tls`, host only) PEM certificates and keys; the one rustls client config of otactl and the device application |
//! | `app` | (feature `host`) the device application: LED task + OTA task over rumqttc/rustls (`otactl-devapp`) |
//! | `board` | (feature `host`) the simulated board: bootloader, watchdog, resets, transcript (`otactl-simboard`) |
//!
//! The core is `no_std` and allocation-free; build it with `--no-default-features`. Only the
//! `rsa` feature (RSA signature verification) needs a global allocator.
//!
//! ## Features
//! - `std` (default): use the standard library.
//! - `serde`: parse Infineon flash-map JSON and derive serde for shared types.
//! - `p384`, `ed25519`, `rsa`: verify ECDSA P-384, Ed25519 and RSA-2048/3072 (PSS) signatures
//!   besides ECDSA P-256 (MCUboot's `MCUBOOT_SIGN_*`); `sim` turns all three on.
//! - `sim`: the simulated flash and board (host only).
//! - `pem`: read certificates and private keys from PEM text (host only).
//! - `tls`: build the rustls client config for MQTT over TLS (host only; otactl uses it too).
//! - `host`: the simulated board and the host device application, MQTT over rumqttc + rustls
//!   (their executables, `otactl-simboard` and `otactl-devapp`, are built by the `otactl` package).
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
#[cfg(feature = "pem")]
pub mod pem;
pub mod protocol;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "tls")]
pub mod tls;

#[cfg(feature = "host")]
pub mod app;
#[cfg(feature = "host")]
pub mod board;
