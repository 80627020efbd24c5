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
use std::str::FromStr;

use anyhow::{bail, Context, Result};
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
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ecdsa-p256" => Ok(Self::EcdsaP256),
            "rsa2048" => Ok(Self::Rsa2048),
            _ => bail!("unknown key type {s:?}: use ecdsa-p256 or rsa2048"),
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
            Self::EcdsaP256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("ECDSA key")
            }
            Self::Rsa2048 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
                    .context("RSA key generation")?;
                let der = key.to_pkcs8_der().context("RSA key encoding")?;
                let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
                KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
                    .context("RSA key import")
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
        bail!("device {name:?}: must be 1 to 64 characters");
    }
    if name.starts_with(['.', '-']) {
        bail!("device {name:?}: must not start with '.' or '-'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!("device {name:?}: {c:?} not allowed (use letters, digits, '.', '_', '-')");
    }
    if matches!(name, "ca" | "server" | "publisher" | PUBLISHER_CN) {
        bail!("device {name:?}: reserved name (used by the CA, broker or publisher)");
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
        let cert = p.self_signed(&key).context("signing the CA certificate")?;
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
        let key = ca_key_pair(key_pem).with_context(|| {
            format!("{what}: the CA key is not an unencrypted RSA or ECDSA P-256 key")
        })?;
        let der = pem::first_cert(cert_pem.as_bytes())
            .with_context(|| format!("{what}: no CERTIFICATE in the CA certificate file"))?
            .with_context(|| format!("{what}: invalid PEM"))?;
        let spki = key.subject_public_key_info();
        if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            bail!("{what}: the CA key does not belong to the CA certificate");
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .with_context(|| format!("{what}: unusable CA certificate"))?;
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
            .with_context(|| format!("signing the certificate for {cn}"))?;
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
            (None, None) => bail!("the broker needs at least one --ip or --dns"),
        };
        let rsa = key_type == KeyType::Rsa2048;
        let mut p = leaf_params(&cn, self.days, ExtendedKeyUsagePurpose::ServerAuth, rsa)?;
        p.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        for d in dns {
            if d.parse::<IpAddr>().is_ok() {
                bail!("--dns {d}: an IP address belongs in --ip (an IP SAN)");
            }
            let bad = || format!("--dns {d:?}: not a valid DNS name");
            rustls::pki_types::DnsName::try_from(d.as_str()).map_err(|_| anyhow::anyhow!(bad()))?;
            let name = d.clone().try_into().with_context(bad)?;
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
        .context("invalid PEM")?
        .context("no PRIVATE KEY found")?;
    let pkcs8 = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der())
                .context("unreadable RSA key")?;
            key.to_pkcs8_der()
                .context("RSA key encoding")?
                .as_bytes()
                .to_vec()
        }
        PrivateKeyDer::Sec1(k) => {
            use p256::pkcs8::EncodePrivateKey;
            let key =
                p256::SecretKey::from_sec1_der(k.secret_sec1_der()).context("not a P-256 key")?;
            key.to_pkcs8_der()
                .context("EC key encoding")?
                .as_bytes()
                .to_vec()
        }
        _ => bail!("unsupported key format"),
    };
    KeyPair::try_from(&PrivatePkcs8KeyDer::from(pkcs8)).context("unsupported key")
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
        .context("signing the certificate request")?;
    let pem = req.pem().context("encoding the certificate request")?;
    Ok((key.serialize_pem(), pem))
}

#[cfg(test)]
mod tests;
