//! `otactl`: parse → logging → TLS provider → dispatch → exit code.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    let (cli, config) = match cli::parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(cli::ParseError::Clap(e)) => e.exit(),
        Err(cli::ParseError::Help(text)) => {
            cli::stdout_line(format_args!("{text}"));
            return ExitCode::SUCCESS;
        }
        Err(cli::ParseError::Config(e)) => {
            eprintln!("error: {}", cli::error_text(&e));
            return ExitCode::from(2);
        }
    };
    init_logging(cli.quiet, cli.verbose);
    // Every rustls config is built with an explicit provider (otactl::mqtt); installing the same
    // one as the process default keeps any dependency from picking another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli::run(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(r) = e.downcast_ref::<otactl::Rejected>() {
                eprintln!("rejected: {r}");
                ExitCode::from(1)
            } else {
                eprintln!("error: {}", cli::error_text(&e));
                ExitCode::from(2)
            }
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let deps = if verbose >= 2 { level } else { "warn" };
    // rumqttd (the embedded broker) reports its tracing spans as ERROR-level log records even
    // when nothing is wrong; it speaks only from -vv on.
    let broker = if verbose >= 2 { level } else { "off" };
    let filter = format!(
        "{deps},otactl={level},ota_core={level},ota_host={level},ota_tls={level},rumqttd={broker}"
    );
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .format_timestamp(None)
        .format_target(false)
        .init();
}
