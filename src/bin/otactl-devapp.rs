//! The device application the simulated board boots: `ota_host::app`. Its version, LED period
//! and `TEST_REVERT` behaviour come from the build record at the end of the executable
//! (`ota_host::app::record`), which `otactl demo` appends before signing. Installed next to
//! `otactl`, where `otactl demo` finds it.

fn main() -> std::process::ExitCode {
    ota_host::app::main()
}
