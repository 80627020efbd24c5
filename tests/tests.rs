//! otactl integration tests: one binary (see Cargo.toml `[[test]]`).

mod image;
mod publish;
mod util;
