//! Benchmark for `scripts/bench-publish.sh`: end-to-end update time of a slot-filling PSoC 6
//! image through a real mosquitto (job mode and chunk mode, with the spec-written test device),
//! and the raw QoS 1 pub/sub throughput of the same chunk bytes through the same broker.
//!
//! With FLEET > 0 it then runs a fleet: FLEET devices (each with its own serial) ask at the same
//! moment and the publisher, with its default flags, serves them all.
//!
//! The publisher keeps its state in the default SQLite store (in a temporary directory).
//!
//! Usage: `bench_publish PORT [RUNS] [FLEET]` (the broker must already listen on 127.0.0.1:PORT).

#[path = "../tests/publish/device.rs"]
mod device;
#[path = "../tests/publish/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use device::{DeviceConfig, Flow, Outcome};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1024.0 / 1024.0 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn end_to_end(port: u16, flow: Flow, tick: u16, len: usize) -> Duration {
    let mut d = DeviceConfig::new(port, fixture::BOARD, (1, 0, 0), tick);
    d.flow = flow;
    let t0 = Instant::now();
    match device::session(&d).await {
        Outcome::Updated { image, .. } => assert_eq!(image.len(), len),
        Outcome::NoUpdate(e) => panic!("no update: {e}"),
    }
    t0.elapsed()
}

/// The same chunks, QoS 1, through the same broker: one publisher, one subscriber.
async fn raw(port: u16, chunks: &[bytes::Bytes], inflight: u16, run: u32) -> Duration {
    let topic = format!("bench/raw/{run}");
    let mut so = MqttOptions::new(format!("raw-sub-{run}"), "127.0.0.1", port);
    so.set_max_packet_size(1 << 20, 1 << 20);
    let (sub, mut sel) = AsyncClient::new(so, 64);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    sel.set_network_options(net.clone());
    sub.subscribe(topic.clone(), QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sel.poll().await.unwrap() {
            break;
        }
    }
    let mut po = MqttOptions::new(format!("raw-pub-{run}"), "127.0.0.1", port);
    po.set_inflight(inflight)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (publ, mut pel) = AsyncClient::new(po, usize::from(inflight));
    pel.set_network_options(net);
    let pump = tokio::spawn(async move { while pel.poll().await.is_ok() {} });
    let n = chunks.len();
    let t0 = Instant::now();
    let feed = {
        let chunks = chunks.to_vec();
        let topic = topic.clone();
        tokio::spawn(async move {
            for c in chunks {
                publ.publish_bytes(topic.clone(), QoS::AtLeastOnce, false, c)
                    .await
                    .unwrap();
            }
        })
    };
    let mut got = 0;
    while got < n {
        if let Event::Incoming(Packet::Publish(_)) = sel.poll().await.unwrap() {
            got += 1;
        }
    }
    let d = t0.elapsed();
    feed.await.unwrap();
    pump.abort();
    d
}

/// FLEET devices at once; returns (updated, wall time, per-device session times sorted, why the
/// others did not update).
async fn fleet(
    port: u16,
    n: u16,
    len: usize,
) -> (
    usize,
    Duration,
    Vec<Duration>,
    std::collections::BTreeMap<&'static str, usize>,
) {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            // Each session's three connections use tick, tick+1, tick+2 as client id suffixes:
            // spaced so no two devices share a client id (the broker would drop one of them).
            let mut d = DeviceConfig::new(port, fixture::BOARD, (1, 0, 0), 10_000 + i * 3);
            d.serial = format!("FLEET-{i:05}");
            // The example's data timeout (CY_OTA_DATA_CHECK_TIME_SECS): devices queue for a slot.
            d.data_timeout = Duration::from_secs(300);
            d.job_timeout = Duration::from_secs(60);
            tokio::spawn(async move {
                let s = Instant::now();
                let why = match device::session(&d).await {
                    Outcome::Updated { image, .. } if image.len() == len => None,
                    Outcome::Updated { .. } => Some("wrong size"),
                    Outcome::NoUpdate(why) => Some(why),
                };
                (why, s.elapsed())
            })
        })
        .collect();
    let mut updated = 0;
    let mut times = Vec::new();
    let mut failed = std::collections::BTreeMap::new();
    for t in tasks {
        let (why, d) = t.await.unwrap();
        match why {
            None => updated += 1,
            Some(w) => *failed.entry(w).or_insert(0) += 1,
        }
        times.push(d);
    }
    times.sort();
    (updated, t0.elapsed(), times, failed)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bench_publish PORT [RUNS]");
    let runs: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let fleet_size: u16 = args.next().and_then(|r| r.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (path, image) = fixture::write_image(dir.path(), "app.bin", (1, 1, 0));
    let served = fixture::served(fixture::BOARD, &path);
    let chunks = served.chunks.clone();
    rt.block_on(async {
        let mut cfg = fixture::config(port, vec![served]);
        // The default state store, as `otactl publish` runs it.
        let state = dir.path().join("state.db");
        cfg.state_file = Some(state.clone());
        let inflight = cfg.inflight;
        let p = fixture::Running::start(cfg).await;
        let mut job = Vec::new();
        let mut chunk = Vec::new();
        let mut rawd = Vec::new();
        if fleet_size > 0 {
            let (ok, wall, times, failed) = fleet(port, fleet_size, image.len()).await;
            let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64();
            println!(
                "fleet: {ok}/{fleet_size} updated in {:.1} s ({:.1} MiB/s in all); per device p50 {:.1} s, p95 {:.1} s, max {:.1} s",
                wall.as_secs_f64(),
                mib_s(image.len() * ok, wall),
                pct(0.5),
                pct(0.95),
                pct(1.0)
            );
            if !failed.is_empty() {
                println!("fleet: not updated: {failed:?}");
            }
        }
        for r in 0..runs {
            job.push(end_to_end(port, Flow::Job, 1000 + r as u16 * 10, image.len()).await);
            chunk.push(end_to_end(port, Flow::JobChunks, 2000 + r as u16 * 10, image.len()).await);
            rawd.push(raw(port, &chunks, inflight, r).await);
        }
        p.stop().await;
        let size = std::fs::metadata(&state).map_or(0, |m| m.len());
        println!("state database: {:.1} KiB", size as f64 / 1024.0);
        let (j, c, w) = (median(job), median(chunk), median(rawd));
        println!("image: {} bytes ({:.2} MiB), {} chunks, {runs} runs, medians:", image.len(), image.len() as f64 / 1048576.0, chunks.len());
        println!("job mode   (Update Availability -> job -> Request Update -> all chunks): {:>8.1} ms  {:>6.2} MiB/s", j.as_secs_f64() * 1e3, mib_s(image.len(), j));
        println!("chunk mode (Update Availability -> job -> Request Data Chunk x N):      {:>8.1} ms  {:>6.2} MiB/s", c.as_secs_f64() * 1e3, mib_s(image.len(), c));
        println!("raw QoS 1 pub/sub of the same chunk bytes (broker limit):              {:>8.1} ms  {:>6.2} MiB/s", w.as_secs_f64() * 1e3, mib_s(image.len(), w));
        println!("job/raw throughput ratio: {:.2}   job vs publisher.py (20 KiB/s): {:.0}x   chunk vs publisher.py: {:.0}x",
            w.as_secs_f64() / j.as_secs_f64(),
            mib_s(image.len(), j) * 1024.0 / 20.0,
            mib_s(image.len(), c) * 1024.0 / 20.0);
    });
}
