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

mod aws;
mod cert_to_c;
mod certs;
mod completions;
mod demo;
mod info;
mod init;
mod job;
mod keys;
mod progress;
mod prompt;
mod publish;
mod sign;
mod status;
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
    /// Config keys that match no option (filled by [`parse`]).
    #[arg(skip)]
    pub config_warnings: Vec<String>,
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
    #[command(about = "Generate an ECDSA P-256 signing key (PKCS#8 PEM, mode 0600)")]
    Keygen(keys::KeygenCmd),
    #[command(about = "Print the public half of a signing key (pem, raw, lang-c, lang-rust)")]
    Getpub(keys::GetpubCmd),
    #[command(about = "Print the SHA-256 of the public key (the image's KEYHASH)")]
    Getpubhash(keys::GetpubhashCmd),
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
    #[command(
        about = "Show devices, versions, results and blocked versions from a publisher's state file"
    )]
    Status(status::Cmd),
    #[command(
        about = "Run the whole update story on this machine: broker, publisher and a simulated board"
    )]
    Demo(demo::Cmd),
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
}

impl Ctx {
    /// Whether progress bars and colours may be drawn on stderr.
    pub fn fancy(&self) -> bool {
        use std::io::IsTerminal;
        !self.quiet && std::io::stderr().is_terminal()
    }
}

/// Parses the command line with `otactl.toml` and `OTACTL_*` defaults layered underneath.
///
/// Config keys that match no option end up in [`Cli::config_warnings`] (printed by [`run`] once
/// logging is set up).
///
/// # Errors
/// clap errors (exit through `clap::Error::exit`), or an unreadable config file. `otactl init`
/// tolerates a missing or broken config file: it is the command that writes one.
pub fn parse<I, T>(args: I) -> Result<(Cli, ConfigFile), ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let config = match ConfigFile::discover(explicit_config(&args).as_deref()) {
        Ok(config) => config,
        Err(_) if subcommand_name(&args).as_deref() == Some("init") => ConfigFile::default(),
        Err(e) => return Err(ParseError::Config(e)),
    };
    let mut known = KnownOptions::default();
    let cmd =
        layer(Cli::command(), &config, &mut Vec::new(), &mut known).map_err(ParseError::Config)?;
    let matches = cmd.try_get_matches_from(args).map_err(ParseError::Clap)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    let file = config
        .path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    cli.config_warnings = config
        .unknown_keys(&|path, key| known.contains(path, key))
        .into_iter()
        .map(|k| format!("{file}: `{k}` matches no option; it is ignored"))
        .collect();
    Ok((cli, config))
}

/// Why the command line could not be parsed.
pub enum ParseError {
    /// Usage error, `--help` or `--version`.
    Clap(clap::Error),
    /// The config file is missing or invalid.
    Config(anyhow::Error),
}

