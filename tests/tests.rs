//! otactl integration tests: one binary (see Cargo.toml `[[test]]`).

mod publish;
mod util;
