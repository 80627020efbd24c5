//! `otactl completions SHELL`.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Ctx};

/// Print a completion script for SHELL to stdout.
///
/// Examples:
///
///   otactl completions bash > ~/.local/share/bash-completion/completions/otactl
///   otactl completions zsh > ~/.zfunc/_otactl
///   otactl completions fish > ~/.config/fish/completions/otactl.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
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
