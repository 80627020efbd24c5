//! TLS material for the broker, the publisher and every device: a CA, the broker's server
//! certificate (real IP and DNS SANs), client certificates (device identity = subject CN, so
//! mosquitto's `use_identity_as_username` makes it the user name), the mosquitto config + ACL
//! rendered from `templates/`, and the C string form devices embed ([`c_text`]).
//!
//! Everything is X.509 v3, ECDSA P-256 by default or RSA 2048 ([`KeyType`]). [`generate`]
//! and [`Pki::device`] work in memory; [`write_gen`], [`write_server`] and [`write_devices`] put
//! the files on disk through [`crate::fsutil`] (keys 0600, nothing overwritten without `force`,
//! atomic renames, the CA kept unless [`GenOptions::new_ca`]). [`check`] says whether a CA, a
//! certificate and a key belong together.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub mod c_text;
pub mod check;
mod files;
mod templates;

pub use ota_tls::pem;

pub use c_text::{c_header, c_literal, check_serial, CNames, SerialError};
pub use files::{
    write_csr, write_devices, write_gen, write_gen_with, write_server, CaOutcome, GenOptions,
    GenOutcome,
};
pub use templates::{owner_name, render_acl, render_mosquitto_conf, BrokerConf};

/// Why TLS material could not be made, read or written; each names the file, flag or name.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// `--key-type` is not one of ours.
    #[error("unknown key type {0:?}: use ecdsa-p256 or rsa2048")]
    UnknownKeyType(String),
    /// A key could not be generated, read or converted (`doing` says which step).
    #[error("{doing}")]
    Key {
        /// "RSA key generation", "invalid PEM", "not a P-256 key"…
        doing: &'static str,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A PEM file with no private key in it.
    #[error("no PRIVATE KEY found")]
    NoPrivateKey,
    /// A private key in a format rcgen cannot use.
    #[error("unsupported key format")]
    UnsupportedKeyFormat,
    /// A device name that is not 1 to 64 characters.
    #[error("device {0:?}: must be 1 to 64 characters")]
    DeviceNameLength(String),
    /// A device name starting with `.` or `-`.
    #[error("device {0:?}: must not start with '.' or '-'")]
    DeviceNameStart(String),
    /// A device name with a character outside `A-Z a-z 0-9 . _ -`.
    #[error("device {name:?}: {c:?} not allowed (use letters, digits, '.', '_', '-')")]
    DeviceNameChar {
        /// The name.
        name: String,
        /// The first character not allowed.
        c: char,
    },
    /// A device name the CA, broker or publisher uses.
    #[error("device {0:?}: reserved name (used by the CA, broker or publisher)")]
    DeviceNameReserved(String),
    /// The same device twice in one command.
    #[error("device {0:?} is named twice")]
    DeviceTwice(String),
    /// `certs device` without a device.
    #[error("name at least one device (SERIAL...)")]
    NoDevices,
    /// Signing or encoding a certificate or request failed.
    #[error("{what}")]
    Sign {
        /// "signing the certificate for NAME", "encoding the certificate request"…
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// The CA key file (`what` names it) is not a key we can sign with.
    #[error("{what}: the CA key is not an unencrypted RSA or ECDSA P-256 key")]
    CaKey {
        /// The CA key file.
        what: String,
        /// Why.
        #[source]
        source: Box<CertsError>,
    },
    /// The CA certificate file holds no certificate.
    #[error("{what}: no CERTIFICATE in the CA certificate file")]
    CaNoCertificate {
        /// The CA key file the pair is named by.
        what: String,
    },
    /// The CA certificate file is not valid PEM.
    #[error("{what}: invalid PEM")]
    CaPem {
        /// The CA key file the pair is named by.
        what: String,
        /// The PEM error.
        #[source]
        source: ota_tls::pem::PemError,
    },
    /// The CA key and certificate are not a pair.
    #[error("{what}: the CA key does not belong to the CA certificate")]
    CaMismatch {
        /// The CA key file.
        what: String,
    },
    /// rcgen cannot issue from the CA certificate.
    #[error("{what}: unusable CA certificate")]
    CaUnusable {
        /// The CA key file the pair is named by.
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A folder without `ca.crt` or `ca.key`.
    #[error("{} not found: run `otactl certs gen` first, or adopt a CA with `otactl certs gen --ca-cert FILE --ca-key FILE`", .0.display())]
    NoCa(PathBuf),
    /// `--ca-cert`/`--ca-key` would replace another CA in the folder.
    #[error("{} already holds another CA: pass --new-ca to replace it with {} ({LOST})", out.display(), adopt.display())]
    OtherCa {
        /// The folder.
        out: PathBuf,
        /// The CA certificate given.
        adopt: PathBuf,
    },
    /// Only one of `ca.crt` and `ca.key` is there.
    #[error("{} exists but {} does not: cannot issue from half a CA; pass --ca-cert FILE --ca-key FILE, or --new-ca to make a new CA ({LOST})", here.display(), missing.display())]
    HalfCa {
        /// The file that is there.
        here: PathBuf,
        /// The one that is not.
        missing: PathBuf,
    },
    /// The broker certificate needs an address.
    #[error("the broker needs at least one --ip or --dns")]
    NoBrokerAddress,
    /// An IP address given as `--dns`.
    #[error("--dns {0}: an IP address belongs in --ip (an IP SAN)")]
    DnsIsIp(String),
    /// A `--dns` that is not a DNS name.
    #[error("--dns {name:?}: not a valid DNS name")]
    BadDns {
        /// The name.
        name: String,
        /// rcgen's error, when it was rcgen that refused it.
        #[source]
        source: Option<rcgen::Error>,
    },
    /// A `--topic-prefix` that cannot go into the ACL.
    #[error("--topic-prefix {0:?}: must be a topic without wildcards, '%', spaces or leading/trailing '/'")]
    TopicPrefix(String),
    /// Binary data where PEM is needed.
    #[error("{}: not a PEM file (binary data; DER must be converted to PEM)", .0.display())]
    NotText(PathBuf),
    /// Malformed PEM.
    #[error("{}: not a valid PEM file", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// The PEM error.
        #[source]
        source: ota_tls::pem::PemError,
    },
    /// PEM without a certificate or key.
    #[error("{}: not a PEM file (no CERTIFICATE or PRIVATE KEY block)", .0.display())]
    NoPemBlock(PathBuf),
    /// A PEM file with the wrong kind of block for its macro.
    #[error("{}: {macro_name} needs a PEM file with {what}", path.display())]
    WrongPemKind {
        /// The file.
        path: PathBuf,
        /// The macro it is for.
        macro_name: String,
        /// "a private key only" or "certificates only".
        what: &'static str,
    },
    /// A `--*-macro` that is not a C identifier.
    #[error("macro name {0:?} is not a C identifier")]
    MacroName(String),
    /// The same macro name twice.
    #[error("macro name {0} is used twice")]
    MacroTwice(String),
    /// A serial that cannot go into the request templates.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::fsutil::FileError),
}

/// What replacing a CA costs.
const LOST: &str = "boards that trust the old CA could no longer connect until re-flashed";

impl CertsError {
    fn key<E: std::error::Error + Send + Sync + 'static>(
        doing: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |e| Self::Key {
            doing,
            source: Box::new(e),
        }
    }
}

