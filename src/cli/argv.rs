//! The command line around clap: what it names before clap runs (`--config`, the subcommand
//! path), the flags every subcommand takes (`-q`/`-v` after the subcommand too), and what the
//! parsed matches say across levels.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory};

/// `--config FILE` / `--config=FILE` before clap runs (it decides the defaults clap sees).
pub fn explicit_config(args: &[OsString]) -> Option<PathBuf> {
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

/// The subcommands named on the command line (`["certs", "gen"]`), found without defaults or
/// validation; `otactl help certs gen` names the same path.
pub fn subcommand_path(args: &[OsString]) -> Vec<String> {
    // `otactl [--config FILE] help certs gen`: the words after `help`.
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(w) = words.next() {
        if w == "--config" {
            words.next();
        } else if !w.starts_with('-') {
            if w == "help" {
                return words
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| w.into_owned())
                    .collect();
            }
            break;
        }
    }
    let args: Vec<&OsString> = args
        .iter()
        .filter(|a| !matches!(a.to_str(), Some("-h" | "--help")))
        .collect();
    let Ok(m) = output_flags(super::Cli::command(), true)
        .ignore_errors(true)
        .try_get_matches_from(&args)
    else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut cur = &m;
    while let Some((name, sub)) = cur.subcommand() {
        path.push(name.to_owned());
        cur = sub;
    }
    path
}

/// The matched command and its subcommands, each with its `"certs.gen"`-style path.
pub fn invoked(m: &clap::ArgMatches) -> Vec<(String, &clap::ArgMatches)> {
    let mut out = vec![(String::new(), m)];
    let mut path: Vec<&str> = Vec::new();
    let mut cur = m;
    while let Some((name, sub)) = cur.subcommand() {
        path.push(name);
        out.push((path.join("."), sub));
        cur = sub;
    }
    out
}

/// `-q` and the `-v` count from every level of the command line (`otactl publish -v` as well as
/// `otactl -v publish`).
pub fn quiet_verbose(chain: &[(String, &clap::ArgMatches)]) -> (bool, u8) {
    let mut quiet = false;
    let mut verbose = 0u8;
    for (_, m) in chain {
        quiet |= matches!(m.try_get_one::<bool>("quiet"), Ok(Some(true)));
        if let Ok(Some(v)) = m.try_get_one::<u8>("verbose") {
            verbose = verbose.saturating_add(*v);
        }
    }
    (quiet, verbose)
}

/// `-q/--quiet` and `-v/--verbose` on every subcommand too, so they work after it. A short (or
/// long) name a subcommand already uses for its own option is left out there (`sign -v` is the
/// image version; `otactl sign --verbose` still works).
pub fn output_flags(mut cmd: clap::Command, top: bool) -> clap::Command {
    if !top {
        let taken = |c: char| cmd.get_arguments().any(|a| a.get_short() == Some(c));
        let taken_long = |l: &str| cmd.get_arguments().any(|a| a.get_long() == Some(l));
        let mut quiet = clap::Arg::new("quiet")
            .action(ArgAction::SetTrue)
            .help("Print only errors")
            .conflicts_with("verbose");
        let mut verbose = clap::Arg::new("verbose")
            .action(ArgAction::Count)
            .help("Print more (repeat for more detail)");
        if !taken('q') {
            quiet = quiet.short('q');
        }
        if !taken_long("quiet") {
            quiet = quiet.long("quiet");
        }
        if !taken('v') {
            verbose = verbose.short('v');
        }
        if !taken_long("verbose") {
            verbose = verbose.long("verbose");
        }
        let has = |a: &clap::Arg| a.get_short().is_some() || a.get_long().is_some();
        if has(&quiet) && has(&verbose) && !cmd.get_arguments().any(|a| a.get_id() == "quiet") {
            cmd = cmd.arg(quiet).arg(verbose);
        }
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let sub = cmd.find_subcommand(&name).cloned().expect("listed above");
        let sub = output_flags(sub, false);
        cmd = cmd.mut_subcommand(&name, |_| sub);
    }
    cmd
}
