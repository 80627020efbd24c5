//! `otactl aws policy`: the documents parse, grant no wildcard action or resource, and allow
//! every topic and client ID of spec/protocol.md §8 while refusing other boards' topics. Checked
//! with a small evaluator of IoT policy statements (`*` any run of characters, `?` one
//! character, Deny over Allow, `${iot:Connection.Thing.ThingName}` resolved from the
//! certificate's thing).

use serde_json::Value;

use crate::util::{otactl, run};

const ARN: &str = "arn:aws:iot:eu-central-1:123456789012";
const BOARD: &str = "APP_CY8CPROTO_062S2_43439";
/// Spec §8 G11: the APP client IDs at ticks 31415 and 70000.
const CLIENT_IDS: [&str; 2] = ["CY_IOT_DEVICE31415", "CY_IOT_DEVICE4464"];
/// Spec §8 G11: the APP request and direct topics, and the will.
const REQUEST: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/publish_notify";
const DIRECT: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage";
const WILL: &str = "cy_ota_device/will";
/// Spec §8: the unique topic T of the golden vectors (APP), and T2 (LIB defaults).
const T: &str = "MyUniqueTopic/APP_CY8CPROTO_062S2_43439/OTAImage/10234";
const T2: &str = "OTAUpdate/APP_CY8CPROTO_062_4343W/OTAImage/4242";
/// Another board's topics.
const OTHER_REQUEST: &str = "MyUniqueTopic/APP_KIT_XMC72_EVK/publish_notify";
const OTHER_T: &str = "MyUniqueTopic/APP_KIT_XMC72_EVK/OTAImage/10234";
const OTHER_DIRECT: &str = "MyUniqueTopic/APP_KIT_XMC72_EVK/OTAImage";

fn policy(args: &[&str]) -> Value {
    let out = run(otactl().args(["aws", "policy"]).args(args));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the policy is JSON");
    assert_eq!(doc["Version"], "2012-10-17");
    least_privilege(&doc);
    doc
}

fn aws_policy(role: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        role,
        "--board",
        BOARD,
        "--region",
        "eu-central-1",
        "--account",
        "123456789012",
    ];
    args.extend(extra);
    policy(&args)
}

fn statements(doc: &Value) -> &Vec<Value> {
    doc["Statement"].as_array().expect("Statement is a list")
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap()).collect(),
        _ => panic!("not a string or list: {v}"),
    }
}

/// No `*` action and no `"Resource": "*"` (nor a resource that is a bare wildcard ARN).
fn least_privilege(doc: &Value) {
    for st in statements(doc) {
        for a in strings(&st["Action"]) {
            assert!(a.starts_with("iot:") && !a.contains('*'), "action {a}");
        }
        for r in strings(&st["Resource"]) {
            assert!(
                r != "*" && !r.ends_with(":*") && !r.ends_with("/*"),
                "resource {r}"
            );
        }
    }
}

/// IoT policy wildcard match: `*` any run of characters, `?` exactly one.
fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Whether `doc` allows `action` on `resource` (`kind/name` after the account) for a device whose
/// certificate is attached to `thing` (None: attached to no thing).
fn allows(doc: &Value, action: &str, resource: &str, thing: Option<&str>) -> bool {
    let arn: Vec<char> = format!("{ARN}:{resource}").chars().collect();
    let mut allowed = false;
    for st in statements(doc) {
        if !strings(&st["Action"]).contains(&action) {
            continue;
        }
        if st.get("Condition").is_some() && thing.is_none() {
            continue; // iot:Connection.Thing.IsAttached is false
        }
        let matches = strings(&st["Resource"]).iter().any(|r| {
            let r = match thing {
                Some(t) => r.replace("${iot:Connection.Thing.ThingName}", t),
                None if r.contains("${") => return false, // unresolved variable
                None => (*r).to_string(),
            };
            let p: Vec<char> = r.chars().collect();
            glob(&p, &arn)
        });
        if matches {
            match st["Effect"].as_str() {
                Some("Deny") => return false,
                Some("Allow") => allowed = true,
                e => panic!("effect {e:?}"),
            }
        }
    }
    allowed
}

