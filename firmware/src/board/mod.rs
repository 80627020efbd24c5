//! The simulated board (host only): file-backed NOR flash laid out by a flash map, the
//! bootloader of [`crate::boot`] on every reset, a watchdog, and "boot" = run the application
//! executable found in the primary slot as a child process ([`launch`]).
//!
//! Everything it and the application print forms the board transcript ([`transcript`]).

pub mod launch;
pub mod transcript;
