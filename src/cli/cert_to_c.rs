//! `otactl cert-to-c`: PEM files as C string literals.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use otactl::certs::{self, check, CNames};
use otactl::fsutil::{self, Mode, Overwrite};

use super::Ctx;

/// Print PEM files as C string literals for `ota_app_config.h`, or write a header.
///
/// Each line of a file becomes "LINE\n", with a trailing backslash on every line but the last,
/// so the literal is byte for byte the file. Input that is not PEM is an error naming the file.
/// With --header, the three files are the root CA certificate, the client certificate and the
/// client key, in that order, and the header also overrides the OTA agent's request templates
/// (CY_OTA_SUBSCRIBE_UPDATES_AVAIL, CY_OTA_DOWNLOAD_REQUEST, CY_OTA_DOWNLOAD_DIRECT_REQUEST) so
/// the board sends its own SerialNumber instead of the example's ABC213450001: the client
/// certificate's CN (NAME of `otactl certs device NAME`), or --serial. Certificates issued by
/// AWS IoT Core all have the CN "AWS IoT Certificate": give those boards --serial. The header's
/// comment says where to include it (configs/cy_ota_config.h). Before writing, the three files
/// are checked as `otactl certs check` does: a key of another certificate, a CA that did not
/// issue the certificate, a broker's certificate in a client's place or an expired one is
/// refused; old but working material (X.509 version 1) gets a warning.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  otactl cert-to-c certs/ca.crt\n  otactl cert-to-c --header ota_device.h certs/ca.crt certs/dev1.crt certs/dev1.key\n  otactl cert-to-c --header ota_device.h --serial board-0001 AmazonRootCA1.pem \\\n    board-0001.crt board-0001.key"
)]
pub struct Cmd {
    /// PEM files (with --header: CA certificate, client certificate, client key).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Write a C header defining the three macros and the request templates to this file
    /// instead of printing.
    #[arg(long, value_name = "OUT.h")]
    header: Option<PathBuf>,
    /// The SerialNumber the board sends (default: the client certificate's CN). At most 31
    /// bytes; no '"', '\', '%' or control characters. Command line only: every board needs its
    /// own.
    #[arg(long, value_name = "NAME")]
    serial: Option<String>,
    /// Write only the three certificate macros: the board keeps sending the example's
    /// SerialNumber ABC213450001, which the publisher cannot tell from other boards.
    #[arg(long)]
    certs_only: bool,
    /// Macro name for the CA certificate.
    #[arg(long, value_name = "NAME", default_value = "ROOT_CA_CERTIFICATE")]
    ca_name: String,
    /// Macro name for the client certificate.
    #[arg(long, value_name = "NAME", default_value = "CLIENT_CERTIFICATE")]
    cert_name: String,
    /// Macro name for the client key.
    #[arg(long, value_name = "NAME", default_value = "CLIENT_KEY")]
    key_name: String,
    /// Replace an existing header file.
    #[arg(long)]
    force: bool,
    /// The CA certificate only verifies the broker; another CA issued the client certificate
    /// (AWS IoT Core: AmazonRootCA1.pem, while AWS's intermediate issues device certificates),
    /// so it is not checked against the CA.
    #[arg(long)]
    broker_ca_only: bool,
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        if self.header.is_none() && (self.serial.is_some() || self.certs_only) {
            bail!("--serial and --certs-only apply only with --header");
        }
        if self.certs_only && self.serial.is_some() {
            bail!("--serial and --certs-only exclude each other");
        }
        if let Some(s) = &self.serial {
            certs::check_serial(s).context("--serial")?;
        }
        let mut contents = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            certs::c_text::pem_kind(f, &data)?;
            contents.push(data);
        }
        let Some(out) = &self.header else {
            let mut stdout = std::io::stdout().lock();
            let written = self.files.iter().zip(&contents).try_for_each(|(f, data)| {
                let name = certs::c_text::comment_safe(&f.display().to_string());
                write!(stdout, "/* {name} */\n{}\n", certs::c_literal(data))
            });
            if let Err(e) = written.and_then(|()| stdout.flush()) {
                super::exit_on_stdout_error(&e);
            }
            return Ok(());
        };
        let [ca, cert, key] = &self.files[..] else {
            bail!(
                "--header needs exactly three files: CA certificate, client certificate, client key ({} given)",
                self.files.len()
            );
        };
        self.check_set([ca, cert, key], &contents, ctx)?;
        let names = CNames {
            ca: self.ca_name.clone(),
            cert: self.cert_name.clone(),
            key: self.key_name.clone(),
        };
        let serial = match (&self.serial, self.certs_only) {
            (_, true) => None,
            (Some(s), false) => Some(s.clone()),
            (None, false) => Some(serial_from_cn(cert, &contents[1])?),
        };
        let header_name = out
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = certs::c_header(
            &names,
            [
                (ca.as_path(), contents[0].as_slice()),
                (cert.as_path(), contents[1].as_slice()),
                (key.as_path(), contents[2].as_slice()),
            ],
            serial.as_deref().map(|s| (s, header_name.as_str())),
        )?;
        // The header holds a private key: keep it as private as the key file.
        fsutil::write_atomic(
            out,
            text.as_bytes(),
            Mode::Private,
            Overwrite::from_force(self.force),
        )?;
        Ok(())
    }
}

impl Cmd {
    /// The `certs check` checks of a client set: problems refuse it, warnings are shown.
    fn check_set(&self, files: [&PathBuf; 3], contents: &[Vec<u8>], ctx: &Ctx) -> Result<()> {
        let opts = check::Options {
            role: check::Role::Client,
            broker: None,
            chain: !self.broker_ca_only,
            now: time::OffsetDateTime::now_utc(),
        };
        let pem = |i: usize| check::Pem {
            path: files[i],
            data: &contents[i],
        };
        let report = check::check(pem(0), pem(1), pem(2), &opts)?;
        if !ctx.quiet {
            for w in report.of(check::Severity::Warning) {
                log::warn!("{}", w.text);
            }
        }
        if !report.usable() {
            let mut text = super::certs::problems(&report);
            if report.not_issued_by_ca {
                text.push_str(
                    " (if the CA only verifies the broker and another CA issued the client \
                     certificate, as on AWS IoT Core, pass --broker-ca-only)",
                );
            }
            bail!("these files do not make a board's TLS set, nothing written: {text}");
        }
        Ok(())
    }
}

/// The device's SerialNumber from its client certificate's CN, with an error that says how to
/// choose one instead.
fn serial_from_cn(cert: &Path, pem: &[u8]) -> Result<String> {
    let instead = "pass --serial NAME, or --certs-only for a header without request templates";
    let cn = certs::subject_cn(pem).with_context(|| {
        format!(
            "{}: no subject CN to use as the board's SerialNumber; {instead}",
            cert.display()
        )
    })?;
    certs::check_serial(&cn).with_context(|| {
        format!(
            "{}: the certificate's CN cannot be the board's SerialNumber ({instead})",
            cert.display()
        )
    })?;
    Ok(cn)
}
