//! `otactl certs check`, and the same checks for `otactl cert-to-c --header`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use otactl::certs::check::{self, Options, Pem, Report, Role, Severity};
use otactl::Rejected;

use crate::cli::Ctx;

/// Say whether a CA certificate, a certificate and its key belong together.
///
/// Checks, in plain words: the key belongs to the certificate; the certificate is signed by the
/// CA; its usage fits (a client's certificate for a board or the publisher, --server for the
/// broker's); a broker certificate names the address clients use (--broker); the validity dates;
/// the X.509 version (version 1 client certificates, as Infineon's generate_ssl_cert.sh makes
/// them, work and get a warning). Exit code 0: usable (warnings allowed); 1: not usable; 2: a
/// file cannot be read. Examples:
///
///   otactl certs check --ca certs/ca.crt --cert certs/board-0001.crt --key certs/board-0001.key
///   otactl certs check --server --broker 192.168.0.10 --ca mosquitto_ca.crt \
///       --cert mosquitto_server.crt --key mosquitto_server.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckCmd {
    /// The CA certificate (PEM).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The certificate (PEM; a chain starts with it).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The address clients reach the broker at (IP, name, host:port or URL); checked against the
    /// names of the broker's certificate (with --server).
    #[arg(long, value_name = "ADDRESS")]
    broker: Option<String>,
    /// Check a board's or the publisher's client pair (the default).
    #[arg(long, conflicts_with = "server")]
    client: bool,
    /// Check the broker's pair.
    #[arg(long)]
    server: bool,
}

impl CheckCmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let role = if self.server {
            Role::Server
        } else {
            Role::Client
        };
        let opts = Options {
            role,
            broker: self.broker.clone(),
            chain: true,
            now: time::OffsetDateTime::now_utc(),
        };
        let report = run_check([&self.ca, &self.cert, &self.key], &opts)?;
        for f in &report.findings {
            if !ctx.quiet || f.severity >= Severity::Warning {
                outln!("{}: {}", f.severity, f.text);
            }
        }
        if report.usable() {
            if !ctx.quiet {
                outln!(
                    "yes: {} and {} belong together and to the CA {}, usable as a {role} pair",
                    self.cert.display(),
                    self.key.display(),
                    self.ca.display()
                );
            }
            Ok(())
        } else {
            Err(Rejected(format!("no: {}", problems(&report))).into())
        }
    }
}

/// Reads the three files and checks them.
fn run_check(files: [&Path; 3], opts: &Options) -> Result<Report> {
    let mut data = Vec::with_capacity(3);
    for f in files {
        data.push(std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?);
    }
    let pem = |i: usize| Pem {
        path: files[i],
        data: &data[i],
    };
    Ok(check::check(pem(0), pem(1), pem(2), opts)?)
}

/// The problems of a report, one sentence each.
pub(crate) fn problems(report: &Report) -> String {
    report
        .of(Severity::Problem)
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join("; and ")
}