pub(crate) type Result<T, E = CertsError> = std::result::Result<T, E>;

/// Subject CN of the publisher's client certificate (its user name at the broker).
pub const PUBLISHER_CN: &str = "otactl-publisher";
/// Default TLS port of the generated mosquitto listener (the example's 8884).
pub const DEFAULT_PORT: u16 = 8884;
/// Default validity in days (devices often have no clock to check it against).
pub const DEFAULT_DAYS: u32 = 3650;

/// The files `certs gen` writes into the output folder, in order.
pub const GEN_FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "publisher.crt",
    "publisher.key",
    "mosquitto.conf",
    "acl",
];

/// Key algorithm of generated keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (default).
    #[default]
    EcdsaP256,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
}

impl FromStr for KeyType {
    type Err = CertsError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ecdsa-p256" => Ok(Self::EcdsaP256),
            "rsa2048" => Ok(Self::Rsa2048),
            _ => Err(CertsError::UnknownKeyType(s.to_owned())),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa2048",
        })
    }
}

impl KeyType {
    /// A fresh key pair. RSA keys come from the `rsa` crate (ring cannot generate them) and are
    /// imported through PKCS#8; ring does the signing.
    ///
    /// # Errors
    /// Key generation or import failure.
    pub fn generate(self) -> Result<KeyPair> {
        match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(CertsError::key("ECDSA key")),
            Self::Rsa2048 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
                    .map_err(CertsError::key("RSA key generation"))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(CertsError::key("RSA key encoding"))?;
                let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
                KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
                    .map_err(CertsError::key("RSA key import"))
            }
        }
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Certified {
    /// Subject CN (file stem for devices).
    pub name: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// What `certs gen` makes.
#[derive(Clone, Debug)]
pub struct GenParams {
    /// IP addresses of the broker (IP SANs).
    pub ips: Vec<IpAddr>,
    /// DNS names of the broker (DNS SANs).
    pub dns: Vec<String>,
    /// Key algorithm of every key.
    pub key_type: KeyType,
    /// Validity in days, from one hour ago (clock skew).
    pub days: u32,
}

/// A CA that can sign certificates.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca: Certified,
    days: u32,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").field("ca", &self.ca.name).finish()
    }
}

