//! `otactl.toml`: project defaults for every subcommand option.
//!
//! Precedence, highest first: command-line flag, `OTACTL_<OPTION>` environment variable, this
//! file. The file has one table per subcommand (nested for nested subcommands, e.g.
//! `[certs.gen]`) plus a `[defaults]` table whose keys apply to every subcommand that has an
//! option of that name. Keys are the long option names:
//!
//! ```toml
//! [defaults]
//! board = "APP_CY8CPROTO_062S2_43439"
//! key = "keys/signing.pem"
//!
//! [sign]
//! flashmap = "flashmap/psoc62_2m_ext_swap_single.json"
//!
//! [publish]
//! broker = "mqtts://127.0.0.1:8884"
//! ```
//!
//! Values may be strings, integers, booleans or arrays of those (for repeatable options).
//! Relative paths in the file are relative to the directory that holds the file (for the usual
//! `./otactl.toml` that is the directory otactl runs in), so `otactl --config ../proj/otactl.toml`
//! finds the same key and flash map as running inside `../proj`.
//!
//! Keys that match no option are reported (see [`ConfigFile::unknown_keys`]) so a typo does not
//! silently fall back to a default.

use std::path::{Path, PathBuf};

/// A config file that cannot be used, named with what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named by `--config` or `OTACTL_CONFIG` is not there.
    #[error("config file {} does not exist", .0.display())]
    Missing(PathBuf),
    /// The file cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("invalid config file {}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The TOML error (line and column).
        #[source]
        source: toml::de::Error,
    },
    /// TOML text (not from a file) that does not parse.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// An option whose value is a table or a date.
    #[error("option `{key}` in [{table}]: unsupported value {value}")]
    Unsupported {
        /// The option.
        key: String,
        /// The table it is in.
        table: String,
        /// The value as TOML.
        value: String,
    },
}

type Result<T> = std::result::Result<T, ConfigError>;

/// Default file name, looked up in the current directory.
pub const FILE_NAME: &str = "otactl.toml";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "OTACTL_CONFIG";

/// A loaded `otactl.toml`.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    /// Where it was read from (`None` when no file was found).
    pub path: Option<PathBuf>,
    table: toml::Table,
}

impl ConfigFile {
    /// Loads `explicit`, else `$OTACTL_CONFIG`, else `./otactl.toml` if it exists; an empty
    /// config when none is found. An explicitly named file must exist.
    ///
    /// # Errors
    /// A named file that is missing, or any file that is not valid TOML (named in the error).
    pub fn discover(explicit: Option<&Path>) -> Result<Self> {
        let (path, must_exist) = Self::location(explicit);
        if !path.exists() {
            if must_exist {
                return Err(ConfigError::Missing(path));
            }
            return Ok(Self::default());
        }
        Self::load(&path)
    }

    /// Where the config file is (or would be written): `explicit`, else `$OTACTL_CONFIG`, else
    /// `./otactl.toml`; the flag says whether it was named (and so must exist to be read).
    #[must_use]
    pub fn location(explicit: Option<&Path>) -> (PathBuf, bool) {
        match (explicit, std::env::var_os(ENV_CONFIG)) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), true),
            _ => (PathBuf::from(FILE_NAME), false),
        }
    }

    /// Loads a given file.
    ///
    /// # Errors
    /// I/O or TOML errors, naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table = text
            .parse::<toml::Table>()
            .map_err(|source| ConfigError::Invalid {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            table,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// TOML syntax errors.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(Self {
            path: None,
            table: text.parse::<toml::Table>()?,
        })
    }

    /// The raw table.
    #[must_use]
    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    /// The directory relative paths in this file are resolved against (`None`: the current
    /// directory).
    #[must_use]
    pub fn base_dir(&self) -> Option<&Path> {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// `value` (a path read from this file) made usable from the current directory: relative
    /// paths are joined to [`base_dir`](Self::base_dir).
    #[must_use]
    pub fn resolve_path(&self, value: &str) -> String {
        match self.base_dir() {
            // An address (`postgres://…` for `--state`) is not a path.
            Some(dir)
                if !value.is_empty()
                    && !value.contains("://")
                    && Path::new(value).is_relative() =>
            {
                dir.join(value).to_string_lossy().into_owned()
            }
            _ => value.to_owned(),
        }
    }

    /// Keys of the file that no option uses: `known(path, key)` says whether the subcommand at
    /// `path` (empty for top-level options) has a long option `key`. `[defaults]` keys must be
    /// known to at least one subcommand (`known(&["*"], key)`). Returned as `[table] key` texts.
    #[must_use]
    pub fn unknown_keys(&self, known: &dyn Fn(&[&str], &str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        walk_unknown(&self.table, &mut Vec::new(), known, &mut out);
        out
    }

    /// The value(s) for option `key` of the subcommand at `path` (e.g. `["certs", "gen"]`),
    /// falling back to `[defaults]`. Arrays give several values.
    ///
    /// # Errors
    /// A value that is a table or otherwise not representable as option text.
    pub fn lookup(&self, path: &[&str], key: &str) -> Result<Option<Vec<String>>> {
        Ok(self.lookup_in(path, key)?.map(|(_, v)| v))
    }

    /// [`lookup`](Self::lookup), also naming the table the value is in (`"sign"`,
    /// `"certs.gen"` or `"defaults"`), for messages that say where a value came from.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_in(&self, path: &[&str], key: &str) -> Result<Option<(String, Vec<String>)>> {
        let mut node = Some(&self.table);
        for p in path {
            node = node.and_then(|t| t.get(*p)).and_then(toml::Value::as_table);
        }
        let (table, value) = match node.and_then(|t| t.get(key)) {
            Some(v) => (path.join("."), Some(v)),
            None => (
                "defaults".to_owned(),
                self.table.get("defaults").and_then(|d| d.get(key)),
            ),
        };
        let Some(value) = value else { return Ok(None) };
        let scalar = |v: &toml::Value| -> Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::Unsupported {
                        key: key.to_owned(),
                        table: table.clone(),
                        value: other.to_string(),
                    })
                }
            })
        };
        let values = match value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>>>()?,
            v => vec![scalar(v)?],
        };
        Ok(Some((table, values)))
    }
}

