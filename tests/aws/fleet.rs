//! The publisher on the AWS IoT Core profile, through the test front (tests/util/awsfront):
//! devices update bit-exact in the job and chunk flows while no connection of the publisher
//! ever sends more than 100 PUBLISH/s, and a pool of connections carries more than one can.

use std::sync::Arc;
use std::time::Duration;

use otactl::publish::{Profile, PublishConfig};

use crate::publish::device::{self, DeviceConfig, Flow};
use crate::publish::fixture::{config, served, signed_image, Running, BOARD};
use crate::publish::{rt, updated};
use crate::util::awsfront::{AwsFront, Throttle};
use crate::util::Mosquitto;

/// A 10-chunk image: fleets of 50 stay within seconds at 100 PUBLISH/s.
fn image(dir: &std::path::Path) -> (std::path::PathBuf, Arc<Vec<u8>>) {
    let img = signed_image((1, 1, 0), 40_000, 23);
    let p = dir.join("aws.bin");
    std::fs::write(&p, &img).unwrap();
    (p, Arc::new(img))
}

fn aws_config(front: &AwsFront, path: &std::path::Path, connections: usize) -> PublishConfig {
    let mut cfg = config(front.port, vec![served(BOARD, path)]);
    cfg.profile = Profile::AWS;
    cfg.connections = connections;
    cfg
}

async fn fleet(port: u16, n: u16, flow: Flow, first_tick: u16, image: &Arc<Vec<u8>>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut d = DeviceConfig::new(port, BOARD, (1, 0, 0), first_tick + i * 3);
            d.flow = flow;
            d.data_timeout = Duration::from_secs(120);
            d.job_timeout = Duration::from_secs(60);
            tokio::spawn(async move { device::session(&d).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let o = tokio::time::timeout(Duration::from_secs(180), t)
            .await
            .expect("bounded")
            .unwrap();
        updated(&o, image, &format!("{flow:?} device {i} of {n}"));
    }
}

/// 1 and 50 devices, job flow and chunk flow, through the front in its dropping mode: every
/// device updates bit-exact, no PUBLISH of the publisher is throttled, and no connection ever
/// exceeds 100 PUBLISH/s.
#[test]
fn devices_update_through_aws_limits_in_job_and_chunk_flows() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, img) = image(dir.path());
    let front = AwsFront::start(broker.port, Throttle::Drop);
    rt().block_on(async {
        let p = Running::start(aws_config(&front, &path, 1)).await;
        fleet(front.port, 1, Flow::Job, 100, &img).await;
        fleet(front.port, 1, Flow::JobChunks, 200, &img).await;
        fleet(front.port, 50, Flow::Job, 1000, &img).await;
        fleet(front.port, 50, Flow::JobChunks, 2000, &img).await;
        p.stop().await;
    });
    let conns = front.connections();
    let publisher: Vec<_> = conns
        .iter()
        .filter(|c| c.client_id.starts_with("otactl-test"))
        .collect();
    assert_eq!(publisher.len(), 1);
    assert!(
        publisher[0].publishes > 1000,
        "{} PUBLISHes",
        publisher[0].publishes
    );
    assert_eq!(
        publisher[0].throttled, 0,
        "the front had to throttle the publisher"
    );
    assert!(
        publisher[0].violations.is_empty(),
        "{:?}",
        publisher[0].violations
    );
    let max = front.max_publish_per_sec();
    assert!(max <= 100, "{max} PUBLISH in one second on one connection");
}

/// With `--connections 4` the publisher spreads a fleet's pushes over four connections, each
/// within AWS's 100 PUBLISH/s, so together they carry more than one connection may (how much
/// sooner the fleet finishes is measured in BENCHMARKS.md).
#[test]
fn four_connections_carry_more_than_one_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Mosquitto::start_plain(dir.path()) else {
        return;
    };
    let (path, img) = image(dir.path());
    let front = AwsFront::start(broker.port, Throttle::Disconnect);
    rt().block_on(async {
        let p = Running::start(aws_config(&front, &path, 4)).await;
        fleet(front.port, 50, Flow::Job, 3000, &img).await;
        p.stop().await;
    });
    let conns = front.connections();
    let publisher: Vec<_> = conns
        .iter()
        .filter(|c| c.client_id.starts_with("otactl-test"))
        .collect();
    assert_eq!(publisher.len(), 4, "four connections, distinct client ids");
    assert!(
        publisher
            .iter()
            .all(|c| c.closed_for.is_none() && c.throttled == 0),
        "a connection went over a limit"
    );
    assert!(
        publisher.iter().all(|c| c.publishes > 50),
        "all four carried pushes"
    );
    assert!(front.max_publish_per_sec() <= 100);
    // Over the busiest second the four together forwarded more than one connection may.
    let together: usize = publisher.iter().map(|c| c.max_forwarded_per_sec).sum();
    assert!(together > 100, "{together}");
}