fn base_params(cn: &str, days: u32) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "otactl");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(i64::from(days.max(1)));
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // no leading zero byte to strip
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(p)
}

fn leaf_params(
    cn: &str,
    days: u32,
    eku: ExtendedKeyUsagePurpose,
    rsa: bool,
) -> Result<CertificateParams> {
    let mut p = base_params(cn, days)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa {
        // TLS 1.2 RSA key exchange (mbedTLS builds may still offer it).
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = vec![eku];
    Ok(p)
}

/// Checks a device identity: it becomes a file name, a certificate CN and the MQTT user name
/// that ACL patterns substitute for `%u`.
///
/// # Errors
/// Empty, too long, a reserved name, or characters outside `A-Z a-z 0-9 . _ -`.
pub fn check_device_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        return Err(CertsError::DeviceNameLength(name.to_owned()));
    }
    if name.starts_with(['.', '-']) {
        return Err(CertsError::DeviceNameStart(name.to_owned()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(CertsError::DeviceNameChar {
            name: name.to_owned(),
            c,
        });
    }
    if matches!(name, "ca" | "server" | "publisher" | PUBLISHER_CN) {
        return Err(CertsError::DeviceNameReserved(name.to_owned()));
    }
    Ok(())
}

/// The subject CN of the first certificate in `pem`: the device name of a certificate made by
/// `otactl certs device NAME`. `None` when there is no certificate, it does not parse, or its
/// subject has no CN that is a string.
#[must_use]
pub fn subject_cn(pem: &[u8]) -> Option<String> {
    let der = pem::first_cert(pem)?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

impl Pki {
    /// A new self-signed CA.
    ///
    /// # Errors
    /// Key generation or signing failure.
    pub fn new_ca(key_type: KeyType, days: u32) -> Result<Self> {
        let key = key_type.generate()?;
        let mut p = base_params("otactl CA", days)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).map_err(|source| CertsError::Sign {
            what: "signing the CA certificate".into(),
            source,
        })?;
        let ca = Certified {
            name: "otactl CA".into(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            issuer: Issuer::new(p, key),
            ca,
            days,
        })
    }

    /// An existing CA from its certificate and key (PEM). `what` names them in errors.
    ///
    /// # Errors
    /// Unparsable PEM, or a key that does not belong to the certificate.
    pub fn load_ca(cert_pem: &str, key_pem: &str, days: u32, what: &str) -> Result<Self> {
        let key = ca_key_pair(key_pem).map_err(|e| CertsError::CaKey {
            what: what.to_owned(),
            source: Box::new(e),
        })?;
        let der = pem::first_cert(cert_pem.as_bytes())
            .ok_or_else(|| CertsError::CaNoCertificate {
                what: what.to_owned(),
            })?
            .map_err(|source| CertsError::CaPem {
                what: what.to_owned(),
                source,
            })?;
        let spki = key.subject_public_key_info();
        if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(CertsError::CaMismatch {
                what: what.to_owned(),
            });
        }
        let issuer =
            Issuer::from_ca_cert_der(&der, key).map_err(|source| CertsError::CaUnusable {
                what: what.to_owned(),
                source,
            })?;
        Ok(Self {
            issuer,
            ca: Certified {
                name: "CA".into(),
                cert_pem: cert_pem.to_string(),
                key_pem: key_pem.to_string(),
            },
            days,
        })
    }

    /// The kind of the CA's key: what certificates issued from it use unless told otherwise.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        if self.issuer.key().algorithm() == &rcgen::PKCS_RSA_SHA256 {
            KeyType::Rsa2048
        } else {
            KeyType::EcdsaP256
        }
    }

    fn sign(&self, cn: &str, key_type: KeyType, params: CertificateParams) -> Result<Certified> {
        let key = key_type.generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| CertsError::Sign {
                what: format!("signing the certificate for {cn}"),
                source,
            })?;
        Ok(Certified {
            name: cn.to_string(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The broker's server certificate: IP and DNS SANs, serverAuth. CN = first name or IP.
    ///
    /// # Errors
    /// No address given, an invalid DNS name, or signing failure.
    pub fn server(&self, ips: &[IpAddr], dns: &[String], key_type: KeyType) -> Result<Certified> {
        let cn = match (dns.first(), ips.first()) {
            (Some(d), _) => d.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(CertsError::NoBrokerAddress),
        };
        let rsa = key_type == KeyType::Rsa2048;
        let mut p = leaf_params(&cn, self.days, ExtendedKeyUsagePurpose::ServerAuth, rsa)?;
        p.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        for d in dns {
            if d.parse::<IpAddr>().is_ok() {
                return Err(CertsError::DnsIsIp(d.clone()));
            }
            let bad = |source| CertsError::BadDns {
                name: d.clone(),
                source,
            };
            rustls::pki_types::DnsName::try_from(d.as_str()).map_err(|_| bad(None))?;
            let name = d.clone().try_into().map_err(|e| bad(Some(e)))?;
            p.subject_alt_names.push(SanType::DnsName(name));
        }
        self.sign(&cn, key_type, p)
    }

    /// A client certificate (clientAuth) with subject CN `cn`.
    ///
    /// # Errors
    /// Signing failure.
    pub fn client(&self, cn: &str, key_type: KeyType) -> Result<Certified> {
        let rsa = key_type == KeyType::Rsa2048;
        let p = leaf_params(cn, self.days, ExtendedKeyUsagePurpose::ClientAuth, rsa)?;
        self.sign(cn, key_type, p)
    }

    /// A device's client certificate; `serial` is checked with [`check_device_name`].
    ///
    /// # Errors
    /// A bad device name, or signing failure.
    pub fn device(&self, serial: &str, key_type: KeyType) -> Result<Certified> {
        check_device_name(serial)?;
        self.client(serial, key_type)
    }
}

/// A CA's private key from PEM: PKCS#8, or the PKCS#1 `RSA PRIVATE KEY` (OpenSSL 1.1's `genrsa`,
/// as in generate_ssl_cert.sh) or SEC1 `EC PRIVATE KEY` (P-256) that rcgen cannot read itself.
fn ca_key_pair(pem: &str) -> Result<KeyPair> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let der = pem::private_key(pem.as_bytes())
        .map_err(CertsError::key("invalid PEM"))?
        .ok_or(CertsError::NoPrivateKey)?;
    let pkcs8 = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der())
                .map_err(CertsError::key("unreadable RSA key"))?;
            key.to_pkcs8_der()
                .map_err(CertsError::key("RSA key encoding"))?
                .as_bytes()
                .to_vec()
        }
        PrivateKeyDer::Sec1(k) => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::from_sec1_der(k.secret_sec1_der())
                .map_err(CertsError::key("not a P-256 key"))?;
            key.to_pkcs8_der()
                .map_err(CertsError::key("EC key encoding"))?
                .as_bytes()
                .to_vec()
        }
        _ => return Err(CertsError::UnsupportedKeyFormat),
    };
    KeyPair::try_from(&PrivatePkcs8KeyDer::from(pkcs8)).map_err(CertsError::key("unsupported key"))
}

