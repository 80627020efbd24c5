//! Benchmark for `scripts/bench-store.sh`: DEVICES identified devices recorded in the SQLite
//! state store (or a PostgreSQL database, given its address) as a publisher records them. Per device, three decisions, each one transaction as
//! the driver writes it when decisions come one at a time (the worst case: a burst of decisions
//! is one transaction): the offer (record + offer event), the transfer (record + transfer event)
//! and the result (record + `updated` result event). Prints the time per decision (mean and
//! 99th percentile), the time to load every record as a publisher does at start, and the size of
//! the database.
//!
//! Usage: `bench_store DIR [DEVICES] [postgres://…]` (DIR: where the SQLite database is
//! created; default 10000 devices; with an address, the PostgreSQL database instead, which must
//! be empty).

use std::time::{Duration, Instant};

use otactl::publish::state::{now, DeviceRecord, LastResult};
use otactl::publish::store::{Batch, HistoryEvent, HistoryKind, PostgresStore, SqliteStore, Store};

fn event(device: &str, kind: HistoryKind, detail: &str) -> HistoryEvent {
    HistoryEvent {
        at: now(),
        device: device.to_string(),
        version: "1.1.0".into(),
        kind,
        detail: detail.into(),
        publisher: String::new(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: bench_store DIR [DEVICES]"));
    let devices: usize = args.next().map_or(10_000, |n| n.parse().expect("DEVICES"));
    let url = args.next();
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let mut store: Box<dyn Store> = match &url {
        Some(u) => Box::new(PostgresStore::open(u, "bench").expect("open")),
        None => Box::new(SqliteStore::open(&path, "bench").expect("open")),
    };
    let mut times = Vec::with_capacity(devices * 3);
    let t0 = Instant::now();
    for i in 0..devices {
        let key = format!("APP_CY8CPROTO_062S2_43439/SN-{i:06}");
        let mut rec = DeviceRecord {
            board: "APP_CY8CPROTO_062S2_43439".into(),
            version: Some("1.0.0".into()),
            last_seen: now(),
            offered: Some("1.1.0".into()),
            ..DeviceRecord::default()
        };
        let steps: [(HistoryKind, &str); 3] = [
            (HistoryKind::Offer, ""),
            (HistoryKind::Transfer, "push"),
            (HistoryKind::Result, "updated"),
        ];
        for (kind, detail) in steps {
            match kind {
                HistoryKind::Transfer => rec.sent = Some("1.1.0".into()),
                HistoryKind::Result => {
                    rec.sent = None;
                    rec.version = Some("1.1.0".into());
                    rec.last_result = Some(LastResult {
                        result: "updated".into(),
                        version: "1.1.0".into(),
                        at: now(),
                    });
                }
                _ => {}
            }
            let batch = Batch {
                records: vec![(key.clone(), rec.clone())],
                removed: Vec::new(),
                events: vec![event(&key, kind, detail)],
            };
            let t = Instant::now();
            store.write(&batch).expect("write");
            times.push(t.elapsed());
        }
    }
    let total = t0.elapsed();
    let t = Instant::now();
    let st = store.load().expect("load");
    let load = t.elapsed();
    assert_eq!(st.devices.len(), devices);
    drop(store);
    let (backend, size) = match &url {
        // Tables and their indexes (the history included), not the empty cluster around them.
        Some(u) => {
            let mut c = postgres::Client::connect(u, postgres::NoTls).expect("connect");
            let size: i64 = c
                .query_one(
                    "SELECT SUM(pg_total_relation_size(t))::BIGINT FROM
                     unnest(ARRAY['devices', 'blocked', 'events', 'schema_version']) AS t",
                    &[],
                )
                .expect("size")
                .get(0);
            ("postgres", size as u64)
        }
        None => ("sqlite", std::fs::metadata(&path).map_or(0, |m| m.len())),
    };
    times.sort();
    let mean = total / times.len() as u32;
    let p99 = times[times.len() * 99 / 100];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{backend}: {devices} devices, {} decisions in {:.1} s: {:.3} ms per decision (p99 {:.3} ms); load {:.0} ms; database {:.1} MiB ({} bytes per device)",
        times.len(),
        total.as_secs_f64(),
        ms(mean),
        ms(p99),
        ms(load),
        size as f64 / 1024.0 / 1024.0,
        size / devices as u64
    );
}