/// The commented template `otactl init` fills in (`templates/otactl.toml`).
pub const TEMPLATE: &str = include_str!("../templates/otactl.toml");

/// Where devices and the publisher meet (the `otactl init` broker question).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broker {
    /// The broker built into `otactl publish` (plain MQTT), listening on `listen`.
    Embedded {
        /// `ADDR:PORT` to listen on (`0.0.0.0:1883` lets boards on the network connect).
        listen: String,
    },
    /// A mosquitto on this machine; `host` is the address devices use to reach it.
    Mosquitto {
        /// IP address or host name of this machine as the devices see it.
        host: String,
    },
    /// AWS IoT Core: the account's device data endpoint (`xxxx-ats.iot.REGION.amazonaws.com`).
    Aws {
        /// The endpoint host name.
        endpoint: String,
    },
    /// Any other broker, as `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
    Url(String),
}

impl Broker {
    /// The URL `otactl publish --broker` connects to (`None`: the embedded broker). Ports follow
    /// Infineon's example: 8884 for a local mosquitto with certificates, 1883 without TLS, 8883
    /// for AWS IoT.
    #[must_use]
    pub fn url(&self, tls: bool) -> Option<String> {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let port = if tls { 8884 } else { 1883 };
        match self {
            Self::Embedded { .. } => None,
            Self::Mosquitto { host } => Some(format!("{scheme}://{}:{port}", url_host(host))),
            Self::Aws { endpoint } => Some(format!("mqtts://{endpoint}:8883")),
            Self::Url(u) => Some(u.clone()),
        }
    }

    /// Whether `otactl certs gen` makes this broker's certificate (a local mosquitto).
    #[must_use]
    pub fn certs_are_ours(&self) -> bool {
        matches!(self, Self::Mosquitto { .. })
    }
}

fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Everything `otactl init` asks for; [`Project::render`] turns it into `otactl.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// The board string (`CY_TARGET_BOARD_STRING`).
    pub board: String,
    /// The flash map file.
    pub flashmap: PathBuf,
    /// The broker.
    pub broker: Broker,
    /// Mutual TLS on (certificates from `otactl certs gen` or the cloud provider).
    pub tls: bool,
    /// The signing key file.
    pub key: PathBuf,
    /// `COMPANY_TOPIC_PREPEND`.
    pub topic_prefix: String,
    /// Where the publisher's TLS material is (`otactl certs gen --out`).
    pub certs_dir: PathBuf,
}

impl Project {
    /// The publisher's CA, certificate and private key under [`certs_dir`](Self::certs_dir).
    #[must_use]
    pub fn publisher_tls(&self) -> [PathBuf; 3] {
        ["ca.crt", "publisher.crt", "publisher.key"].map(|n| self.certs_dir.join(n))
    }

    /// The `otactl.toml` text: [`TEMPLATE`] with every `{field}` replaced by a TOML value. Lines
    /// that only apply with TLS (`{tls}`) are commented out without it.
    #[must_use]
    pub fn render(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let p = |p: &Path| q(&p.to_string_lossy());
        let broker = match (&self.broker, self.broker.url(self.tls)) {
            (Broker::Embedded { listen }, _) => format!(
                "# The broker built into otactl publish (plain MQTT); 0.0.0.0:1883 lets boards on\n\
                 # your network connect.\nembedded-broker = {}",
                q(listen)
            ),
            (other, Some(url)) => {
                let what = match other {
                    Broker::Mosquitto { .. } => "A mosquitto on this machine",
                    Broker::Aws { .. } => "AWS IoT Core (certificates from the AWS console)",
                    _ => "Your broker",
                };
                format!("# {what}.\nbroker = {}", q(&url))
            }
            (_, None) => unreachable!("only the embedded broker has no URL"),
        };
        let [ca, cert, key] = self.publisher_tls();
        let tls = if self.tls { "" } else { "# " };
        let fields: [(&str, String); 9] = [
            ("{board}", q(&self.board)),
            ("{topic_prefix}", q(&self.topic_prefix)),
            ("{key}", p(&self.key)),
            ("{flashmap}", p(&self.flashmap)),
            ("{broker}", broker),
            ("{tls}", tls.to_owned()),
            ("{ca}", p(&ca)),
            ("{cert}", p(&cert)),
            ("{client_key}", p(&key)),
        ];
        let mut out = TEMPLATE.to_owned();
        for (name, value) in fields {
            out = out.replace(name, &value);
        }
        out
    }
}

fn walk_unknown<'a>(
    table: &'a toml::Table,
    path: &mut Vec<&'a str>,
    known: &dyn Fn(&[&str], &str) -> bool,
    out: &mut Vec<String>,
) {
    for (key, value) in table {
        match value {
            toml::Value::Table(sub) if path.is_empty() && key == "defaults" => {
                for k in sub.keys() {
                    if !known(&["*"], k) {
                        out.push(format!("[defaults] {k}"));
                    }
                }
            }
            toml::Value::Table(sub) => {
                path.push(key);
                walk_unknown(sub, path, known, out);
                path.pop();
            }
            _ if known(path, key) => {}
            _ if path.is_empty() => out.push(key.clone()),
            _ => out.push(format!("[{}] {key}", path.join("."))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_wins_over_defaults_and_arrays_expand() {
        let c = ConfigFile::parse(
            "[defaults]\nkey = \"a.pem\"\nboard = \"B\"\n[sign]\nkey = \"s.pem\"\n[certs.gen]\nip = [\"127.0.0.1\", \"::1\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.lookup(&["sign"], "key").unwrap(),
            Some(vec!["s.pem".into()])
        );
        assert_eq!(
            c.lookup(&["publish"], "key").unwrap(),
            Some(vec!["a.pem".into()])
        );
        assert_eq!(
            c.lookup(&["certs", "gen"], "ip").unwrap(),
            Some(vec!["127.0.0.1".into(), "::1".into()])
        );
        assert_eq!(c.lookup(&["sign"], "nope").unwrap(), None);
        assert_eq!(
            c.lookup_in(&["publish"], "key").unwrap().unwrap().0,
            "defaults"
        );
        assert_eq!(
            c.lookup_in(&["certs", "gen"], "ip").unwrap().unwrap().0,
            "certs.gen"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let mut c = ConfigFile::parse("").unwrap();
        assert_eq!(c.resolve_path("keys/a.pem"), "keys/a.pem");
        c.path = Some(PathBuf::from("otactl.toml"));
        assert_eq!(c.resolve_path("keys/a.pem"), "keys/a.pem");
        c.path = Some(PathBuf::from("proj/otactl.toml"));
        assert_eq!(c.resolve_path("keys/a.pem"), "proj/keys/a.pem");
        assert_eq!(c.resolve_path("/abs/a.pem"), "/abs/a.pem");
    }

    #[test]
    fn unknown_keys_are_listed_with_their_table() {
        let c = ConfigFile::parse(
            "verbose = 1\ntypo = 2\n[defaults]\nkey = \"a\"\nkye = \"b\"\n[sign]\nkey = \"k\"\nflashmpa = \"f\"\n[certs.gen]\nout = \"c\"\n",
        )
        .unwrap();
        let known = |path: &[&str], key: &str| match path {
            [] => key == "verbose",
            ["*"] | ["sign"] => key == "key",
            ["certs", "gen"] => key == "out",
            _ => false,
        };
        let mut got = c.unknown_keys(&known);
        got.sort();
        assert_eq!(got, ["[defaults] kye", "[sign] flashmpa", "typo"]);
    }
}
