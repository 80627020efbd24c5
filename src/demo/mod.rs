//! `otactl demo`: the whole update story on this machine — broker, publisher, and a simulated
//! board running the real device application — narrated step by step.
//!
//! | module | owns |
//! | --- | --- |
//! | [`build`] | building the device application (`APP_VERSION`, `BLINKY_DELAY_MS`, `test-revert`) |
//! | [`board`] | running `simboard` and following its transcript |

pub mod board;
pub mod build;
