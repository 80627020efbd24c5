use super::*;

#[test]
fn device_names() {
    for ok in ["board-0001", "A.b_c", "x"] {
        check_device_name(ok).unwrap();
    }
    for bad in [
        "",
        ".x",
        "-x",
        "a/b",
        "a b",
        "a+",
        "#",
        "ca",
        "server",
        "publisher",
        PUBLISHER_CN,
    ] {
        assert!(check_device_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn key_types_parse_and_print() {
    for k in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        assert_eq!(k.to_string().parse::<KeyType>().unwrap(), k);
    }
    assert!("rsa1024".parse::<KeyType>().is_err());
}

#[test]
fn server_needs_an_address_and_rejects_ips_as_names() {
    let pki = Pki::new_ca(KeyType::EcdsaP256, 1).unwrap();
    assert!(pki.server(&[], &[], KeyType::EcdsaP256).is_err());
    let e = pki
        .server(&[], &["10.0.0.1".into()], KeyType::EcdsaP256)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--ip"), "{e}");
}

#[test]
fn a_loaded_ca_must_match_its_key() {
    let a = Pki::new_ca(KeyType::EcdsaP256, 1).unwrap();
    let b = Pki::new_ca(KeyType::EcdsaP256, 1).unwrap();
    Pki::load_ca(&a.ca.cert_pem, &a.ca.key_pem, 1, "ca").unwrap();
    let e = Pki::load_ca(&a.ca.cert_pem, &b.ca.key_pem, 1, "ca")
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not belong"), "{e}");
}
