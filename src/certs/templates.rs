//! `templates/mosquitto.conf` and `templates/acl`, rendered for a certificate folder.

use std::net::IpAddr;
use std::path::Path;

use super::{CertsError, Result};

const CONF: &str = include_str!("../../templates/mosquitto.conf");
const ACL: &str = include_str!("../../templates/acl");

/// Broker settings rendered into the config and ACL.
#[derive(Clone, Debug)]
pub struct BrokerConf {
    /// TLS listener port.
    pub port: u16,
    /// Address to listen on (`None`: all interfaces).
    pub bind: Option<IpAddr>,
    /// Topic prefix (COMPANY_TOPIC_PREPEND of the devices).
    pub topic_prefix: String,
    /// User name (certificate CN) of the publisher.
    pub publisher: String,
    /// Account mosquitto runs as when started as root (`None`: its default, "mosquitto").
    pub user: Option<String>,
}

impl BrokerConf {
    /// Checks the values that end up in the files.
    ///
    /// # Errors
    /// A topic prefix with wildcards, `%`, spaces or control characters, or an empty one.
    pub fn check(&self) -> Result<()> {
        let p = &self.topic_prefix;
        if p.is_empty()
            || p.starts_with('/')
            || p.ends_with('/')
            || p.contains(['+', '#', '%'])
            || p.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CertsError::TopicPrefix(p.clone()));
        }
        Ok(())
    }
}

/// `mosquitto.conf` with absolute paths into `dir` (which should be absolute).
#[must_use]
pub fn render_mosquitto_conf(dir: &Path, b: &BrokerConf) -> String {
    let bind = b.bind.map(|a| format!(" {a}")).unwrap_or_default();
    let user = match &b.user {
        Some(u) => format!("user {u}"),
        None => "#user mosquitto".to_string(),
    };
    CONF.replace("{{user}}", &user)
        .replace("{{dir}}", &dir.display().to_string())
        .replace("{{port}}", &b.port.to_string())
        .replace("{{bind}}", &bind)
}

/// The name of the account that owns `path` (from `/etc/passwd`), if it can be found.
#[must_use]
pub fn owner_name(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(path).ok()?.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid && !name.is_empty() && !name.contains(char::is_whitespace))
                .then(|| name.to_string())
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The ACL file (see the comments in `templates/acl`).
#[must_use]
pub fn render_acl(b: &BrokerConf) -> String {
    ACL.replace("{{prefix}}", &b.topic_prefix)
        .replace("{{publisher}}", &b.publisher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> BrokerConf {
        BrokerConf {
            port: 8884,
            bind: Some("127.0.0.1".parse().unwrap()),
            topic_prefix: "MyUniqueTopic".into(),
            publisher: "otactl-publisher".into(),
            user: Some("alice".into()),
        }
    }

    #[test]
    fn rendered_files_have_no_placeholders_left() {
        let c = render_mosquitto_conf(Path::new("/x/certs"), &conf());
        assert!(!c.contains("{{"), "{c}");
        for line in [
            "listener 8884 127.0.0.1",
            "cafile /x/certs/ca.crt",
            "keyfile /x/certs/server.key",
            "acl_file /x/certs/acl",
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
            "set_tcp_nodelay true",
            "user alice",
        ] {
            assert!(c.lines().any(|l| l == line), "{line}");
        }
        let a = render_acl(&conf());
        assert!(!a.contains("{{"), "{a}");
        assert!(a
            .lines()
            .any(|l| l == "pattern write MyUniqueTopic/+/publish_notify"));
        assert!(a.lines().any(|l| l == "user otactl-publisher"));
    }

    #[test]
    fn bad_prefixes() {
        for p in ["", "a+", "#", "a b", "/a", "a/", "%u"] {
            let mut c = conf();
            c.topic_prefix = p.into();
            assert!(c.check().is_err(), "{p}");
        }
        conf().check().unwrap();
    }

    #[test]
    fn owner_of_a_new_file_is_found() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, "x").unwrap();
        assert!(owner_name(&f).is_some());
    }
}
