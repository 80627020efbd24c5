//! The simulated board: `firmware::board` (see `otactl-simboard --help`). Installed next to
//! `otactl`, where `otactl demo` finds it.

fn main() -> std::process::ExitCode {
    firmware::board::cli::main()
}
