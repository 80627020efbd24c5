//! otactl integration tests: one binary (see Cargo.toml `[[test]]`).

mod certs;
mod image;
mod publish;
mod util;
