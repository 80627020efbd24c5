//! The TLS flags of the commands that connect to the broker (`publish`, `device`).

use std::path::PathBuf;

use clap::Args;
use otactl::mqtt::TlsSettings;

/// `--ca`, `--cert`, `--client-key`, `--tls-server-name`, `--insecure`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// CA certificate (PEM) that signed the broker's certificate (mqtts://).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Verify the broker's certificate for this name instead of the --broker host, for a
    /// certificate that does not name the address (Infineon's generate_ssl_cert.sh:
    /// mosquitto_server). The chain is still verified against --ca.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Do not verify the broker's certificate (explicit opt-out; never the default).
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// The settings [`otactl::mqtt`] builds the client configuration from.
    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.client_key.clone(),
            server_name: self.tls_server_name.clone(),
            insecure: self.insecure,
        }
    }
}