/// `--config FILE` / `--config=FILE` before clap runs (it decides the defaults clap sees).
fn explicit_config(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// The subcommand named on the command line, found without defaults or validation.
fn subcommand_name(args: &[OsString]) -> Option<String> {
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?
        .subcommand_name()
        .map(str::to_owned)
}

/// The environment variable for a long option: `OTACTL_` + upper snake case.
pub fn env_name(long: &str) -> String {
    format!("OTACTL_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// Which long options exist where (for reporting config keys that match nothing).
#[derive(Default)]
struct KnownOptions {
    /// `"certs.gen"`-style subcommand path → long names.
    by_path: std::collections::HashMap<String, std::collections::HashSet<String>>,
    /// Long names of any subcommand (for `[defaults]`).
    anywhere: std::collections::HashSet<String>,
}

impl KnownOptions {
    fn add(&mut self, path: &[String], long: &str) {
        self.by_path
            .entry(path.join("."))
            .or_default()
            .insert(long.to_owned());
        if !path.is_empty() {
            self.anywhere.insert(long.to_owned());
        }
    }

    fn contains(&self, path: &[&str], key: &str) -> bool {
        if path == ["*"] {
            return self.anywhere.contains(key);
        }
        self.by_path
            .get(&path.join("."))
            .is_some_and(|s| s.contains(key))
    }
}

/// Options that only ever come from the command line: `--force` (an environment variable or a
/// config line must never make otactl overwrite keys), `certs gen --new-ca` (nor replace the CA
/// every board trusts) and `cert-to-c --serial` (one value for every board would give them all
/// the same identity).
const FLAG_ONLY: [&str; 3] = ["force", "new-ca", "serial"];

/// The long name of an option that takes its default from the environment and the file: every
/// long option except help/version flags, [`FLAG_ONLY`] and the global
/// `--config`/`--non-interactive`.
fn layered_long(a: &clap::Arg) -> Option<&str> {
    let skip = matches!(
        a.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    );
    a.get_long()
        .filter(|l| !skip && !a.is_global_set() && !FLAG_ONLY.contains(l))
}

/// Adds `OTACTL_*` env names and config-file defaults to every long option, recursively.
fn layer(
    mut cmd: clap::Command,
    config: &ConfigFile,
    path: &mut Vec<String>,
    known: &mut KnownOptions,
) -> Result<clap::Command> {
    let ids: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| Some((a.get_id().to_string(), layered_long(a)?.to_owned())))
        .collect();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    // `init` writes the file: its answers come from flags, the environment or prompts.
    let from_file = p.first() != Some(&"init");
    for (id, long) in ids {
        let values = if from_file {
            known.add(path, &long);
            config.lookup(&p, &long)?
        } else {
            None
        };
        cmd = cmd.mut_arg(id, |a| layer_arg(a, &long, values, config));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        path.push(name.clone());
        let sub = cmd.find_subcommand(&name).cloned().expect("listed above");
        let sub = layer(sub, config, path, known)?;
        path.pop();
        cmd = cmd.mut_subcommand(&name, |_| sub);
    }
    Ok(cmd)
}

/// One option: its `OTACTL_*` variable, boolish flags (`OTACTL_PAD=1` as well as `true`), the
/// file default (paths resolved against the file's directory).
///
/// The variable is applied as a default that outranks the file's, not with clap's `env`: clap
/// treats an environment value like a flag, so an exported `OTACTL_KEY` would collide with
/// `sign --fix-sig` (which conflicts with `--key`) instead of simply losing to the flag.
fn layer_arg(
    mut a: clap::Arg,
    long: &str,
    values: Option<Vec<String>>,
    config: &ConfigFile,
) -> clap::Arg {
    use clap::ValueHint;
    if a.get_env().is_some() {
        return a; // the subcommand chose its own variable
    }
    if matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        a = a.value_parser(clap::builder::BoolishValueParser::new());
    }
    let var = env_name(long);
    a = with_env_note(a, &var);
    let from_env = std::env::var_os(&var)
        .filter(|v| !v.is_empty())
        .map(|v| vec![v.to_string_lossy().into_owned()]);
    let from_file = values.map(|v| {
        let is_path = matches!(
            a.get_value_hint(),
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
        );
        if is_path {
            v.iter().map(|s| config.resolve_path(s)).collect()
        } else {
            v
        }
    });
    match from_env.or(from_file) {
        Some(v) => a.required(false).default_values(v),
        None => a,
    }
}

/// Appends `[env: OTACTL_…]` to an option's help, as clap does for its own `env`.
fn with_env_note(a: clap::Arg, var: &str) -> clap::Arg {
    let note = |h: Option<&clap::builder::StyledStr>| match h {
        Some(h) => format!("{h} [env: {var}]"),
        None => format!("[env: {var}]"),
    };
    let short = note(a.get_help());
    match a.get_long_help().map(|h| note(Some(h))) {
        Some(long) => a.help(short).long_help(long),
        None => a.help(short),
    }
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
    };
    match cli.command {
        Command::Keygen(c) => c.run(&ctx),
        Command::Getpub(c) => c.run(&ctx),
        Command::Getpubhash(c) => c.run(&ctx),
        Command::Sign(c) => c.run(&ctx),
        Command::Verify(c) => c.run(&ctx),
        Command::Info(c) => c.run(&ctx),
        Command::Certs(c) => c.run(&ctx),
        Command::CertToC(c) => c.run(&ctx),
        Command::Job(c) => c.run(&ctx),
        Command::Publish(c) => c.run(&ctx),
        Command::Status(c) => c.run(&ctx),
        Command::Demo(c) => c.run(&ctx),
        Command::Init(c) => c.run(&ctx),
        Command::Completions(c) => c.run(&ctx),
        Command::Aws(c) => c.run(&ctx),
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
        let cmd = layer(
            Cli::command(),
            &config,
            &mut Vec::new(),
            &mut KnownOptions::default(),
        )
        .unwrap();
        cmd.debug_assert();
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("topic-prefix"), "OTACTL_TOPIC_PREFIX");
    }
}
