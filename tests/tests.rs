//! otactl integration tests: one binary (see Cargo.toml `[[test]]`).

mod cli;
mod image;
mod publish;
mod util;
