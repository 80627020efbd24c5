//! The files of `otactl certs gen`, `certs server`, `certs device` and `certs csr`: keys 0600,
//! nothing replaced without `force`, every check made before the first write.
//!
//! The CA is kept: `certs gen` issues from the CA already in the folder (its `ca.crt` and
//! `ca.key`), adopts one given as files ([`GenOptions::adopt`]), and makes a new one only where
//! there is none or when told to ([`GenOptions::new_ca`]): a new CA locks out every board that
//! was flashed with the old one.

use std::path::{Path, PathBuf};

use super::{
    check_device_name, csr, owner_name, render_acl, render_mosquitto_conf, BrokerConf, CertsError,
    GenParams, KeyType, Pki, Result, PUBLISHER_CN,
};
use crate::fsutil::{self, FileError, Mode, Overwrite};

/// The files of the broker and publisher pairs `certs gen` issues, with their modes.
const ISSUED: [(&str, Mode); 4] = [
    ("server.crt", Mode::Public),
    ("server.key", Mode::Private),
    ("publisher.crt", Mode::Public),
    ("publisher.key", Mode::Private),
];

/// How `certs gen` treats the CA and existing files.
#[derive(Clone, Debug, Default)]
pub struct GenOptions {
    /// Replace existing broker and publisher files and the broker config (never the CA).
    pub force: bool,
    /// Make a new CA (or adopt [`Self::adopt`]'s) even where the folder holds one.
    pub new_ca: bool,
    /// Adopt this CA (certificate, key): it is copied into the folder as `ca.crt` and `ca.key`.
    pub adopt: Option<(PathBuf, PathBuf)>,
    /// Issue keys of the CA's kind (RSA or ECDSA) instead of [`GenParams::key_type`] when the
    /// CA is kept or adopted (no `--key-type` given).
    pub key_type_of_ca: bool,
}

/// What happened to the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaOutcome {
    /// The folder had no CA: a new one was made.
    Made,
    /// The CA in the folder was kept and issued from.
    Kept,
    /// The given CA was copied into the folder.
    Adopted,
    /// The folder's CA was replaced (by a new or an adopted one).
    Replaced,
}

/// What `certs gen` did.
#[derive(Clone, Debug)]
pub struct GenOutcome {
    /// What happened to the CA.
    pub ca: CaOutcome,
    /// The files written, in order.
    pub written: Vec<PathBuf>,
}

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).map_err(|e| FileError::io("cannot read", p)(e).into())
}

/// The CA from its certificate and key files.
fn load_ca(crt: &Path, key: &Path, days: u32) -> Result<Pki> {
    Pki::load_ca(&read(crt)?, &read(key)?, days, &key.display().to_string())
}

/// The CA of a folder (`ca.crt`, `ca.key`), with an error that says how to make one.
fn folder_ca(out: &Path, days: u32) -> Result<Pki> {
    let (crt, key) = (out.join("ca.crt"), out.join("ca.key"));
    for p in [&crt, &key] {
        if !p.exists() {
            return Err(CertsError::NoCa(p.clone()));
        }
    }
    load_ca(&crt, &key, days)
}

/// `certs gen` that keeps an existing CA (see [`write_gen_with`]); `force` replaces the broker
/// and publisher files and the broker config.
///
/// # Errors
/// See [`write_gen_with`].
pub fn write_gen(
    out: &Path,
    p: &GenParams,
    broker: &BrokerConf,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let opts = GenOptions {
        force,
        ..GenOptions::default()
    };
    Ok(write_gen_with(out, p, broker, &opts)?.written)
}

