//! Option layering: flag > `OTACTL_*` environment variable > `otactl.toml`, applied to the clap
//! command as defaults, remembering where each default came from so that messages about a value
//! name its source instead of a flag nobody typed.
//!
//! - A value from the environment or the file is checked with the option's own parser before it
//!   becomes a default; a bad one becomes an error naming the variable or the file and key, raised
//!   only when the flag does not override it.
//! - Options that change what goes into a signed image (`sign`'s options except the key and the
//!   flash map) are never taken from the environment: a leftover `OTACTL_VERSION` must not set the
//!   version an image is signed with. Such a variable is reported as ignored.
//! - [`Layering::origins`] lists, for the command that runs, the options whose value came from
//!   the environment or the file; errors mentioning them get a note (see `cli::run`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use anyhow::{anyhow, Result};
use clap::builder::Resettable;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};
use otactl::config::ConfigFile;

/// The environment variable for a long option: `OTACTL_` + upper snake case.
pub fn env_name(long: &str) -> String {
    format!("OTACTL_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// Options that only ever come from the command line: `--force` (an environment variable or a
/// config line must never make otactl overwrite keys), `certs gen --new-ca` (nor replace the
/// CA every board trusts), `cert-to-c --serial` (one value for every board would give them all
/// the same identity) and `status --watch` (a command that never ends).
const FLAG_ONLY: [&str; 4] = ["force", "new-ca", "serial", "watch"];

/// `sign` options that may come from the environment: which key and flash map a project uses.
/// Every other `sign` option changes the image's bytes and comes from a flag or `otactl.toml`.
const SIGN_FROM_ENV: [&str; 3] = ["key", "flashmap", "platform"];

/// Settings a command shares with another command's table in `otactl.toml`: `device` connects
/// to the broker `[publish]` names, with its CA, and checks downloads with the key and flash map
/// the project signs with. Its client certificate and key are its own (`[device]`), never the
/// publisher's. Looked up after the command's own table and before `[defaults]`.
const SHARED: [(&str, &str, &[&str]); 2] = [
    (
        "device",
        "publish",
        &[
            "broker",
            "ca",
            "tls-server-name",
            "insecure",
            "topic-prefix",
            "board",
            "key",
        ],
    ),
    ("device", "sign", &["flashmap", "key"]),
];

/// The value of `long` for the command at `path` from `config`: its own table, a table it shares
/// the option with ([`SHARED`]), then `[defaults]`.
fn lookup(config: &ConfigFile, path: &[&str], long: &str) -> Result<Option<(String, Vec<String>)>> {
    let own = config.lookup_in(path, long)?;
    if own.as_ref().is_some_and(|(table, _)| table != "defaults") {
        return Ok(own);
    }
    for (cmd, table, keys) in SHARED {
        if path == [cmd] && keys.contains(&long) {
            if let Some(found) = config
                .lookup_in(&[table], long)?
                .filter(|(t, _)| t != "defaults")
            {
                return Ok(Some(found));
            }
        }
    }
    Ok(own)
}

/// Where a value that was not typed came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `OTACTL_<OPTION>`.
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
    },
    /// `otactl.toml`.
    File {
        /// The file as found.
        file: String,
        /// `[table] key`.
        key: String,
        /// The value(s) as written (before path resolution).
        value: String,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env { var, value } => write!(f, "the environment ({var}={})", redact(value)),
            Self::File { file, key, value } => write!(f, "{file} ({key} = {})", redact(value)),
        }
    }
}

/// `value` with the password of a `SCHEME://USER:PASSWORD@…` address replaced by `***`.
fn redact(value: &str) -> String {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_owned();
    };
    let rest = &value[start..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &value[..start], &rest[..colon], &rest[at..]),
            None => value.to_owned(),
        },
        None => value.to_owned(),
    }
}

/// One option that got a default from the environment or the file.
struct Layered {
    /// Subcommand path, `"certs.gen"` style (empty for top-level options).
    path: String,
    id: String,
    long: String,
    short: Option<char>,
    origin: Origin,
    /// Why the value is not acceptable (then it was not applied).
    invalid: Option<String>,
}

/// What [`layer`] learnt about the options.
#[derive(Default)]
pub struct Layering {
    /// `"certs.gen"`-style subcommand path → long names.
    by_path: HashMap<String, HashSet<String>>,
    /// Long names of any subcommand (for `[defaults]`).
    anywhere: HashSet<String>,
    layered: Vec<Layered>,
    /// (path, variable) set in the environment but not used (see [`SIGN_FROM_ENV`]).
    ignored_env: Vec<(String, String)>,
}

impl Layering {
    fn add_known(&mut self, path: &[String], long: &str) {
        self.by_path
            .entry(path.join("."))
            .or_default()
            .insert(long.to_owned());
        if !path.is_empty() {
            self.anywhere.insert(long.to_owned());
        }
    }

