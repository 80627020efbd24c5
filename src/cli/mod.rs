//! The command line: clap definitions, option layering (flag > `OTACTL_*` env > `otactl.toml`),
//! and dispatch. Only this module touches clap, indicatif and dialoguer.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use otactl::config::ConfigFile;

/// `println!` for command output. When the reader has gone (`otactl info --json x | head -1`)
/// the process ends quietly with success, as a C tool killed by SIGPIPE would, instead of
/// panicking; any other failure to write stdout ends it with an error. Only for output written
/// when nothing needs cleaning up: the process ends without running destructors (the publisher's
/// and the demo's event printers ignore write errors instead).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout_line(::std::format_args!($($arg)*))
    };
}

/// Writes one line to stdout; see [`outln!`].
pub(crate) fn stdout_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        exit_on_stdout_error(&e);
    }
}

/// Ends the process after a failed write to stdout: quietly (success) when the reader left.
pub(crate) fn exit_on_stdout_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(2);
}

mod argv;
mod aws;
mod board;
mod cert_to_c;
mod certs;
mod completions;
mod demo;
mod device;
mod help;
mod info;
mod init;
mod job;
mod keys;
mod layer;
mod progress;
mod prompt;
mod publish;
mod sign;
mod status;
mod tls;
mod verify;

/// Over-the-air firmware updates for MCUboot-based microcontrollers over MQTT.
///
/// Signs imgtool-compatible MCUboot images, makes TLS material for the broker and devices, and
/// serves updates to unmodified Infineon `ota-update` devices.
///
/// Every option can also come from an `OTACTL_<OPTION>` environment variable (e.g.
/// `OTACTL_BROKER`) or from `otactl.toml` (see `otactl init`); flags win over the environment,
/// which wins over the file. `--force` only ever comes from the command line.
///
/// Exit codes: 0 success, 1 a "no" answer (verification failed, update rejected), 2 usage or
/// environment error.
#[derive(Debug, Parser)]
#[command(
    name = "otactl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more (repeat for more detail).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
    /// Config keys that match no option, variables that are ignored (filled by [`parse`]).
    #[arg(skip)]
    pub config_warnings: Vec<String>,
    /// Options of the running command whose value came from the environment or the config file
    /// (filled by [`parse`]).
    #[arg(skip)]
    pub origins: Vec<(String, layer::Origin)>,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Read defaults from this file instead of ./otactl.toml (also OTACTL_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Never prompt: a missing answer is an error naming the flag to pass (also
    /// OTACTL_NON_INTERACTIVE=1; implied when stdin is not a terminal).
    #[arg(long, global = true, env = "OTACTL_NON_INTERACTIVE", value_parser = clap::builder::BoolishValueParser::new())]
    pub non_interactive: bool,
}

/// The subcommands. Each one-line `about` here is the summary in `otactl --help`; the full text
/// of `otactl SUBCOMMAND --help` (description and example) is the doc comment of the subcommand's
/// `Cmd` struct. (A doc comment here would replace that text, examples included.)
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(about = "Generate a signing or an encryption key (PKCS#8 PEM, mode 0600)")]
    Keygen(keys::KeygenCmd),
    #[command(about = "Print the public half of a key (pem, raw, lang-c, lang-rust)")]
    Getpub(keys::GetpubCmd),
    #[command(about = "Print the SHA-256 of the public key (the image's KEYHASH)")]
    Getpubhash(keys::GetpubhashCmd),
    #[command(about = "Print an encryption key's private half for the bootloader's build")]
    Getpriv(keys::GetprivCmd),
    #[command(about = "Sign an image for MCUboot, with imgtool's `sign` options")]
    Sign(sign::Cmd),
    #[command(about = "Check an image's hash, key hash and signature")]
    Verify(verify::Cmd),
    #[command(about = "Show an image's header, TLVs and trailer (like `imgtool dumpinfo`)")]
    Info(info::Cmd),
    /// Make TLS material: CA, broker, publisher and device certificates, mosquitto config.
    #[command(subcommand)]
    Certs(certs::Cmd),
    #[command(
        about = "Print PEM files as C string literals for `ota_app_config.h`, or write a header"
    )]
    CertToC(cert_to_c::Cmd),
    #[command(about = "Print the job document (\"Update Available\") for a signed image")]
    Job(job::Cmd),
    #[command(about = "Serve updates to devices over MQTT")]
    Publish(Box<publish::Cmd>),
    #[command(about = "Show a publisher's devices, results, blocked versions and history")]
    Status(status::Cmd),
    #[command(
        about = "Run the whole update story on this machine: broker, publisher and a simulated board"
    )]
    Demo(demo::Cmd),
    #[command(about = "Check a set-up without a board: stand-ins download and verify an update")]
    Device(Box<device::Cmd>),
    #[command(
        about = "Set up a project: board, flash map, broker, TLS, signing key; writes otactl.toml"
    )]
    Init(init::Cmd),
    #[command(about = "Print a shell completion script")]
    Completions(completions::Cmd),
    /// AWS IoT Core: least-privilege policies for devices and the publisher.
    #[command(subcommand)]
    Aws(aws::Cmd),
}

