//! A broker certificate's names against the address clients reach the broker at, with the
//! `DNS:IP:<addr>` entries of Infineon's `generate_ssl_cert.sh` explained.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Report, Severity};
use crate::mqtt::tls::subject_alt_names;

/// Checks the names of the broker certificate `der` (file `cert`) against `broker`, or lists
/// them when no address is given.
pub(super) fn names(r: &mut Report, der: &[u8], broker: Option<&str>, cert: &str) {
    let shown = subject_alt_names(der);
    let (dns, ips) = san_hosts(der);
    // A name `--tls-server-name` accepts (a DNS name that is not the "IP:…" kind).
    let usable = dns.iter().find(|d| {
        !d.starts_with("IP:") && rustls::pki_types::DnsName::try_from(d.as_str()).is_ok()
    });
    let flag = |name: &str| {
        format!(
            "connect with --tls-server-name {name} (or OTACTL_TLS_SERVER_NAME, or \
             tls-server-name in otactl.toml): the chain is still verified, under that name"
        )
    };
    if shown.is_empty() {
        r.push(
            Severity::Problem,
            format!(
                "{cert} has no subjectAltName: TLS clients (otactl, rustls) look for the broker's \
                 name only there; issue it with the broker's addresses (`otactl certs server \
                 --ip ADDR --dns NAME`)"
            ),
        );
        return;
    }
    let host = broker.map(broker_host);
    let trap: Vec<&String> = dns.iter().filter(|d| d.starts_with("IP:")).collect();
    // The entry that reads as the broker's address is explained with the address below.
    for t in trap.iter().filter(|t| host.as_deref() != Some(&t[3..])) {
        let mut text = format!(
            "{cert} names DNS:{t}: a DNS name that reads \"{t}\", not an IP address entry (so \
             generate_ssl_cert.sh writes it); clients reaching the broker as {} cannot verify it \
             by that address",
            &t[3..]
        );
        if let Some(n) = usable {
            text.push_str("; ");
            text.push_str(&flag(n));
        }
        r.push(Severity::Warning, text);
    }
    let Some(host) = host else {
        r.push(
            Severity::Note,
            format!(
                "{cert} names {}; pass --broker ADDRESS to check the address clients use",
                shown.join(", ")
            ),
        );
        return;
    };
    let named = match host.parse::<IpAddr>() {
        Ok(ip) => ips.contains(&ip),
        Err(_) => dns.iter().any(|d| dns_matches(d, &host)),
    };
    if named {
        r.push(
            Severity::Ok,
            format!("{cert} names the broker address {host}"),
        );
        return;
    }
    let is_ip = host.parse::<IpAddr>().is_ok();
    let reissue = if is_ip {
        format!("`otactl certs server --ip {host}`")
    } else {
        format!("`otactl certs server --dns {host}`")
    };
    let trapped = is_ip && trap.iter().any(|t| t[3..] == host);
    let why = if trapped {
        format!(" (its DNS:IP:{host} entry is a name, not the address)")
    } else {
        String::new()
    };
    match usable {
        Some(n) => r.push(
            Severity::Warning,
            format!(
                "{cert} does not name the broker address {host}{why}: it names {}; {}, or issue \
                 a certificate that names the address ({reissue})",
                shown.join(", "),
                flag(n)
            ),
        ),
        None => r.push(
            Severity::Problem,
            format!(
                "{cert} does not name the broker address {host}{why}: it names {}; clients \
                 cannot verify the broker; issue a certificate that names it ({reissue})",
                shown.join(", ")
            ),
        ),
    }
}

/// The host of a broker address: `host`, `host:port`, `[v6]:port` or a URL.
pub(crate) fn broker_host(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    if rest.parse::<IpAddr>().is_ok() {
        return rest.to_owned();
    }
    rest.rsplit_once(':').map_or(rest, |(h, _)| h).to_owned()
}

/// Whether a DNS SAN (possibly `*.` wildcard) matches `host`.
pub(crate) fn dns_matches(san: &str, host: &str) -> bool {
    let (san, host) = (san.to_ascii_lowercase(), host.to_ascii_lowercase());
    match san.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => san == host,
    }
}

/// The DNS names and IP addresses of a certificate's subjectAltName.
pub(crate) fn san_hosts(der: &[u8]) -> (Vec<String>, Vec<IpAddr>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    let Ok((_, c)) = X509Certificate::from_der(der) else {
        return (dns, ips);
    };
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => dns.push((*s).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.extend(<[u8; 4]>::try_from(*b).ok().map(IpAddr::from)),
                    16 => ips.extend(<[u8; 16]>::try_from(*b).ok().map(IpAddr::from)),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (dns, ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_hosts() {
        for (address, host) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:8884", "127.0.0.1"),
            ("mqtts://broker.local:8884", "broker.local"),
            ("mqtts://[::1]:8884", "::1"),
            ("::1", "::1"),
            ("broker.local", "broker.local"),
        ] {
            assert_eq!(broker_host(address), host, "{address}");
        }
    }

    #[test]
    fn dns_names_match_like_webpki() {
        assert!(dns_matches("Broker.Local", "broker.local"));
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("IP:127.0.0.1", "127.0.0.1"));
    }
}