    /// Whether the subcommand at `path` (`["*"]`: any) has the long option `key`.
    pub fn knows(&self, path: &[&str], key: &str) -> bool {
        if path == ["*"] {
            return self.anywhere.contains(key);
        }
        self.by_path
            .get(&path.join("."))
            .is_some_and(|s| s.contains(key))
    }

    /// Variables that were set but ignored by the command at `path`, as warnings.
    pub fn ignored_env(&self, path: &str) -> Vec<String> {
        self.ignored_env
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, var)| {
                format!(
                    "{var} is ignored: what goes into a signed image comes only from the \
                     command line or otactl.toml (unset it: unset {var})"
                )
            })
            .collect()
    }

    /// After a successful parse: the error for a bad environment or file value that the command
    /// line did not override.
    pub fn check(&self, chain: &[(String, &ArgMatches)]) -> Result<()> {
        for (path, m) in chain {
            for l in self.layered.iter().filter(|l| &l.path == path) {
                if let Some(why) = &l.invalid {
                    if m.value_source(&l.id) != Some(ValueSource::CommandLine) {
                        return Err(invalid(l, why));
                    }
                }
            }
        }
        Ok(())
    }

    /// When clap refused the command line: the error for a bad environment or file value of the
    /// command at `path`, if the option was not typed (the likely cause of clap's complaint).
    pub fn explain(&self, path: &str, args: &[OsString]) -> Option<anyhow::Error> {
        self.layered
            .iter()
            .filter(|l| l.path == path)
            .find_map(|l| match &l.invalid {
                Some(why) if !typed(l, args) => Some(invalid(l, why)),
                _ => None,
            })
    }

    /// The options of the running command (every level of `chain`) whose value came from the
    /// environment or the file: long name → origin.
    pub fn origins(&self, chain: &[(String, &ArgMatches)]) -> Vec<(String, Origin)> {
        let mut out = Vec::new();
        for (path, m) in chain {
            for l in self.layered.iter().filter(|l| &l.path == path) {
                if l.invalid.is_none() && m.value_source(&l.id) == Some(ValueSource::DefaultValue) {
                    out.push((l.long.clone(), l.origin.clone()));
                }
            }
        }
        out
    }
}

fn invalid(l: &Layered, why: &str) -> anyhow::Error {
    anyhow!("{}: invalid --{}: {why}", l.origin, l.long)
}

/// Whether the option appears on the command line (`--long`, `--long=…`, `-s…`).
fn typed(l: &Layered, args: &[OsString]) -> bool {
    args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        let long = a.strip_prefix("--").is_some_and(|rest| {
            rest == l.long
                || rest
                    .strip_prefix(l.long.as_str())
                    .is_some_and(|r| r.starts_with('='))
        });
        let short = l.short.is_some_and(|s| {
            !a.starts_with("--") && a.strip_prefix('-').is_some_and(|r| r.starts_with(s))
        });
        long || short
    })
}

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
///
/// # Errors
/// A config value that cannot be option text (a table).
pub fn layer(
    mut cmd: clap::Command,
    config: &ConfigFile,
    path: &mut Vec<String>,
    out: &mut Layering,
) -> Result<clap::Command> {
    let args: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| layered_long(a).is_some())
        .cloned()
        .collect();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    // `init` writes the file: its answers come from flags, the environment or prompts.
    let from_file = p.first() != Some(&"init");
    for a in args {
        let long = layered_long(&a).expect("filtered above").to_owned();
        let values = if from_file {
            out.add_known(path, &long);
            lookup(config, &p, &long)?
        } else {
            None
        };
        let env_ok = p != ["sign"] || SIGN_FROM_ENV.contains(&long.as_str());
        let id = a.get_id().to_string();
        let short = a.get_short();
        if !env_ok && std::env::var_os(env_name(&long)).is_some_and(|v| !v.is_empty()) {
            out.ignored_env.push((path.join("."), env_name(&long)));
        }
        let (mut a, layered) = layer_arg(a, &long, values, config, env_ok);
        if let Some((origin, values)) = layered {
            let invalid = values.iter().find_map(|v| check_value(&a, &long, v).err());
            if invalid.is_none() {
                a = a.required(false).default_values(values);
            }
            out.layered.push(Layered {
                path: path.join("."),
                id: id.clone(),
                long,
                short,
                origin,
                invalid,
            });
        }
        cmd = cmd.mut_arg(&id, |_| a);
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        path.push(name.clone());
        let sub = cmd.find_subcommand(&name).cloned().expect("listed above");
        let sub = layer(sub, config, path, out)?;
        path.pop();
        cmd = cmd.mut_subcommand(&name, |_| sub);
    }
    Ok(cmd)
}