/// What every command gets besides its own options.
#[derive(Debug)]
pub struct Ctx {
    /// `-q`.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
    /// Never prompt (flag, `OTACTL_NON_INTERACTIVE`, or no terminal on stdin).
    pub non_interactive: bool,
    /// The loaded `otactl.toml` (empty if none).
    pub config: ConfigFile,
    /// Where the config file is or would be written (`--config`, `OTACTL_CONFIG`, or
    /// `./otactl.toml`).
    pub config_path: PathBuf,
    /// Long option name → where its value came from, for the options of this command that were
    /// not typed but taken from the environment or the config file.
    pub origins: Vec<(String, layer::Origin)>,
}

impl Ctx {
    /// Whether progress bars and colours may be drawn on stderr.
    pub fn fancy(&self) -> bool {
        use std::io::IsTerminal;
        !self.quiet && std::io::stderr().is_terminal()
    }
}

/// Parses the command line with `otactl.toml` and `OTACTL_*` defaults layered underneath
/// (see [`layer`]).
///
/// Config keys that match no option, and variables a command ignores, end up in
/// [`Cli::config_warnings`] (printed by [`run`] once logging is set up).
///
/// # Errors
/// clap errors (exit through `clap::Error::exit`), `--help` (printed by [`help`] with its
/// examples as written), an unreadable config file, or a bad value from the environment or the
/// file (naming it). `otactl init` tolerates a missing or broken config file: it is the command
/// that writes one.
pub fn parse<I, T>(args: I) -> Result<(Cli, ConfigFile), ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let config = match ConfigFile::discover(argv::explicit_config(&args).as_deref()) {
        Ok(config) => config,
        Err(_) if argv::subcommand_path(&args).first().map(String::as_str) == Some("init") => {
            ConfigFile::default()
        }
        Err(e) => return Err(ParseError::Config(e.into())),
    };
    let mut layering = layer::Layering::default();
    let cmd = layer::layer(Cli::command(), &config, &mut Vec::new(), &mut layering)
        .map_err(ParseError::Config)?;
    let mut cmd = argv::output_flags(cmd, true);
    let matches = match cmd.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return Err(help::verbatim(e, cmd, &args));
        }
        Err(e) => {
            let path = argv::subcommand_path(&args).join(".");
            return Err(match layering.explain(&path, &args) {
                Some(why) => ParseError::Config(why),
                None => ParseError::Clap(e),
            });
        }
    };
    let chain = argv::invoked(&matches);
    layering.check(&chain).map_err(ParseError::Config)?;
    let (quiet, verbose) = argv::quiet_verbose(&chain);
    if quiet && verbose > 0 {
        return Err(ParseError::Clap(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            "-q/--quiet cannot be used with -v/--verbose",
        )));
    }
    let origins = layering.origins(&chain);
    let invoked_path = chain.last().map(|(p, _)| p.clone()).unwrap_or_default();
    let mut cli = Cli::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    cli.quiet = quiet;
    cli.verbose = verbose;
    cli.origins = origins;
    let file = config
        .path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    cli.config_warnings = config
        .unknown_keys(&|path, key| layering.knows(path, key))
        .into_iter()
        .map(|k| format!("{file}: `{k}` matches no option; it is ignored"))
        .chain(layering.ignored_env(&invoked_path))
        .collect();
    Ok((cli, config))
}

/// Why the command line could not be parsed.
pub enum ParseError {
    /// Usage error, `--help` or `--version`.
    Clap(clap::Error),
    /// The config file is missing or invalid, or a value from it or the environment is.
    Config(anyhow::Error),
    /// Help text to print as it is (exit 0).
    Help(String),
}

