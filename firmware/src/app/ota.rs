//! The OTA task: drives [`crate::agent`] over [`super::link`].

use super::config::DeviceConfig;
use crate::protocol::AppVersion;

/// Runs update sessions until one asks for a reset; returns why.
pub async fn ota_task(cfg: DeviceConfig, version: AppVersion) -> String {
    let _ = (cfg, version);
    super::say("ota", "the OTA agent is not part of this build yet; idle");
    std::future::pending::<()>().await;
    unreachable!()
}
