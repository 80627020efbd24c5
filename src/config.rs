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
//! Relative paths are used as written, relative to the directory otactl runs in.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
        let env = std::env::var_os(ENV_CONFIG).map(PathBuf::from);
        let (path, must_exist) = match (explicit, env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (PathBuf::from(FILE_NAME), false),
        };
        if !path.exists() {
            if must_exist {
                bail!("config file {} does not exist", path.display());
            }
            return Ok(Self::default());
        }
        Self::load(&path)
    }

    /// Loads a given file.
    ///
    /// # Errors
    /// I/O or TOML errors, naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text)
            .map(|mut c| {
                c.path = Some(path.to_path_buf());
                c
            })
            .with_context(|| format!("invalid config file {}", path.display()))
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

    /// The value(s) for option `key` of the subcommand at `path` (e.g. `["certs", "gen"]`),
    /// falling back to `[defaults]`. Arrays give several values.
    ///
    /// # Errors
    /// A value that is a table or otherwise not representable as option text.
    pub fn lookup(&self, path: &[&str], key: &str) -> Result<Option<Vec<String>>> {
        let mut node = Some(&self.table);
        for p in path {
            node = node.and_then(|t| t.get(*p)).and_then(toml::Value::as_table);
        }
        let value = node
            .and_then(|t| t.get(key))
            .or_else(|| self.table.get("defaults").and_then(|d| d.get(key)));
        let Some(value) = value else { return Ok(None) };
        let scalar = |v: &toml::Value| -> Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!(
                    "option `{key}` in [{}]: unsupported value {other}",
                    path.join(".")
                ),
            })
        };
        let values = match value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>>>()?,
            v => vec![scalar(v)?],
        };
        Ok(Some(values))
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
    }
}