/// The CA, server and publisher material of `certs gen`.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The CA.
    pub ca: Certified,
    /// The broker.
    pub server: Certified,
    /// The publisher (CN [`PUBLISHER_CN`]).
    pub publisher: Certified,
}

/// Makes a CA, the broker's certificate and the publisher's, in memory.
///
/// # Errors
/// See [`Pki::server`].
pub fn generate(p: &GenParams) -> Result<(Pki, Generated)> {
    let pki = Pki::new_ca(p.key_type, p.days)?;
    let server = pki.server(&p.ips, &p.dns, p.key_type)?;
    let publisher = pki.client(PUBLISHER_CN, p.key_type)?;
    let g = Generated {
        ca: pki.ca.clone(),
        server,
        publisher,
    };
    Ok((pki, g))
}

/// A new private key and a PKCS#10 certificate signing request (subject CN `name`), both PEM,
/// for a CA that signs requests: AWS IoT Core's create-certificate-from-csr issues the device
/// certificate without the key ever leaving this machine.
///
/// # Errors
/// A bad name (see [`check_device_name`]), key generation or signing failure.
pub fn csr(name: &str, key_type: KeyType) -> Result<(String, String)> {
    check_device_name(name)?;
    let key = key_type.generate()?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    let req = p
        .serialize_request(&key)
        .map_err(|source| CertsError::Sign {
            what: "signing the certificate request".into(),
            source,
        })?;
    let pem = req.pem().map_err(|source| CertsError::Sign {
        what: "encoding the certificate request".into(),
        source,
    })?;
    Ok((key.serialize_pem(), pem))
}

#[cfg(test)]
mod tests;
