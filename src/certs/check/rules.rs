//! The single checks: signed by the CA, a CA at all, X.509 version, usage, dates, key size.

use time::OffsetDateTime;
use x509_parser::error::X509Error;
use x509_parser::prelude::{X509Certificate, X509Version};
use x509_parser::public_key::PublicKey;

use super::{Report, Role, Severity, EXPIRY_WARNING_DAYS};
use crate::mqtt::tls::subject_alt_names;

pub(super) fn is_a_ca(r: &mut Report, c: &X509Certificate<'_>, ca: &str) {
    if let Ok(Some(bc)) = c.basic_constraints() {
        if !bc.value.ca {
            r.push(
                Severity::Problem,
                format!(
                    "{ca} is not a CA certificate (basicConstraints CA:FALSE; {}): brokers and \
                     boards do not accept certificates it issued; pass the CA's certificate",
                    c.subject()
                ),
            );
        }
    }
}

pub(super) fn version(r: &mut Report, c: &X509Certificate<'_>, role: Role, cert: &str) {
    if c.version() == X509Version::V3 {
        return;
    }
    let v = c.version().0 + 1;
    match role {
        Role::Client => r.push(
            Severity::Warning,
            format!(
                "{cert} is an X.509 version {v} certificate (no extensions, as `openssl x509 \
                 -req` makes without an extensions file, like generate_ssl_cert.sh's client \
                 certificate): mosquitto (OpenSSL), the example's boards and otactl accept it; \
                 `otactl certs device NAME` issues version 3 ones"
            ),
        ),
        Role::Server => r.push(
            Severity::Problem,
            format!(
                "{cert} is an X.509 version {v} certificate: otactl and the simulated device \
                 verify the broker with webpki, which refuses it; issue a version 3 one \
                 (`otactl certs server --ip ADDR --dns NAME`)"
            ),
        ),
    }
}

