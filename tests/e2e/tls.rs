//! The simulated board and `otactl publish` through the broker of Infineon's own set-up: the
//! certificates generate_ssl_cert.sh makes (RSA CA, a broker certificate that names
//! `mosquitto_server` but not the address, a version-1 client certificate), verified under
//! `--tls-server-name`.

use std::ffi::OsStr;

use super::{apps, expect, start, World};
use crate::publish::infineon::Infineon;
use crate::util::free_port;

#[test]
fn a_board_updates_through_infineons_certificates_with_tls_server_name() {
    let Some(pki) = Infineon::make() else {
        return;
    };
    let tls = free_port();
    let Some(_broker) = pki.broker(tls) else {
        return;
    };
    let Some(w) = World::new("board-host_swap.json") else {
        return;
    };
    apps();
    let (v100, v110) = w.v100_v110();
    let url = format!("mqtts://127.0.0.1:{tls}");
    let mut spec = w.board("tls-board");
    spec.broker.clone_from(&url);
    spec.tls = Some((
        pki.p("mosquitto_ca.crt"),
        pki.p("mosquitto_client.crt"),
        pki.p("mosquitto_client.key"),
    ));
    spec.tls_server_name = Some("mosquitto_server".into());
    let mut board = start(&spec, Some(&v100), "tls");
    expect(&mut board, "app: version 1.0.0 started");
    let (ca, cert, key) = (
        pki.p("mosquitto_ca.crt"),
        pki.p("mosquitto_client.crt"),
        pki.p("mosquitto_client.key"),
    );
    let extra: [&OsStr; 8] = [
        OsStr::new("--ca"),
        ca.as_os_str(),
        OsStr::new("--cert"),
        cert.as_os_str(),
        OsStr::new("--client-key"),
        key.as_os_str(),
        OsStr::new("--tls-server-name"),
        OsStr::new("mosquitto_server"),
    ];
    let _publisher = w.publish_to(&v110, &url, &extra);
    expect(&mut board, "update accepted");
    expect(&mut board, "download 100%");
    expect(&mut board, "app: version 1.1.0 started");
    expect(&mut board, "image confirmed");
}