#[test]
fn device_policy_allows_the_agents_topics_and_no_other_boards() {
    let doc = aws_policy("device", &[]);
    let can = |action: &str, resource: &str| allows(&doc, action, resource, None);
    for id in CLIENT_IDS
        .iter()
        .chain(&["CY_IOT_DEVICE0", "CY_IOT_DEVICE65535"])
    {
        assert!(can("iot:Connect", &format!("client/{id}")), "{id}");
    }
    for id in [
        "CY_IOT_DEVICE",
        "CY_IOT_DEVICE123456",
        "otactl-publish-1",
        "cy_device1",
    ] {
        assert!(!can("iot:Connect", &format!("client/{id}")), "{id}");
    }
    for t in [REQUEST, WILL] {
        assert!(can("iot:Publish", &format!("topic/{t}")), "{t}");
    }
    for t in [T, DIRECT] {
        assert!(can("iot:Subscribe", &format!("topicfilter/{t}")), "{t}");
        assert!(can("iot:Receive", &format!("topic/{t}")), "{t}");
        // A device never publishes chunks or job documents.
        assert!(!can("iot:Publish", &format!("topic/{t}")), "{t}");
    }
    for t in [OTHER_REQUEST, OTHER_T, OTHER_DIRECT, T2] {
        assert!(!can("iot:Publish", &format!("topic/{t}")), "{t}");
        assert!(!can("iot:Subscribe", &format!("topicfilter/{t}")), "{t}");
        assert!(!can("iot:Receive", &format!("topic/{t}")), "{t}");
    }
    for f in [
        format!("{DIRECT}/#"),
        format!("{DIRECT}/+"),
        format!("{DIRECT}/123456"),
        "MyUniqueTopic/#".into(),
        "#".into(),
    ] {
        assert!(!can("iot:Subscribe", &format!("topicfilter/{f}")), "{f}");
    }
    assert!(!can("iot:Subscribe", &format!("topicfilter/{REQUEST}")));
    // Other region or account: the ARN does not match.
    let elsewhere = format!("arn:aws:iot:us-east-1:123456789012:topic/{REQUEST}");
    assert!(!statements(&doc)
        .iter()
        .any(|st| strings(&st["Resource"]).contains(&elsewhere.as_str())));

    // The LIB defaults' prefix and board (T2 of spec §8).
    let lib = policy(&[
        "device",
        "--topic-prefix",
        "OTAUpdate",
        "--board",
        "APP_CY8CPROTO_062_4343W",
        "--region",
        "eu-central-1",
        "--account",
        "123456789012",
    ]);
    assert!(allows(&lib, "iot:Receive", &format!("topic/{T2}"), None));
    assert!(!allows(&lib, "iot:Receive", &format!("topic/{T}"), None));
}

#[test]
fn publisher_policy_takes_requests_and_sends_images() {
    let doc = aws_policy("publisher", &[]);
    let can = |action: &str, resource: &str| allows(&doc, action, resource, None);
    assert!(can("iot:Connect", "client/otactl-publish-4242"));
    assert!(!can("iot:Connect", "client/CY_IOT_DEVICE31415"));
    assert!(can("iot:Subscribe", &format!("topicfilter/{REQUEST}")));
    assert!(can("iot:Receive", &format!("topic/{REQUEST}")));
    for t in [T, DIRECT] {
        assert!(can("iot:Publish", &format!("topic/{t}")), "{t}");
    }
    // It never forges device requests, and sees no other board.
    assert!(!can("iot:Publish", &format!("topic/{REQUEST}")));
    for t in [OTHER_REQUEST, OTHER_T, "MyUniqueTopic/#"] {
        assert!(!can("iot:Subscribe", &format!("topicfilter/{t}")), "{t}");
        assert!(!can("iot:Publish", &format!("topic/{t}")), "{t}");
    }

    let shared = aws_policy("publisher", &["--share-group", "otactl"]);
    let filter = format!("topicfilter/$share/otactl/{REQUEST}");
    assert!(allows(&shared, "iot:Subscribe", &filter, None));
    assert!(!allows(
        &shared,
        "iot:Subscribe",
        &format!("topicfilter/{REQUEST}"),
        None
    ));
    assert!(allows(
        &shared,
        "iot:Receive",
        &format!("topic/{REQUEST}"),
        None
    ));

    let two = aws_policy("publisher", &["--board", "APP_KIT_XMC72_EVK"]);
    assert!(allows(
        &two,
        "iot:Publish",
        &format!("topic/{OTHER_T}"),
        None
    ));
    assert!(allows(&two, "iot:Publish", &format!("topic/{T}"), None));
}

#[test]
fn thing_name_policy_variables_scope_connections_to_the_certificates_thing() {
    let doc = aws_policy("device", &["--thing-name-policy-variables"]);
    let connect =
        |id: &str, thing: Option<&str>| allows(&doc, "iot:Connect", &format!("client/{id}"), thing);
    assert!(connect("board-000131415", Some("board-0001")));
    assert!(!connect("board-000231415", Some("board-0001")));
    assert!(
        !connect("board-000131415", None),
        "a certificate attached to no thing"
    );
    assert!(!connect("CY_IOT_DEVICE31415", Some("board-0001")));
    // Topics stay those of the board.
    assert!(allows(
        &doc,
        "iot:Receive",
        &format!("topic/{T}"),
        Some("board-0001")
    ));
}

#[test]
fn placeholders_are_named_and_bad_values_refused() {
    let out = run(otactl().args(["aws", "policy", "device", "--board", BOARD]));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("arn:aws:iot:REGION:ACCOUNT:topic/"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REGION") && err.contains("--region"), "{err}");

    for (args, want) in [
        (&["--board", "APP_*"][..], "board \"APP_*\""),
        (&["--board", "A/B"][..], "board \"A/B\""),
        (&["--board", BOARD, "--account", "12"][..], "12-digit"),
        (&["--board", BOARD, "--region", "Frankfurt"][..], "region"),
        (
            &["--board", BOARD, "--topic-prefix", "$aws"][..],
            "topic prefix",
        ),
    ] {
        let out = run(otactl().args(["aws", "policy", "device"]).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing printed on error");
    }
}
