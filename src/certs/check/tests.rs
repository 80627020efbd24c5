use std::path::Path;

use time::{Date, Month, OffsetDateTime, Time};

use super::*;
use crate::certs::{KeyType, Pki};

fn at(year: i32) -> OffsetDateTime {
    OffsetDateTime::new_utc(
        Date::from_calendar_date(year, Month::June, 1).unwrap(),
        Time::MIDNIGHT,
    )
}

fn pem<'a>(path: &'static str, data: &'a str) -> Pem<'a> {
    Pem {
        path: Path::new(path),
        data: data.as_bytes(),
    }
}

fn run(ca: &str, cert: &str, key: &str, role: Role, now: OffsetDateTime) -> Report {
    let opts = Options {
        role,
        broker: Some("10.0.0.1".into()),
        chain: true,
        now,
    };
    check(
        pem("ca.crt", ca),
        pem("x.crt", cert),
        pem("x.key", key),
        &opts,
    )
    .unwrap()
}

fn problems(r: &Report) -> Vec<&str> {
    r.of(Severity::Problem).map(|f| f.text.as_str()).collect()
}

#[test]
fn matching_sets_pass_and_mixed_ones_say_what_is_wrong() {
    let pki = Pki::new_ca(KeyType::EcdsaP256, 30 * 365).unwrap();
    let other = Pki::new_ca(KeyType::EcdsaP256, 30 * 365).unwrap();
    let dev = pki.device("dev1", KeyType::EcdsaP256).unwrap();
    let dev2 = pki.device("dev2", KeyType::EcdsaP256).unwrap();
    let server = pki
        .server(&["10.0.0.1".parse().unwrap()], &[], KeyType::EcdsaP256)
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let ca = &pki.ca.cert_pem;

    let r = run(ca, &dev.cert_pem, &dev.key_pem, Role::Client, now);
    assert!(r.usable(), "{:?}", problems(&r));
    assert!(run(ca, &server.cert_pem, &server.key_pem, Role::Server, now).usable());

    let r = run(ca, &dev.cert_pem, &dev2.key_pem, Role::Client, now);
    assert!(
        problems(&r)[0].contains("does not belong"),
        "{:?}",
        problems(&r)
    );
    let r = run(
        &other.ca.cert_pem,
        &dev.cert_pem,
        &dev.key_pem,
        Role::Client,
        now,
    );
    assert!(r.not_issued_by_ca);
    assert!(
        problems(&r)[0].contains("another CA of that name"),
        "{:?}",
        problems(&r)
    );
    let r = run(ca, &server.cert_pem, &server.key_pem, Role::Client, now);
    assert!(problems(&r)[0].contains("serverAuth"), "{:?}", problems(&r));
    let r = run(ca, &dev.cert_pem, &dev.key_pem, Role::Server, now);
    assert!(problems(&r)[0].contains("clientAuth"), "{:?}", problems(&r));

    // Dates: before the validity, after it, and close to its end.
    let r = run(ca, &dev.cert_pem, &dev.key_pem, Role::Client, at(2000));
    assert!(
        problems(&r)
            .iter()
            .any(|p| p.contains("x.crt is not valid yet")),
        "{:?}",
        problems(&r)
    );
    let r = run(ca, &dev.cert_pem, &dev.key_pem, Role::Client, at(2200));
    assert!(
        problems(&r).iter().any(|p| p.contains("x.crt expired on")),
        "{:?}",
        problems(&r)
    );
}

#[test]
fn unreadable_files_are_errors_naming_them() {
    let pki = Pki::new_ca(KeyType::EcdsaP256, 1).unwrap();
    let opts = Options {
        role: Role::Client,
        broker: None,
        chain: true,
        now: OffsetDateTime::now_utc(),
    };
    let (ca, key) = (pki.ca.cert_pem.as_str(), pki.ca.key_pem.as_str());
    let e = check(pem("a.crt", ""), pem("b.crt", ca), pem("c.key", key), &opts).unwrap_err();
    assert_eq!(e.to_string(), "a.crt: no CERTIFICATE found");
    let e = check(pem("a.crt", ca), pem("b.crt", ca), pem("c.key", ca), &opts).unwrap_err();
    assert_eq!(e.to_string(), "c.key: no PRIVATE KEY found");
}