/// `certs gen`: writes [`super::GEN_FILES`] into `out`, issuing the broker's and the publisher's
/// certificates from the folder's CA, an adopted one, or a new one (see [`GenOptions`]). Checks
/// everything before writing anything.
///
/// # Errors
/// Existing broker/publisher files or config without `force`; a CA in the folder that would be
/// replaced without `new_ca`; half a CA (certificate without key or the other way round);
/// unreadable or mismatched CA files; generation or I/O errors.
pub fn write_gen_with(
    out: &Path,
    p: &GenParams,
    broker: &BrokerConf,
    opts: &GenOptions,
) -> Result<GenOutcome> {
    let ow = Overwrite::from_force(opts.force);
    for f in ISSUED
        .iter()
        .map(|(f, _)| *f)
        .chain(["mosquitto.conf", "acl"])
    {
        fsutil::check_overwrite(&out.join(f), ow)?;
    }
    let (crt, key) = (out.join("ca.crt"), out.join("ca.key"));
    let (has_crt, has_key) = (crt.exists(), key.exists());
    let (pki, outcome, copy) = match &opts.adopt {
        Some((c, k)) => {
            let (cert_pem, key_pem) = (read(c)?, read(k)?);
            let pki = Pki::load_ca(&cert_pem, &key_pem, p.days, &k.display().to_string())?;
            // The same certificate is the same CA (its key was checked against it above).
            let same = has_key && std::fs::read_to_string(&crt).is_ok_and(|t| t == cert_pem);
            let outcome = match (same, has_crt || has_key, opts.new_ca) {
                (true, _, _) => CaOutcome::Kept,
                (false, false, _) => CaOutcome::Adopted,
                (false, true, true) => CaOutcome::Replaced,
                (false, true, false) => {
                    return Err(CertsError::OtherCa {
                        out: out.to_path_buf(),
                        adopt: c.clone(),
                    })
                }
            };
            let copy = (outcome != CaOutcome::Kept).then_some((cert_pem, key_pem));
            (pki, outcome, copy)
        }
        None if opts.new_ca || !(has_crt || has_key) => {
            let pki = Pki::new_ca(p.key_type, p.days)?;
            let outcome = if has_crt || has_key {
                CaOutcome::Replaced
            } else {
                CaOutcome::Made
            };
            let copy = Some((pki.ca.cert_pem.clone(), pki.ca.key_pem.clone()));
            (pki, outcome, copy)
        }
        None if has_crt && has_key => (load_ca(&crt, &key, p.days)?, CaOutcome::Kept, None),
        None => {
            let (here, missing) = if has_crt { (&crt, &key) } else { (&key, &crt) };
            return Err(CertsError::HalfCa {
                here: here.clone(),
                missing: missing.clone(),
            });
        }
    };
    let key_type = if opts.key_type_of_ca && outcome != CaOutcome::Made {
        pki.key_type()
    } else {
        p.key_type
    };
    let server = pki.server(&p.ips, &p.dns, key_type)?;
    let publisher = pki.client(PUBLISHER_CN, key_type)?;
    std::fs::create_dir_all(out).map_err(FileError::io("cannot create", out))?;
    let dir = std::fs::canonicalize(out).map_err(FileError::io("cannot resolve", out))?;
    let mut written = Vec::new();
    if let Some((cert_pem, key_pem)) = copy {
        // The CA is replaced only when asked to (checked above).
        fsutil::write_atomic(&key, key_pem.as_bytes(), Mode::Private, Overwrite::Allow)?;
        fsutil::write_atomic(&crt, cert_pem.as_bytes(), Mode::Public, Overwrite::Allow)?;
        written.extend([crt, key]);
    }
    let issued = [
        &server.cert_pem,
        &server.key_pem,
        &publisher.cert_pem,
        &publisher.key_pem,
    ];
    for ((name, mode), data) in ISSUED.into_iter().zip(issued) {
        let path = out.join(name);
        fsutil::write_atomic(&path, data.as_bytes(), mode, ow)?;
        written.push(path);
    }
    let mut broker = broker.clone();
    if broker.user.is_none() {
        broker.user = owner_name(&out.join("server.key"));
    }
    for (name, text) in [
        ("mosquitto.conf", render_mosquitto_conf(&dir, &broker)),
        ("acl", render_acl(&broker)),
    ] {
        let path = out.join(name);
        fsutil::write_atomic(&path, text.as_bytes(), Mode::Public, ow)?;
        written.push(path);
    }
    Ok(GenOutcome {
        ca: outcome,
        written,
    })
}

