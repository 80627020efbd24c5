//! `otactl certs gen`, `otactl certs device` and `otactl certs csr`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use otactl::certs::{self, BrokerConf, GenParams, KeyType};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    Gen(GenCmd),
    Device(DeviceCmd),
    Csr(CsrCmd),
}

/// Make a CA, the broker's and the publisher's certificates, mosquitto.conf and acl.
///
/// Besides the CA: the broker's server certificate (real IP and DNS SANs, serverAuth), the
/// publisher's client certificate (CN otactl-publisher), a mosquitto.conf (mutual TLS on
/// --port, client certificate CN as user name, no anonymous access) and an ACL.
///
/// Writes ca.crt ca.key server.crt server.key publisher.crt publisher.key mosquitto.conf acl
/// into --out; keys are mode 0600. Nothing is replaced without --force.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl certs gen --ip 192.168.0.10 --dns broker.local --out certs/\n  mosquitto -c certs/mosquitto.conf"
)]
pub struct GenCmd {
    /// IP address devices use to reach the broker (an IP SAN); repeat for several.
    #[arg(long, value_name = "ADDR")]
    ip: Vec<IpAddr>,
    /// DNS name of the broker (a DNS SAN); repeat for several.
    #[arg(long, value_name = "NAME")]
    dns: Vec<String>,
    /// Broker address, IP or name (sorted into --ip / --dns); repeat for several.
    #[arg(long, value_name = "HOST")]
    host: Vec<String>,
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
    /// Replace existing keys, certificates and broker config.
    #[arg(long)]
    force: bool,
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
            Self::Device(c) => c.run(ctx),
            Self::Csr(c) => c.run(ctx),
        }
    }
}

fn key_type(s: Option<&str>) -> Result<KeyType> {
    s.map_or(Ok(KeyType::default()), str::parse)
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

impl GenCmd {
    fn addresses(&self) -> Result<(Vec<IpAddr>, Vec<String>)> {
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

    fn run(self, ctx: &Ctx) -> Result<()> {
        let (ips, dns) = self.addresses()?;
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
                .unwrap_or_else(|| firmware::protocol::topics::PREFIX_APP.to_string()),
            publisher: certs::PUBLISHER_CN.to_string(),
            user: None,
        };
        broker.check()?;
        let out = out_dir(self.out);
        let files = certs::write_gen(&out, &params, &broker, self.force)?;
        report(ctx, &files);
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
