//! `otactl cert-to-c --header` gives a board its own SerialNumber: the request templates it
//! writes, compiled with the system C compiler and printed with `snprintf` exactly as the OTA
//! agent prints them, must give the golden requests of spec/protocol.md §8 with only the serial
//! changed.

use ota_core::protocol::codec::{encode_direct_request, encode_request};
use ota_core::protocol::{AppVersion, DeviceIdentity, MessageKind};

use super::{compile_and_run, gen, path};
use crate::util::{otactl, run, tool};

/// G1, "Update Availability" (APP templates, v1.0.0, unique topic [`TOPIC`]), spec §8.
const G1: &str = r#"{"Message":"Update Availability", "Manufacturer": "Infineon", "ManufacturerID": "ABCD123", "ProductID": "EFGH456", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#;
/// G2, "Request Update" (APP templates, v1.0.0, unique topic [`TOPIC`]), spec §8.
const G2: &str = r#"{"Message":"Request Update", "Manufacturer": "Infineon", "ManufacturerID": "ABCD123", "ProductID": "EFGH456", "SerialNumber": "ABC213450001", "BoardName": "CY8CPROTO_062_4343W", "Version": "1.0.0", "UniqueTopicName": "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234"}"#;
/// The unique topic of the golden vectors.
const TOPIC: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234";
/// The serial every example board sends.
const TEMPLATE_SERIAL: &str = "ABC213450001";

