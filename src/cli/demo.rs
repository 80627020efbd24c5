//! `otactl demo`: run the whole update story on this machine.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use otactl::demo::{self, build::Builder, DemoConfig, Note};

use super::Ctx;

/// Build the device application three times (1.0.0, 1.1.0 with a faster LED, a bad 1.2.0),
/// sign them, start an embedded broker, the publisher and a simulated board on 1.0.0, and
/// narrate: no update at 1.0.0 → update to 1.1.0 → bad 1.2.0 reverted by the watchdog and
/// MCUboot → 1.2.0 not offered again. Exits 0 only when every step was observed.
///
/// Needs cargo and this source tree (it builds the application the way the example's
/// Makefile does).
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  cargo run --release -- demo\n  otactl demo --dir demo-run --show-build"
)]
pub struct Cmd {
    /// Keep keys, images, flash and state in this directory (default: a temporary one).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The board's flash map (default: flashmap/board-host_swap.json of the source tree).
    #[arg(long, value_name = "FILE")]
    flashmap: Option<PathBuf>,
    /// Port of the embedded broker (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Show cargo's build output.
    #[arg(long)]
    show_build: bool,
}

/// Prints a note. Write errors are ignored: if the reader goes away (`otactl demo | head`), the
/// story still runs to its end, so the board and broker it started are stopped, not orphaned.
fn print(note: &Note) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = match note {
        Note::Step(s) => writeln!(out, "\n==> {s}"),
        Note::Setup(s) => writeln!(out, "    {s}"),
        Note::Board(s) => writeln!(out, "    board     | {s}"),
        Note::Publisher(s) => writeln!(out, "    publisher | {s}"),
        Note::Observed(s) => writeln!(out, "    ✓ {s}"),
    };
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let mut builder = Builder::this_workspace();
        builder.verbose = self.show_build;
        let cfg = DemoConfig {
            dir: self.dir,
            flashmap: self.flashmap,
            builder,
            port: self.port,
        };
        let quiet = ctx.quiet;
        demo::run(&cfg, move |n| {
            if !quiet || matches!(n, Note::Step(_)) {
                print(&n);
            }
        })?;
        outln!("\ndemo complete: every step of the update story was observed");
        Ok(())
    }
}
