//! `otactl publish`: the update server against a real mosquitto and a test device written from
//! spec/protocol.md's device rules (tests/publish/device.rs).

mod attacks;
mod cli;
pub(crate) mod device;
pub(crate) mod fixture;
mod fleet;
pub(crate) mod infineon;
mod pacing;
mod replicas;
mod resilience;
mod store;
mod tls;

use std::time::Duration;

use device::{DeviceConfig, Flow, Outcome};
use fixture::{config, served, write_image, Running, BOARD};
use otactl::publish::Event;

use crate::util::Mosquitto;

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn updated(o: &Outcome, image: &[u8], what: &str) {
    match o {
        Outcome::Updated {
            image: got,
            version,
        } => {
            assert_eq!(*version, (1, 1, 0), "{what}: header version");
            assert!(
                got.len() == image.len() && got == image,
                "{what}: image differs ({} vs {} bytes)",
                got.len(),
                image.len()
            );
        }
        Outcome::NoUpdate(why) => panic!("{what}: no update ({why})"),
    }
}

/// Job flow, direct flow ("Request Update" and "Send Direct Update") and chunk flow each deliver a slot-filling image bit-exact.
#[test]
fn job_direct_and_chunk_flows_deliver_the_image_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        for (i, flow) in [
            Flow::Job,
            Flow::Direct,
            Flow::DirectBroadcast,
            Flow::JobChunks,
        ]
        .into_iter()
        .enumerate()
        {
            let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 100 + i as u16 * 10);
            d.flow = flow;
            let t0 = std::time::Instant::now();
            let o = tokio::time::timeout(Duration::from_secs(60), device::session(&d))
                .await
                .expect("bounded");
            eprintln!("{flow:?}: {:?}", t0.elapsed());
            updated(&o, &image, &format!("{flow:?}"));
        }
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::Sent { .. }),
                    4,
                    Duration::from_secs(10)
                )
                .await,
            4
        );
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(
                        e,
                        Event::Started {
                            mode: otactl::publish::Mode::Direct,
                            ..
                        }
                    ),
                    1,
                    Duration::from_secs(10)
                )
                .await,
            1
        );
        p.stop().await;
    });
}

/// Equal versions get "No Update Available"; a device of another board gets nothing, and the
/// publisher says which boards it serves.
#[test]
fn equal_version_and_other_board_get_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, _) = write_image(dir.path(), "app.bin", (1, 1, 0));
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let same = DeviceConfig::new(broker.port, BOARD, (1, 1, 0), 200);
        assert!(matches!(
            device::session(&same).await,
            Outcome::NoUpdate("invalid_version")
        ));
        let newer = DeviceConfig::new(broker.port, BOARD, (2, 0, 0), 201);
        assert!(matches!(
            device::session(&newer).await,
            Outcome::NoUpdate("invalid_version")
        ));
        let mut other = DeviceConfig::new(broker.port, "APP_CY8CKIT_062S2_43012", (1, 0, 0), 202);
        other.job_timeout = Duration::from_secs(2);
        assert!(matches!(
            device::session(&other).await,
            Outcome::NoUpdate("no_update_available")
        ));
        // The publisher hears every board's requests and says once whom it does not serve.
        assert!(
            p.events
                .wait_for(
                    |e| matches!(e, Event::Warning { message, .. }
                        if message.contains("a device of board APP_CY8CKIT_062S2_43012 asked")
                            && message.contains(BOARD)),
                    Duration::from_secs(10)
                )
                .await
        );
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::NoUpdate { reason, .. } if reason == "not_newer"),
                    2,
                    Duration::from_secs(10)
                )
                .await,
            2
        );
        assert_eq!(
            p.events
                .wait_count(
                    |e| matches!(e, Event::Started { .. }),
                    0,
                    Duration::from_secs(10)
                )
                .await,
            0
        );
        p.stop().await;
    });
}

/// 20 devices update at once, each bit-exact.
#[test]
fn twenty_devices_update_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, image) = write_image(dir.path(), "app.bin", (1, 1, 0));
    let image = std::sync::Arc::new(image);
    rt().block_on(async {
        let p = Running::start(config(broker.port, vec![served(BOARD, &path)])).await;
        let mut tasks = Vec::new();
        for i in 0..20u16 {
            let mut d = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 1000 + i * 10);
            d.flow = if i % 4 == 3 {
                Flow::JobChunks
            } else {
                Flow::Job
            };
            d.data_timeout = Duration::from_secs(90);
            tasks.push(tokio::spawn(async move { device::session(&d).await }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let o = tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("bounded")
                .unwrap();
            updated(&o, &image, &format!("device {i}"));
        }
        p.stop().await;
    });
}

/// Several boards (`--image BOARD=FILE` repeated): each board's devices get their own image.
#[test]
fn several_boards_each_get_their_own_image() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let other = "APP_KIT_XMC72_EVK";
    let a = fixture::signed_image((1, 1, 0), 50_000, 11);
    let b = fixture::signed_image((1, 1, 0), 70_001, 12);
    let (pa, pb) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    std::fs::write(&pa, &a).unwrap();
    std::fs::write(&pb, &b).unwrap();
    rt().block_on(async {
        let p = Running::start(config(
            broker.port,
            vec![served(BOARD, &pa), served(other, &pb)],
        ))
        .await;
        let da = DeviceConfig::new(broker.port, BOARD, (1, 0, 0), 900);
        let db = DeviceConfig::new(broker.port, other, (1, 0, 0), 910);
        updated(&device::session(&da).await, &a, BOARD);
        updated(&device::session(&db).await, &b, other);
        p.stop().await;
    });
}

/// Every record of the state database for `--state PATH`, as a publisher would load it.
pub fn load_state(path: &std::path::Path) -> otactl::publish::State {
    use otactl::publish::store::{self, Store};
    let (mut db, _) = store::open_sqlite(path, "test").unwrap();
    db.load().unwrap()
}

/// What most publisher tests start from: a plain mosquitto, a signed image file (with `extra`
/// bytes appended to the file) and a state file path, in one temp dir.
pub struct World {
    pub broker: Mosquitto,
    pub path: std::path::PathBuf,
    /// The signed image (without the appended bytes).
    pub image: std::sync::Arc<Vec<u8>>,
    pub state: std::path::PathBuf,
    /// Keeps the folder alive as long as the world.
    _dir: tempfile::TempDir,
}

impl World {
    /// `None` (skip) when mosquitto is missing and CI does not require it.
    pub fn new(image: Vec<u8>, extra: &[u8]) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start_plain(dir.path())?;
        let path = dir.path().join("app.bin");
        let mut file = image.clone();
        file.extend_from_slice(extra);
        std::fs::write(&path, &file).unwrap();
        Some(Self {
            broker,
            path,
            image: std::sync::Arc::new(image),
            state: dir.path().join("state.db"),
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.broker.port
    }

    /// A publisher configuration serving the image for [`BOARD`], with the state file or not.
    pub fn config(&self, with_state: bool) -> otactl::publish::PublishConfig {
        let mut cfg = fixture::config(self.port(), vec![fixture::served(BOARD, &self.path)]);
        if with_state {
            cfg.state_file = Some(self.state.clone());
        }
        cfg
    }
}