/// `certs server`: a new `server.crt` + `server.key` in `out` for the broker at `ips`/`dns`,
/// issued from the folder's CA (so every device certificate stays valid). Replaces the old pair:
/// that is what it is for. `key_type` `None`: the CA's kind.
///
/// # Errors
/// No CA in `out`, a bad address, generation or I/O errors.
pub fn write_server(
    out: &Path,
    ips: &[std::net::IpAddr],
    dns: &[String],
    key_type: Option<KeyType>,
    days: u32,
) -> Result<Vec<PathBuf>> {
    let pki = folder_ca(out, days)?;
    let server = pki.server(ips, dns, key_type.unwrap_or_else(|| pki.key_type()))?;
    let (crt, key) = (out.join("server.crt"), out.join("server.key"));
    fsutil::write_atomic(
        &key,
        server.key_pem.as_bytes(),
        Mode::Private,
        Overwrite::Allow,
    )?;
    fsutil::write_atomic(
        &crt,
        server.cert_pem.as_bytes(),
        Mode::Public,
        Overwrite::Allow,
    )?;
    Ok(vec![crt, key])
}
/// `certs device`: `SERIAL.crt` + `SERIAL.key` in `out` for each serial, signed by `out/ca.crt`
/// + `out/ca.key`. Checks every name and existing file before writing anything.
///
/// # Errors
/// Missing or mismatched CA files, bad names, existing files without `force`, I/O errors.
pub fn write_devices(
    out: &Path,
    serials: &[String],
    key_type: KeyType,
    days: u32,
    force: bool,
) -> Result<Vec<PathBuf>> {
    if serials.is_empty() {
        return Err(CertsError::NoDevices);
    }
    let ow = Overwrite::from_force(force);
    for (i, s) in serials.iter().enumerate() {
        check_device_name(s)?;
        if serials[..i].contains(s) {
            return Err(CertsError::DeviceTwice(s.clone()));
        }
        for ext in ["crt", "key"] {
            fsutil::check_overwrite(&out.join(format!("{s}.{ext}")), ow)?;
        }
    }
    let pki = folder_ca(out, days)?;
    let mut written = Vec::new();
    for s in serials {
        let c = pki.device(s, key_type)?;
        let crt = out.join(format!("{s}.crt"));
        let key = out.join(format!("{s}.key"));
        fsutil::write_atomic(&key, c.key_pem.as_bytes(), Mode::Private, ow)?;
        fsutil::write_atomic(&crt, c.cert_pem.as_bytes(), Mode::Public, ow)?;
        written.extend([crt, key]);
    }
    Ok(written)
}

/// `certs csr`: `NAME.key` (mode 0600) and `NAME.csr` in `out` (see [`csr`]). Checks both files
/// before writing either.
///
/// # Errors
/// A bad name, existing files without `force`, generation or I/O errors.
pub fn write_csr(out: &Path, name: &str, key_type: KeyType, force: bool) -> Result<Vec<PathBuf>> {
    let ow = Overwrite::from_force(force);
    let key_path = out.join(format!("{name}.key"));
    let csr_path = out.join(format!("{name}.csr"));
    check_device_name(name)?;
    fsutil::check_overwrite(&key_path, ow)?;
    fsutil::check_overwrite(&csr_path, ow)?;
    let (key, req) = csr(name, key_type)?;
    std::fs::create_dir_all(out).map_err(FileError::io("cannot create", out))?;
    fsutil::write_atomic(&key_path, key.as_bytes(), Mode::Private, ow)?;
    fsutil::write_atomic(&csr_path, req.as_bytes(), Mode::Public, ow)?;
    Ok(vec![csr_path, key_path])
}
