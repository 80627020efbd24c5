//! `otactl completions SHELL`.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Ctx};

/// Print a completion script for SHELL to stdout.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl completions bash > ~/.local/share/bash-completion/completions/otactl\n  otactl completions zsh > ~/.zfunc/_otactl\n  otactl completions fish > ~/.config/fish/completions/otactl.fish"
)]
pub struct Cmd {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        use std::io::Write;
        let mut cmd = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "otactl", &mut script);
        let mut out = std::io::stdout().lock();
        match out.write_all(&script).and_then(|()| out.flush()) {
            // `otactl completions bash | head`: the reader left; that is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.context("cannot write the completion script to stdout"),
        }
    }
}
