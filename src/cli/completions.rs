//! `otactl completions SHELL`.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Ctx};

/// Print a completion script for SHELL to stdout.
///
/// Example: `otactl completions bash > ~/.local/share/bash-completion/completions/otactl`
#[derive(Debug, Args)]
pub struct Cmd {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let mut cmd = Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "otactl", &mut std::io::stdout());
        Ok(())
    }
}
