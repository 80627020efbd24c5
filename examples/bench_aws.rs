//! Benchmark for `scripts/bench-aws.sh`: fleets updated through the AWS IoT Core test front
//! (tests/util/awsfront: 100 PUBLISH/s and 512 KiB/s per connection) with `--broker-profile
//! aws`, against the bound the limits set, and with 1 and 4 connections.
//!
//! Usage: `bench_aws PORT` (mosquitto must already listen on 127.0.0.1:PORT).

#[path = "../tests/util/awsfront/mod.rs"]
#[allow(dead_code)]
mod awsfront;
#[path = "../tests/publish/device.rs"]
mod device;
#[path = "../tests/publish/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use device::{DeviceConfig, Flow, Outcome};
use otactl::publish::Profile;

/// `n` devices at once (job flow); the wall time until every one is updated.
async fn fleet(port: u16, n: u16, first_tick: u16, len: usize) -> Duration {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut d = DeviceConfig::new(port, fixture::BOARD, (1, 0, 0), first_tick + i * 3);
            d.flow = Flow::Job;
            d.data_timeout = Duration::from_secs(600);
            d.job_timeout = Duration::from_secs(120);
            tokio::spawn(async move { device::session(&d).await })
        })
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            Outcome::Updated { image, .. } => assert_eq!(image.len(), len),
            Outcome::NoUpdate(e) => panic!("no update: {e}"),
        }
    }
    t0.elapsed()
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench_aws PORT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, usize, u16, usize); 4] = [
        ("1 device, slot-filling image", fixture::SLOT_PAYLOAD, 1, 1),
        ("100 devices, 40 kB image", 40_000, 100, 1),
        ("50 devices, 40 kB image", 40_000, 50, 1),
        ("50 devices, 40 kB image", 40_000, 50, 4),
    ];
    for (i, (what, payload, n, connections)) in cases.into_iter().enumerate() {
        let img = fixture::signed_image((1, 1, 0), payload, 31 + i as u32);
        let path = dir.path().join(format!("aws-{i}.bin"));
        std::fs::write(&path, &img).unwrap();
        let front = awsfront::AwsFront::start(port, awsfront::Throttle::Drop);
        let chunks = img.len().div_ceil(4096) * usize::from(n);
        // The bound: every chunk and job document at 100 PUBLISH/s per connection.
        let bound = (chunks + usize::from(n)) as f64 / (100.0 * connections as f64);
        let took = rt.block_on(async {
            let mut cfg = fixture::config(front.port, vec![fixture::served(fixture::BOARD, &path)]);
            cfg.profile = Profile::AWS;
            cfg.connections = connections;
            let p = fixture::Running::start(cfg).await;
            let took = fleet(front.port, n, 1000 + i as u16 * 400, img.len()).await;
            p.stop().await;
            took
        });
        println!(
            "{what}, {connections} connection(s): {:.1} s (bound {bound:.1} s, {:.0} %); busiest second on one connection: {} PUBLISH",
            took.as_secs_f64(),
            100.0 * bound / took.as_secs_f64(),
            front.max_publish_per_sec()
        );
    }
}
