//! `otactl keygen`, `getpub`, `getpubhash` (being written).

use anyhow::{bail, Result};
use clap::Args;

use super::Ctx;

/// Not available yet.
#[derive(Debug, Args)]
pub struct KeygenCmd {}
/// Not available yet.
#[derive(Debug, Args)]
pub struct GetpubCmd {}
/// Not available yet.
#[derive(Debug, Args)]
pub struct GetpubhashCmd {}

impl KeygenCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        bail!("this command is not available yet")
    }
}
impl GetpubCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        bail!("this command is not available yet")
    }
}
impl GetpubhashCmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        bail!("this command is not available yet")
    }
}
