//! `otactl job` (being written).

use anyhow::{bail, Result};
use clap::Args;

use super::Ctx;

/// Not available yet.
#[derive(Debug, Args)]
pub struct Cmd {}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        bail!("this command is not available yet")
    }
}