/// One option: its `OTACTL_*` variable (unless `env_ok` is false), boolish flags (`OTACTL_PAD=1`
/// as well as `true`), and the value to use as its default with where it came from (paths in the
/// file resolved against the file's directory).
///
/// The variable is applied as a default that outranks the file's, not with clap's `env`: clap
/// treats an environment value like a flag, so an exported `OTACTL_KEY` would collide with
/// `sign --fix-sig` (which conflicts with `--key`) instead of simply losing to the flag.
fn layer_arg(
    mut a: clap::Arg,
    long: &str,
    values: Option<(String, Vec<String>)>,
    config: &ConfigFile,
    env_ok: bool,
) -> (clap::Arg, Option<(Origin, Vec<String>)>) {
    use clap::ValueHint;
    if a.get_env().is_some() {
        return (a, None); // the subcommand chose its own variable
    }
    if matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        a = a.value_parser(clap::builder::BoolishValueParser::new());
    }
    let var = env_name(long);
    let from_env = if env_ok {
        a = with_env_note(a, &var);
        std::env::var(&var).ok().filter(|v| !v.is_empty()).map(|v| {
            let origin = Origin::Env {
                var: var.clone(),
                value: v.clone(),
            };
            (origin, vec![v])
        })
    } else {
        None
    };
    let from_file = values.map(|(table, v)| {
        let table = if table.is_empty() {
            "top level:".to_owned()
        } else {
            format!("[{table}]")
        };
        let origin = Origin::File {
            file: config
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            key: format!("{table} {long}"),
            value: match v.as_slice() {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            },
        };
        let is_path = matches!(
            a.get_value_hint(),
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
        );
        let v = if is_path {
            v.iter().map(|s| config.resolve_path(s)).collect()
        } else {
            v
        };
        (origin, v)
    });
    (a, from_env.or(from_file))
}

/// Runs the option's own value parser on `value` (alone, without the other options).
fn check_value(a: &clap::Arg, long: &str, value: &str) -> Result<(), String> {
    let probe = a
        .clone()
        .required(false)
        .global(false)
        .short(None)
        .conflicts_with(Resettable::<clap::Id>::Reset)
        .requires(Resettable::<clap::Id>::Reset)
        .action(ArgAction::Set)
        .num_args(1)
        .default_values(Vec::<String>::new());
    let cmd = clap::Command::new("otactl")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(probe);
    match cmd.try_get_matches_from([format!("--{long}={value}")]) {
        Ok(_) => Ok(()),
        Err(e) => Err(reason(&e)),
    }
}

/// What is wrong with a value, from clap's error (without its `error:` and usage lines).
fn reason(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(ContextValue::Strings(v)) = e.get(ContextKind::ValidValue) {
        return format!("possible values: {}", v.join(", "));
    }
    if let Some(src) = std::error::Error::source(e) {
        return src.to_string();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_an_address_is_never_shown() {
        assert_eq!(
            redact("postgres://ota:s3cret@db:5432/fleet"),
            "postgres://ota:***@db:5432/fleet"
        );
        assert_eq!(redact("postgres://ota@db/fleet"), "postgres://ota@db/fleet");
        assert_eq!(redact("mqtt://host:1883"), "mqtt://host:1883");
        assert_eq!(redact("state.db"), "state.db");
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("topic-prefix"), "OTACTL_TOPIC_PREFIX");
    }

    #[test]
    fn device_shares_the_publishers_broker_but_never_its_certificate() {
        let config = ConfigFile::parse(
            "[defaults]\nboard = \"B\"\n[publish]\nbroker = \"mqtts://h:8884\"\nca = \"ca.crt\"\n\
             cert = \"publisher.crt\"\nclient-key = \"publisher.key\"\n[sign]\nflashmap = \"m.json\"\n",
        )
        .unwrap();
        let found = |key: &str| lookup(&config, &["device"], key).unwrap();
        assert_eq!(
            found("broker"),
            Some(("publish".into(), vec!["mqtts://h:8884".into()]))
        );
        assert_eq!(found("ca"), Some(("publish".into(), vec!["ca.crt".into()])));
        assert_eq!(
            found("flashmap"),
            Some(("sign".into(), vec!["m.json".into()]))
        );
        assert_eq!(found("board"), Some(("defaults".into(), vec!["B".into()])));
        assert_eq!(found("cert"), None);
        assert_eq!(found("client-key"), None);
        // Other commands keep their own tables only.
        assert_eq!(lookup(&config, &["job"], "broker").unwrap(), None);
    }

    #[test]
    fn values_are_checked_with_the_options_parser() {
        let align = clap::Arg::new("align")
            .long("align")
            .value_parser(["1", "2", "4", "8"]);
        assert!(check_value(&align, "align", "8").is_ok());
        let e = check_value(&align, "align", "3").unwrap_err();
        assert!(e.contains("1, 2, 4, 8"), "{e}");
        let n = clap::Arg::new("n")
            .long("n")
            .value_parser(clap::value_parser!(u32).range(1..));
        let e = check_value(&n, "n", "0").unwrap_err();
        assert!(e.contains("0 is not in 1.."), "{e}");
        let flag = clap::Arg::new("pad")
            .long("pad")
            .action(ArgAction::SetTrue)
            .value_parser(clap::builder::BoolishValueParser::new());
        assert!(check_value(&flag, "pad", "yes").is_ok());
        assert!(check_value(&flag, "pad", "maybe").is_err());
    }
}
