//! `otactl job`: print the job document ("Update Available") for a signed image.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ota_core::protocol::AppVersion;
use otactl::assemble::{read_image_file, verify_image};
use otactl::publish::{load_public_key, JobTemplate};

use super::Ctx;

/// Print the job document for a signed image, with the example's fields and spelling.
///
/// Version comes from the image's MCUboot header.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  otactl job --image app.signed.bin --board APP_CY8CPROTO_062S2_43439 --key signing.pem"
)]
pub struct Cmd {
    /// The signed image: the .bin or .hex that `otactl sign` wrote.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Board string of the devices (CY_TARGET_BOARD_STRING), e.g. APP_CY8CPROTO_062S2_43439.
    #[arg(long)]
    board: Option<String>,
    /// Check the image's signature with this key (private or public PEM) first.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// UniqueTopicName to put in the document (the publisher fills in each device's).
    #[arg(long, default_value = "replace")]
    topic: String,
    /// Job template (default: the built-in copy of the example's ota_update.json).
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
}

impl Cmd {
    pub fn run(self, _ctx: &Ctx) -> Result<()> {
        let path = self.image.context("--image is required")?;
        let board = self.board.context("--board is required")?;
        if let Some(w) = super::board::check(&board).map_err(|e| anyhow::anyhow!("--board: {e}"))? {
            log::warn!("{w}");
        }
        let data = read_image_file(&path)?;
        let keys = match &self.key {
            Some(k) => vec![load_public_key(k)?],
            None => Vec::new(),
        };
        let verified = verify_image(&data, &keys)
            .map_err(|reason| otactl::Rejected(format!("{}: {reason}", path.display())))?;
        let template = match &self.template {
            Some(t) => JobTemplate::load(t)?,
            None => JobTemplate::default(),
        };
        let version = AppVersion::from_image(verified.header.version);
        let doc = template.render(&board, version, &self.topic)?;
        outln!("{}", String::from_utf8_lossy(&doc));
        Ok(())
    }
}
