//! The simulated board: `ota_host::board` (see `otactl-simboard --help`). Installed next to
//! `otactl`, where `otactl demo` finds it.

fn main() -> std::process::ExitCode {
    ota_host::board::cli::main()
}
