//! `otactl cert-to-c`: PEM files as C string literals.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use otactl::certs::{self, CNames};
use otactl::fsutil::{self, Mode, Overwrite};

use super::Ctx;

/// Print PEM files as C string literals for `ota_app_config.h`, or write a header.
///
/// Each line of a file becomes "LINE\n", with a trailing backslash on every line but the last,
/// so the literal is byte for byte the file. Input that is not PEM is an error naming the file.
/// With --header, the three files are the root CA certificate, the client certificate and the
/// client key, in that order. Examples:
///
///   otactl cert-to-c certs/ca.crt
///   otactl cert-to-c --header tls_credentials.h certs/ca.crt certs/dev1.crt certs/dev1.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct Cmd {
    /// PEM files (with --header: CA certificate, client certificate, client key).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Write a C header defining the three macros to this file instead of printing.
    #[arg(long, value_name = "OUT.h")]
    header: Option<PathBuf>,
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
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let mut contents = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            certs::c_text::pem_kind(f, &data)?;
            contents.push(data);
        }
        let Some(out) = &self.header else {
            let mut stdout = std::io::stdout().lock();
            let written = self.files.iter().zip(&contents).try_for_each(|(f, data)| {
                let name = f.display().to_string().replace("*/", "*\\/");
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
        let names = CNames {
            ca: self.ca_name.clone(),
            cert: self.cert_name.clone(),
            key: self.key_name.clone(),
        };
        let text = certs::c_header(
            &names,
            [
                (ca.as_path(), contents[0].as_slice()),
                (cert.as_path(), contents[1].as_slice()),
                (key.as_path(), contents[2].as_slice()),
            ],
        )?;
        // The header holds a private key: keep it as private as the key file.
        fsutil::write_atomic(
            out,
            text.as_bytes(),
            Mode::Private,
            Overwrite::from_force(self.force),
        )
    }
}
