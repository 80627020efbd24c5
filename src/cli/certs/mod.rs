//! `otactl certs gen`, `certs server`, `certs device`, `certs csr` and `certs check`.

mod check;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use otactl::certs::{self, BrokerConf, CaOutcome, GenOptions, GenParams, KeyType};

use super::Ctx;
pub(crate) use check::problems;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    Gen(GenCmd),
    Server(ServerCmd),
    Device(DeviceCmd),
    Csr(CsrCmd),
    Check(check::CheckCmd),
}

/// Make a CA, the broker's and the publisher's certificates, mosquitto.conf and acl.
///
/// Besides the CA: the broker's server certificate (real IP and DNS SANs, serverAuth), the
/// publisher's client certificate (CN otactl-publisher), a mosquitto.conf (mutual TLS on
/// --port, client certificate CN as user name, no anonymous access) and an ACL.
///
/// Writes ca.crt ca.key server.crt server.key publisher.crt publisher.key mosquitto.conf acl
/// into --out; keys are mode 0600. The CA is kept: when --out holds ca.crt and ca.key, the
/// other files are issued from them, so boards flashed with that CA keep working. --force
/// replaces the other files, never the CA; only --new-ca makes a new one where one exists.
/// --ca-cert/--ca-key adopt an existing CA (for example mosquitto_ca.crt and mosquitto_ca.key
/// of Infineon's generate_ssl_cert.sh).
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl certs gen --ip 192.168.0.10 --dns broker.local --out certs/\n  mosquitto -c certs/mosquitto.conf\n  otactl certs gen --ip 192.168.0.10 --ca-cert mosquitto_ca.crt --ca-key mosquitto_ca.key"
)]
pub struct GenCmd {
    #[command(flatten)]
    broker: BrokerNames,
    /// TLS port of the mosquitto listener.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Make mosquitto listen on this address only (default: all interfaces).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key algorithm: ecdsa-p256 (default) or rsa2048.
    #[arg(long, value_name = "TYPE", value_parser = ["ecdsa-p256", "rsa2048"])]
    key_type: Option<String>,
    /// Validity of every certificate, in days (default 3650).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// Company topic prefix (COMPANY_TOPIC_PREPEND) the ACL grants.
    #[arg(long, value_name = "PREFIX")]
    topic_prefix: Option<String>,
    /// Replace the existing broker and publisher files and the broker config (issued from the
    /// existing CA; the CA itself is kept).
    #[arg(long)]
    force: bool,
    /// Make a new CA even where --out holds one (or, with --ca-cert/--ca-key, replace it):
    /// boards flashed with the old CA can no longer connect until re-flashed.
    #[arg(long)]
    new_ca: bool,
    /// Adopt this CA certificate (PEM) instead of making one; copied to --out as ca.crt.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The adopted CA's private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 P-256); copied to --out
    /// as ca.key.
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
}

/// Issue a new broker certificate from the existing CA (only server.crt and server.key).
///
/// For a new broker address or name: every device certificate stays valid, because the CA in
/// --out (ca.crt, ca.key) is kept. Replaces server.crt and server.key; mosquitto reads them at
/// its next start. Key type: the CA's unless --key-type. Example:
///
///   otactl certs server --ip 192.168.0.20 --dns broker.local --out certs/
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServerCmd {
    #[command(flatten)]
    broker: BrokerNames,
    /// Folder with ca.crt and ca.key; server.crt and server.key go there too.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key algorithm: ecdsa-p256 or rsa2048 (default: the CA's).
    #[arg(long, value_name = "TYPE", value_parser = ["ecdsa-p256", "rsa2048"])]
    key_type: Option<String>,
    /// Validity in days (default 3650).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
}

/// Make client certificates for devices, signed by the CA of `certs gen`.
///
/// Writes SERIAL.crt and SERIAL.key for each device, signed by ca.crt/ca.key in --out.
///
/// SERIAL becomes the certificate's subject CN, which mosquitto (use_identity_as_username)
/// uses as the device's user name.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl certs device board-0001 board-0002 --out certs/\n  otactl cert-to-c --header ota_tls.h certs/ca.crt certs/board-0001.crt certs/board-0001.key"
)]
pub struct DeviceCmd {
    /// Device identities (letters, digits, '.', '_', '-').
    #[arg(value_name = "SERIAL", required = true)]
    serials: Vec<String>,
    /// Folder with ca.crt and ca.key; the device files go there too.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key algorithm: ecdsa-p256 (default) or rsa2048.
    #[arg(long, value_name = "TYPE", value_parser = ["ecdsa-p256", "rsa2048"])]
    key_type: Option<String>,
    /// Validity in days (default 3650).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// Replace existing device keys and certificates.
    #[arg(long)]
    force: bool,
}