/// What a board with `serial` must send: G1, G2 and the direct request (spec §2.8: G2's fields
/// with "Send Direct Update", ending `"Version": "1.0.0" }` with no UniqueTopicName).
fn expected(serial: &str) -> [String; 3] {
    let direct = G2
        .replace("Request Update", "Send Direct Update")
        .replace(&format!(", \"UniqueTopicName\": \"{TOPIC}\"}}"), " }");
    assert!(direct.ends_with(r#""Version": "1.0.0" }"#), "{direct}");
    [G1.to_owned(), G2.to_owned(), direct].map(|g| g.replace(TEMPLATE_SERIAL, serial))
}

/// The same requests from the simulated device's encoders (ota_core::protocol::codec).
fn encoded(serial: &str) -> [String; 3] {
    let id = DeviceIdentity {
        serial_number: serial,
        ..DeviceIdentity::APP
    };
    let v = AppVersion::new(1, 0, 0);
    let mut buf = [0u8; 1024];
    let text = |n: usize, buf: &[u8]| String::from_utf8(buf[..n].to_vec()).unwrap();
    let g1 = encode_request(&mut buf, MessageKind::UpdateAvailability, &id, v, TOPIC).unwrap();
    let g1 = text(g1, &buf);
    let g2 = encode_request(&mut buf, MessageKind::RequestUpdate, &id, v, TOPIC).unwrap();
    let g2 = text(g2, &buf);
    let d = encode_direct_request(&mut buf, &id, v).unwrap();
    [g1, g2, text(d, &buf)]
}

/// A program that includes `includes` in order and prints the three templates as the agent
/// does: `snprintf(json_doc, sizeof json_doc, TEMPLATE, APP_VERSION_MAJOR, APP_VERSION_MINOR,
/// APP_VERSION_BUILD, unique_topic)` into the agent's 1025-byte buffer, one line each. The direct
/// request, which no library code prints, gets the version only. Then the client certificate.
fn program(includes: &[&str]) -> String {
    let mut c = String::from("#include <stdio.h>\n");
    for h in includes {
        c.push_str(&format!("#include \"{h}\"\n"));
    }
    c.push_str(&format!(
        "#define APP_VERSION_MAJOR 1\n#define APP_VERSION_MINOR 0\n#define APP_VERSION_BUILD 0\n\
         static char json_doc[1025];\n\
         static const char unique_topic[] = \"{TOPIC}\";\n\
         int main(void) {{\n\
         snprintf(json_doc, sizeof json_doc, CY_OTA_SUBSCRIBE_UPDATES_AVAIL, APP_VERSION_MAJOR, \
         APP_VERSION_MINOR, APP_VERSION_BUILD, unique_topic);\n\
         printf(\"%s\\n\", json_doc);\n\
         snprintf(json_doc, sizeof json_doc, CY_OTA_DOWNLOAD_REQUEST, APP_VERSION_MAJOR, \
         APP_VERSION_MINOR, APP_VERSION_BUILD, unique_topic);\n\
         printf(\"%s\\n\", json_doc);\n\
         snprintf(json_doc, sizeof json_doc, CY_OTA_DOWNLOAD_DIRECT_REQUEST, APP_VERSION_MAJOR, \
         APP_VERSION_MINOR, APP_VERSION_BUILD);\n\
         printf(\"%s\\n\", json_doc);\n\
         fputs(CLIENT_CERTIFICATE, stdout);\n\
         return 0;\n}}\n"
    ));
    c
}

/// The example application's own templates, defined unconditionally as APP
/// `configs/cy_ota_config.h` does (a different body: redefining without `#undef` would warn).
const EXAMPLE_CONFIG: &str = "#define CY_OTA_SUBSCRIBE_UPDATES_AVAIL \"example %d.%d.%d %s\"\n\
    #define CY_OTA_DOWNLOAD_REQUEST \"example %d.%d.%d %s\"\n\
    #define CY_OTA_DOWNLOAD_DIRECT_REQUEST \"example %d.%d.%d\"\n";

/// The library's defaults, which apply only where nothing is defined (`cy_ota_defaults.h`).
const LIBRARY_DEFAULTS: &str = "#ifndef CY_OTA_SUBSCRIBE_UPDATES_AVAIL\n\
    #define CY_OTA_SUBSCRIBE_UPDATES_AVAIL \"default %d.%d.%d %s\"\n#endif\n\
    #ifndef CY_OTA_DOWNLOAD_REQUEST\n#define CY_OTA_DOWNLOAD_REQUEST \"default %d.%d.%d %s\"\n#endif\n\
    #ifndef CY_OTA_DOWNLOAD_DIRECT_REQUEST\n\
    #define CY_OTA_DOWNLOAD_DIRECT_REQUEST \"default %d.%d.%d\"\n#endif\n";

#[test]
fn header_templates_print_the_golden_requests_with_the_boards_serial() {
    let Some(cc) = tool("cc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    gen(d, 8884, "ecdsa-p256", &["DEVICE-0001"]);
    std::fs::write(path(d, "example_config.h"), EXAMPLE_CONFIG).unwrap();
    std::fs::write(path(d, "library_defaults.h"), LIBRARY_DEFAULTS).unwrap();
    let files = ["ca.crt", "DEVICE-0001.crt", "DEVICE-0001.key"].map(|f| path(d, f));
    let cert = std::fs::read(&files[1]).unwrap();

    // The serial is the certificate's CN by default (an exported OTACTL_SERIAL must not change
    // it: one value for every board is no identity); --serial overrides it. The override is the
    // longest the device holds (31 bytes), with non-ASCII text and a would-be trigraph.
    let long = format!("Zürich??/{}", "7".repeat(21));
    assert_eq!(long.len(), 31);
    for (serial, flag) in [("DEVICE-0001", None), (long.as_str(), Some(long.as_str()))] {
        let mut c = otactl();
        c.arg("cert-to-c")
            .arg("--header")
            .arg(path(d, "ota_device.h"))
            .args(&files)
            .arg("--force")
            .env("OTACTL_SERIAL", "SHARED-BY-ALL");
        if let Some(s) = flag {
            c.args(["--serial", s]);
        }
        let out = run(&mut c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let header = std::fs::read_to_string(path(d, "ota_device.h")).unwrap();
        assert!(
            header.contains("#include \"ota_device.h\"") && header.contains("cy_ota_config.h"),
            "the header must say where it goes:\n{header}"
        );

        let want = expected(serial);
        assert_eq!(encoded(serial), want, "the simulated device's encoders");
        let mut want_out = want.join("\n").into_bytes();
        want_out.push(b'\n');
        want_out.extend_from_slice(&cert);
        // Where the header goes: after the example's templates (and the library's defaults
        // after it, as cy_ota_config.h comes first), included twice; instead of them; after the
        // library's defaults.
        for (name, includes) in [
            (
                "after_example",
                &[
                    "example_config.h",
                    "ota_device.h",
                    "ota_device.h",
                    "library_defaults.h",
                ][..],
            ),
            ("alone", &["ota_device.h"][..]),
            (
                "after_defaults",
                &["library_defaults.h", "ota_device.h"][..],
            ),
        ] {
            let stdout = compile_and_run(&cc, d, name, &program(includes));
            assert_eq!(
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&want_out),
                "{serial}, {name}"
            );
        }
    }

    // --certs-only: the three certificate macros as before, no templates.
    let out = run(otactl()
        .arg("cert-to-c")
        .arg("--header")
        .arg(path(d, "certs_only.h"))
        .args(&files)
        .arg("--certs-only"));
    assert!(out.status.success());
    let header = std::fs::read_to_string(path(d, "certs_only.h")).unwrap();
    assert!(header.contains("#define CLIENT_KEY") && !header.contains("CY_OTA_"));
}

#[test]
fn serials_that_would_break_the_devices_json_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Device names may be up to 64 characters; the device's SerialNumber field holds 31.
    let long_name = format!("board-{}", "0".repeat(26));
    gen(d, 8884, "ecdsa-p256", &["board-1", &long_name]);
    let header = path(d, "h.h");
    let cert_to_c = |device: &str, extra: &[&str]| {
        let out = run(otactl()
            .arg("cert-to-c")
            .arg("--header")
            .arg(&header)
            .arg(path(d, "ca.crt"))
            .arg(path(d, &format!("{device}.crt")))
            .arg(path(d, &format!("{device}.key")))
            .args(extra));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{device} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!header.exists(), "{extra:?} wrote a header");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let too_long = "x".repeat(32);
    for (bad, why) in [
        ("a\"b", "double quote"),
        ("a\\b", "backslash"),
        ("50%d", "'%'"),
        ("a\tb", "U+0009"),
        ("a\u{7f}b", "U+007F"),
        (too_long.as_str(), "at most 31"),
        ("", "empty"),
        (TEMPLATE_SERIAL, "template"),
    ] {
        let err = cert_to_c("board-1", &["--serial", bad]);
        assert!(
            err.contains("--serial") && err.contains("SerialNumber") && err.contains(why),
            "{bad:?}: {err}"
        );
        assert!(
            !err.contains("BadChar") && !err.contains("TooLong"),
            "{err}"
        );
    }
    // A CN that cannot be a serial names the certificate and the way out.
    let err = cert_to_c(&long_name, &[]);
    assert!(
        err.contains(&format!("{long_name}.crt")) && err.contains("--serial"),
        "{err}"
    );
    assert!(err.contains("at most 31"), "{err}");
    cert_to_c("board-1", &["--serial", "x", "--certs-only"]);

    // --serial needs --header.
    let out = run(otactl()
        .args(["cert-to-c", "--serial", "board-1"])
        .arg(path(d, "ca.crt")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--header"));
}
