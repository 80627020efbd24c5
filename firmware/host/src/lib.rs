//! # ota-host — the device side of otactl, on a Linux host
//!
//! What stands in for a board in the demo, in `otactl device` and in the tests:
//!
//! | module | owns |
//! | --- | --- |
//! | [`sim`] | `SimFlash`, a NOR flash with power-cut injection and optional file backing, and `SimDevice`, a board's flashes + the core's bootloader |
//! | [`app`] | the device application: LED task + OTA task over rumqttc/rustls (`otactl-devapp`) |
//! | [`board`] | the simulated board: bootloader, watchdog, resets, transcript (`otactl-simboard`) |
//!
//! Image, protocol, flash-map, bootloader and agent logic come from `ota-core` (with every
//! signature type and decryption on), TLS client set-up from `ota-tls`. The executables are
//! built by the `otactl` package, so they are installed beside `otactl`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod board;
pub mod sim;