/// Runs the chosen command.
///
/// # Errors
/// Whatever the command reports; [`otactl::Rejected`] means "no" (exit 1).
pub fn run(cli: Cli, config: ConfigFile) -> Result<()> {
    use std::io::IsTerminal;
    if !cli.quiet {
        for w in &cli.config_warnings {
            log::warn!("{w}");
        }
    }
    let ctx = Ctx {
        quiet: cli.quiet,
        verbose: cli.verbose,
        non_interactive: cli.global.non_interactive
            || !std::io::stdin().is_terminal()
            || !std::io::stderr().is_terminal(),
        config,
        config_path: ConfigFile::location(cli.global.config.as_deref()).0,
        origins: cli.origins,
    };
    let result = match cli.command {
        Command::Keygen(c) => c.run(&ctx),
        Command::Getpub(c) => c.run(&ctx),
        Command::Getpubhash(c) => c.run(&ctx),
        Command::Getpriv(c) => c.run(&ctx),
        Command::Sign(c) => c.run(&ctx),
        Command::Verify(c) => c.run(&ctx),
        Command::Info(c) => c.run(&ctx),
        Command::Certs(c) => c.run(&ctx),
        Command::CertToC(c) => c.run(&ctx),
        Command::Job(c) => c.run(&ctx),
        Command::Publish(c) => c.run(&ctx),
        Command::Status(c) => c.run(&ctx),
        Command::Demo(c) => c.run(&ctx),
        Command::Device(c) => c.run(&ctx),
        Command::Init(c) => c.run(&ctx),
        Command::Completions(c) => c.run(&ctx),
        Command::Aws(c) => c.run(&ctx),
    };
    result.map_err(|e| with_origins(e, &ctx.origins))
}

/// An error and its causes as one line, `a: b: c`, like `{:#}`, except that a cause whose text
/// the message before it already ends with is not repeated (a library error that says
/// "cannot read key k.pem: No such file…" and also carries the I/O error as its source).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.ends_with(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

/// An error that mentions options whose value was not typed gets a line per option saying where
/// the value came from ("--ca … need an mqtts:// broker URL" with `ca` in otactl.toml).
/// [`otactl::Rejected`] ("no" answers) stays as it is.
fn with_origins(e: anyhow::Error, origins: &[(String, layer::Origin)]) -> anyhow::Error {
    if e.downcast_ref::<otactl::Rejected>().is_some() {
        return e;
    }
    let text = error_text(&e);
    let mentioned = |long: &str| {
        let flag = format!("--{long}");
        text.match_indices(&flag).any(|(i, _)| {
            let next = text[i + flag.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let notes: Vec<String> = origins
        .iter()
        .filter(|(long, _)| mentioned(long))
        .map(|(long, origin)| format!("\n  --{long} was not given: it comes from {origin}"))
        .collect();
    if notes.is_empty() {
        e
    } else {
        anyhow::anyhow!("{text}{}", notes.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn layered_definition_is_consistent() {
        let config =
            ConfigFile::parse("[defaults]\nkey = \"k.pem\"\n[sign]\npad-header = true\n").unwrap();
        let cmd = layer::layer(
            Cli::command(),
            &config,
            &mut Vec::new(),
            &mut layer::Layering::default(),
        )
        .unwrap();
        argv::output_flags(cmd, true).debug_assert();
    }

    #[test]
    fn errors_name_where_an_untyped_value_came_from() {
        let origins = vec![(
            "ca".to_owned(),
            layer::Origin::File {
                file: "otactl.toml".into(),
                key: "[publish] ca".into(),
                value: "certs/ca.crt".into(),
            },
        )];
        let e = with_origins(anyhow::anyhow!("--ca/--cert need mqtts://"), &origins);
        assert_eq!(
            e.to_string(),
            "--ca/--cert need mqtts://\n  --ca was not given: it comes from otactl.toml ([publish] ca = certs/ca.crt)"
        );
        let e = with_origins(anyhow::anyhow!("--cat and --ca-file"), &origins);
        assert_eq!(e.to_string(), "--cat and --ca-file");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(otactl::sign::SignError::Read {
            path: "k.pem".into(),
            source: io,
        })
        .context("signing");
        assert_eq!(
            error_text(&e),
            "signing: cannot read key k.pem: entity not found"
        );
    }
}
