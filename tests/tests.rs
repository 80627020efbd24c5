//! otactl integration tests: one binary (see Cargo.toml `[[test]]`).

mod aws;
mod certs;
mod cli;
mod device;
mod e2e;
mod image;
mod publish;
mod util;
