//! The demo's publisher: `otactl::publish::run` in-process, one image at a time, with a state
//! file that outlives each run (results and the blocklist carry over).

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use anyhow::{Context, Result};
use ota_core::image::verify::PublicKey;

use otactl::publish::{self, ClientOptions, Event, PublishConfig, ServedImage};

/// How fast the demo's board takes a push (bytes per second). It is a process on this machine
/// writing a file, far faster than the Wi-Fi MCU the publisher's default pace
/// ([`publish::profile::DEFAULT_DEVICE_RATE`]) protects, as `otactl publish --device-rate` would
/// be told.
const BOARD_RATE: u32 = 64 << 20;

/// A publisher task serving one image; stopped on [`Self::stop`] or drop.
pub(super) struct Serving {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Handle,
}

/// Starts serving `image` for `board` through the broker and client identity of `mqtt` (each run
/// its own client id: a new connection under the previous run's id could be taken for it and
/// dropped by the broker); every publisher event is sent to `events`.
///
/// # Errors
/// The image does not verify with `key`.
pub(super) fn serve(
    rt: &tokio::runtime::Handle,
    mqtt: ClientOptions,
    board: &str,
    image: &Path,
    key: PublicKey,
    state: PathBuf,
    events: mpsc::Sender<Event>,
) -> Result<Serving> {
    let served = ServedImage::load(board, image, &[key])
        .with_context(|| format!("serving {}", image.display()))?;
    let mut cfg = PublishConfig::new(mqtt, vec![Arc::new(served)]);
    cfg.state_file = Some(state);
    cfg.profile.device_rate = BOARD_RATE;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sink: publish::EventSink = Arc::new(move |e| {
        let _ = events.send(e);
    });
    let task = rt.spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = publish::run(cfg, shutdown, sink).await {
            log::error!("publisher: {e}");
        }
    });
    Ok(Serving {
        stop: Some(tx),
        task: Some(task),
        rt: rt.clone(),
    })
}

impl Serving {
    /// Stops the publisher and waits for it (bounded).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(5), t).await
            });
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One line about a publisher event, for the narration (`None`: not worth telling).
#[must_use]
pub(super) fn describe(e: &Event) -> Option<String> {
    Some(match e {
        Event::Offered {
            running, version, ..
        } => format!("device runs {running}: offering {version}"),
        Event::NoUpdate {
            running, reason, ..
        } => format!("device runs {running}: no update ({reason})"),
        Event::Sent {
            version,
            bytes,
            millis,
            ..
        } => {
            format!("sent {version}: {bytes} bytes in {millis} ms")
        }
        Event::Result {
            version, result, ..
        } => format!("result for {version}: {result}"),
        Event::Warning { message, .. } => format!("warning: {message}"),
        _ => return None,
    })
}