/// The certificate (through any intermediates in its own file) is signed by one of the CAs.
pub(super) fn signed_by_ca(
    r: &mut Report,
    cas: &[X509Certificate<'_>],
    chain: &[X509Certificate<'_>],
    ca: &str,
    cert: &str,
) {
    let mut current = &chain[0];
    // Up through intermediates that come with the certificate, at most once each.
    for _ in 0..chain.len() {
        for c in cas {
            match current.verify_signature(Some(c.public_key())) {
                Ok(()) if current.issuer() == c.subject() => {
                    r.push(
                        Severity::Ok,
                        format!("{cert} is signed by the CA {ca} ({})", c.subject()),
                    );
                    return;
                }
                Ok(()) => {
                    r.push(
                        Severity::Problem,
                        format!(
                            "{cert} is signed with the key of the CA {ca} but names {} as its \
                             issuer, not the CA's {}: OpenSSL and mbedTLS look the issuer up by \
                             name and will not find it",
                            current.issuer(),
                            c.subject()
                        ),
                    );
                    return;
                }
                Err(X509Error::SignatureUnsupportedAlgorithm) => {
                    r.push(
                        Severity::Warning,
                        format!("cannot check whether the CA {ca} signed {cert}: its signature algorithm is not supported here"),
                    );
                    return;
                }
                Err(_) => {}
            }
        }
        match chain[1..].iter().find(|i| {
            !std::ptr::eq(*i, current) && current.verify_signature(Some(i.public_key())).is_ok()
        }) {
            Some(i) => current = i,
            None => break,
        }
    }
    let ca_names: Vec<String> = cas.iter().map(|c| c.subject().to_string()).collect();
    let ca_names = ca_names.join(", ");
    let text = if cas.iter().any(|c| c.subject() == current.issuer()) {
        format!(
            "{cert} is not signed by the CA {ca}: it names {} as its issuer, but it was signed \
             by another CA of that name (every run of generate_ssl_cert.sh or `otactl certs gen \
             --new-ca` makes a new one; a CA of another project or set-up?); use the CA \
             certificate these files were made with",
            current.issuer()
        )
    } else {
        format!(
            "{cert} is not signed by the CA {ca}: it was issued by {}, the CA is {ca_names} (a \
             CA of another project or set-up?); use the CA certificate these files were made with",
            current.issuer()
        )
    };
    r.push(Severity::Problem, text);
    r.not_issued_by_ca = true;
}

pub(super) fn usage(r: &mut Report, c: &X509Certificate<'_>, role: Role, cert: &str) {
    if matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca) {
        r.push(
            Severity::Problem,
            format!(
                "{cert} is a CA certificate ({}), not a {role} certificate: pass the {role}'s \
                 own certificate and key",
                c.subject()
            ),
        );
        return;
    }
    if let Ok(Some(ku)) = c.key_usage() {
        if !ku.value.digital_signature() {
            r.push(
                Severity::Problem,
                format!("{cert}: its keyUsage lacks digitalSignature, which TLS needs to prove the key ({})", ku.value),
            );
        }
    }
    let eku = match c.extended_key_usage() {
        Ok(Some(e)) => Some(e.value),
        _ => None,
    };
    let hosts: Vec<String> = subject_alt_names(c.as_raw())
        .into_iter()
        .filter(|n| n.starts_with("DNS:") || n.starts_with("IP Address:"))
        .collect();
    let (wanted, other) = match role {
        Role::Client => ("clientAuth", "serverAuth"),
        Role::Server => ("serverAuth", "clientAuth"),
    };
    let Some(eku) = eku else {
        if role == Role::Client && !hosts.is_empty() && c.version() == X509Version::V3 {
            r.push(
                Severity::Problem,
                format!(
                    "{cert} looks like a broker's certificate, not a client's: it names hosts ({}) \
                     and has no clientAuth usage; a board or the publisher needs a client \
                     certificate of its own (generate_ssl_cert.sh's mosquitto_client.crt, or \
                     `otactl certs device NAME`); to check a broker's certificate pass --server",
                    hosts.join(", ")
                ),
            );
        } else {
            r.push(
                Severity::Note,
                format!("{cert} has no extendedKeyUsage: it may serve as a {role} certificate"),
            );
        }
        return;
    };
    let fits = eku.any
        || if role == Role::Client {
            eku.client_auth
        } else {
            eku.server_auth
        };
    let is_other = if role == Role::Client {
        eku.server_auth
    } else {
        eku.client_auth
    };
    if fits {
        r.push(
            Severity::Ok,
            format!("{cert} may serve as a {role} certificate (extendedKeyUsage {wanted})"),
        );
    } else if is_other {
        let (what, hint) = match role {
            Role::Client => (
                "a broker's (server) certificate used as a client certificate: the broker \
                 refuses it; use a client pair (the board's or publisher's .crt and .key)",
                "; to check the broker's pair pass --server",
            ),
            Role::Server => (
                "a client certificate used as the broker's: otactl and the boards refuse it; use \
                 the broker's pair (server.crt and server.key)",
                "; to check a client pair pass --client",
            ),
        };
        r.push(
            Severity::Problem,
            format!("{cert} is {what} (extendedKeyUsage {other}, no {wanted}){hint}"),
        );
    } else {
        r.push(
            Severity::Problem,
            format!(
                "{cert} is not for TLS: its extendedKeyUsage has neither clientAuth nor serverAuth"
            ),
        );
    }
}

pub(super) fn dates(r: &mut Report, c: &X509Certificate<'_>, what: &str, now: OffsetDateTime) {
    let v = c.validity();
    let (from, until) = (v.not_before.to_datetime(), v.not_after.to_datetime());
    if now < from {
        r.push(
            Severity::Problem,
            format!(
                "{what} is not valid yet: from {} (the clock here says {}); check this machine's \
                 clock, or issue it again",
                date(from),
                date(now)
            ),
        );
    } else if now > until {
        r.push(
            Severity::Problem,
            format!(
                "{what} expired on {} (the clock here says {}); issue a new one",
                date(until),
                date(now)
            ),
        );
    } else if (until - now).whole_days() < EXPIRY_WARNING_DAYS {
        r.push(
            Severity::Warning,
            format!(
                "{what} expires on {} (in {} days)",
                date(until),
                (until - now).whole_days()
            ),
        );
    } else {
        r.push(
            Severity::Ok,
            format!("{what} is valid until {}", date(until)),
        );
    }
}

pub(super) fn key_size(r: &mut Report, c: &X509Certificate<'_>, cert: &str) {
    if let Ok(PublicKey::RSA(k)) = c.public_key().parsed() {
        let bits = k.key_size();
        if bits < 2048 {
            r.push(
                Severity::Warning,
                format!(
                    "{cert} has a {bits}-bit RSA key: current TLS libraries want 2048 bits or more"
                ),
            );
        }
    }
}

/// A date as people read it.
fn date(t: OffsetDateTime) -> String {
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}
