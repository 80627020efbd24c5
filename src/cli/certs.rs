//! `otactl certs` (being written).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Not available yet.
    Gen(GenCmd),
}

/// Not available yet.
#[derive(Debug, Args)]
pub struct GenCmd {}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        bail!("this command is not available yet")
    }
}