/// Make a device key and a certificate signing request (CSR) for a CA that signs requests.
///
/// Writes NAME.key (PKCS#8 PEM, mode 0600) and NAME.csr (PKCS#10 PEM, subject CN NAME) into
/// --out. For AWS IoT Core: `aws iot create-certificate-from-csr` issues the device certificate
/// from NAME.csr, so the private key never leaves this machine (AWS sets the certificate's own
/// subject; its CN is "AWS IoT Certificate"). Nothing is replaced without --force. Example:
///
///   otactl certs csr board-0001 --out certs/
///   aws iot create-certificate-from-csr --certificate-signing-request file://certs/board-0001.csr \
///       --set-as-active --query certificatePem --output text > certs/board-0001.crt
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CsrCmd {
    /// Device identity (letters, digits, '.', '_', '-'): file names and the request's CN.
    #[arg(value_name = "NAME")]
    name: String,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key algorithm: ecdsa-p256 (default) or rsa2048.
    #[arg(long, value_name = "TYPE", value_parser = ["ecdsa-p256", "rsa2048"])]
    key_type: Option<String>,
    /// Replace an existing key and request.
    #[arg(long)]
    force: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self {
            Self::Gen(c) => c.run(ctx),
            Self::Server(c) => c.run(ctx),
            Self::Device(c) => c.run(ctx),
            Self::Csr(c) => c.run(ctx),
            Self::Check(c) => c.run(ctx),
        }
    }
}

fn key_type(s: Option<&str>) -> Result<KeyType> {
    Ok(s.map_or(Ok(KeyType::default()), str::parse)?)
}

fn out_dir(out: Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| PathBuf::from("certs"))
}

fn report(ctx: &Ctx, files: &[PathBuf]) {
    if !ctx.quiet {
        for f in files {
            outln!("wrote {}", f.display());
        }
    }
}

/// The broker's addresses: what `certs gen` and `certs server` put in its certificate's SANs.
#[derive(Debug, Args)]
struct BrokerNames {
    /// IP address devices use to reach the broker (an IP SAN); repeat for several.
    #[arg(long, value_name = "ADDR")]
    ip: Vec<IpAddr>,
    /// DNS name of the broker (a DNS SAN); repeat for several.
    #[arg(long, value_name = "NAME")]
    dns: Vec<String>,
    /// Broker address, IP or name (sorted into --ip / --dns); repeat for several.
    #[arg(long, value_name = "HOST")]
    host: Vec<String>,
}

impl BrokerNames {
    /// The IP and DNS SANs, with --host sorted into them.
    fn sans(&self) -> Result<(Vec<IpAddr>, Vec<String>)> {
        let (mut ips, mut dns) = (self.ip.clone(), self.dns.clone());
        for h in &self.host {
            match h.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(h.clone()),
            }
        }
        ips.dedup();
        dns.dedup();
        if ips.is_empty() && dns.is_empty() {
            bail!("name the broker: --ip ADDR and/or --dns NAME (what devices connect to)");
        }
        Ok((ips, dns))
    }
}

impl ServerCmd {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let (ips, dns) = self.broker.sans()?;
        let key_type = self.key_type.as_deref().map(str::parse).transpose()?;
        let files = certs::write_server(
            &out_dir(self.out),
            &ips,
            &dns,
            key_type,
            self.days.unwrap_or(certs::DEFAULT_DAYS),
        )?;
        report(ctx, &files);
        if !ctx.quiet {
            outln!(
                "issued from the existing CA: device certificates stay valid; restart the broker"
            );
        }
        Ok(())
    }
}

impl GenCmd {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let (ips, dns) = self.broker.sans()?;
        let params = GenParams {
            ips,
            dns,
            key_type: key_type(self.key_type.as_deref())?,
            days: self.days.unwrap_or(certs::DEFAULT_DAYS),
        };
        let broker = BrokerConf {
            port: self.port.unwrap_or(certs::DEFAULT_PORT),
            bind: self.bind,
            topic_prefix: self
                .topic_prefix
                .clone()
                .unwrap_or_else(|| ota_core::protocol::topics::PREFIX_APP.to_string()),
            publisher: certs::PUBLISHER_CN.to_string(),
            user: None,
        };
        broker.check()?;
        let out = out_dir(self.out);
        let opts = GenOptions {
            force: self.force,
            new_ca: self.new_ca,
            adopt: self.ca_cert.zip(self.ca_key),
            key_type_of_ca: self.key_type.is_none(),
        };
        let done = certs::write_gen_with(&out, &params, &broker, &opts)?;
        report(ctx, &done.written);
        match done.ca {
            CaOutcome::Replaced => log::warn!(
                "replaced the CA in {}: boards flashed with the old one cannot connect until \
                 re-flashed; issue their certificates again (otactl certs device NAME --force)",
                out.display()
            ),
            CaOutcome::Kept if !ctx.quiet => {
                outln!("kept the CA in {} and issued from it", out.display());
            }
            _ => {}
        }
        if !ctx.quiet {
            outln!(
                "start the broker: mosquitto -c {}",
                conf_path(&out).display()
            );
        }
        Ok(())
    }
}

fn conf_path(out: &Path) -> PathBuf {
    std::fs::canonicalize(out)
        .unwrap_or_else(|_| out.to_path_buf())
        .join("mosquitto.conf")
}

impl CsrCmd {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let files = certs::write_csr(
            &out_dir(self.out),
            &self.name,
            key_type(self.key_type.as_deref())?,
            self.force,
        )?;
        report(ctx, &files);
        Ok(())
    }
}

impl DeviceCmd {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let files = certs::write_devices(
            &out_dir(self.out),
            &self.serials,
            key_type(self.key_type.as_deref())?,
            self.days.unwrap_or(certs::DEFAULT_DAYS),
            self.force,
        )?;
        report(ctx, &files);
        Ok(())
    }
}
