//! A known answer: the RSA key and certificate of `testdata/sigv4-core/x509`, the ARNs and
//! time `make-expected.py` there uses, give the request target and `Authorization` header
//! that script built by hand from AWS's documentation and signed with `openssl`
//! (RSASSA-PKCS1-v1_5 is deterministic), through this crate's own request building.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rolesanywhere::{CertificateChain, CreateSession, FileKey, RolesAnywhereClient};

fn testdata(name: &str) -> String {
    let path = format!(
        "{}/../../testdata/sigv4-core/x509/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn create_session_signed_with_a_fixed_rsa_key_and_time_is_byte_for_byte_known() {
    let chain = CertificateChain::from_pem(testdata("rsa-cert.pem").as_bytes()).unwrap();
    let key = FileKey::from_pem(&testdata("rsa-key.pem"), None).unwrap();
    chain.check_key(&key).unwrap();
    let client = RolesAnywhereClient::builder(chain.signer(key).unwrap())
        .region("us-east-1")
        .build()
        .unwrap();
    let request = CreateSession::new(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00010203-0405-0607-0809-0a0b0c0d0e0f"
            .parse()
            .unwrap(),
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0f0e0d0c-0b0a-0908-0706-050403020100"
            .parse()
            .unwrap(),
        "arn:aws:iam::123456789012:role/keyhold-test".parse().unwrap(),
    );
    let at = time::macros::datetime!(2026-12-04 12:00:00 UTC);
    let signed = client.sign_at(&request, at).unwrap();

    assert_eq!(
        signed.uri().path_and_query().unwrap().as_str(),
        testdata("request-target.txt").trim()
    );
    assert_eq!(signed.body(), br#"{"durationSeconds":3600}"#);
    assert_eq!(
        signed.headers()["authorization"],
        testdata("rsa-authorization.txt").trim()
    );
    assert_eq!(signed.headers()["x-amz-date"], "20261204T120000Z");
}
