//! Fuzz targets on stable Rust (see `test-support`'s `fuzz`), run for a bounded number of
//! inputs in `cargo xtask ci`: a certificate's DER (the serial number X.509 signing needs),
//! and arbitrary request targets and headers through the whole signer, header and query
//! placement. Neither may panic; what signs must give a 64-hex-digit signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sigv4_core::{
    KeyError, KeyErrorKind, Payload, SignableRequest, SignatureLocation, Signer, SigningParams,
    SoftwareRootKey, X509Key, X509KeyKind, X509Signer,
};
use test_support::fuzz;

#[derive(Debug)]
struct NoKey;

impl X509Key for NoKey {
    fn kind(&self) -> X509KeyKind {
        X509KeyKind::Ecdsa
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::new(KeyErrorKind::Denied, "not in this test"))
    }
}

#[test]
fn fuzz_x509_certificate() {
    let dictionary: &[&[u8]] = &[
        &[0x30, 0x82],
        &[0x02, 0x01, 0x00],
        &[0xa0, 0x03],
        &[0x81],
        &[0x84, 0xff],
    ];
    let parsed = fuzz::run(
        "x509-certificate",
        0x5eed_0001,
        fuzz::runs(20_000),
        dictionary,
        |der| {
            // The public key's reader walks further into the same DER; it must not panic.
            let _ = sigv4_core::X509PublicKey::of_certificate(der);
            let Ok(signer) = X509Signer::new(der, NoKey) else {
                return false;
            };
            let serial = signer.serial_number();
            assert!(
                !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit()),
                "{serial}"
            );
            true
        },
    );
    assert!(parsed > 10, "only {parsed} inputs parsed");
}

#[test]
fn fuzz_sigv4_request() {
    let signer = Signer::new(
        "AKIDEXAMPLE",
        SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    )
    .with_session_token("token");
    let params = SigningParams::new("us-east-1", "service")
        .at(time::macros::datetime!(2015-08-30 12:36:00 UTC));
    let dictionary: &[&[u8]] = &[
        b"%",
        b"%2",
        b"%zz",
        b"+",
        b"&",
        b"=",
        b"/../",
        b"/./",
        b"//",
        b"?",
        b"\n",
        b":",
        b" ",
        b"\xe1\x88\xb4",
        b"\xff",
        b"host:",
        b"x-amz-date:",
        b"X-Amz-Security-Token=",
    ];
    let presigned = std::sync::atomic::AtomicUsize::new(0);
    fuzz::run(
        "sigv4-request",
        0x5eed_0002,
        fuzz::runs(20_000),
        dictionary,
        |input| {
            let text = String::from_utf8_lossy(input);
            let mut lines = text.split('\n');
            let (method, target) = lines
                .next()
                .unwrap_or_default()
                .split_once(' ')
                .unwrap_or(("GET", "/"));
            let mut request = SignableRequest::new(method, target);
            for line in lines {
                if let Some((name, value)) = line.split_once(':') {
                    request = request.header(name, value.as_bytes());
                }
            }
            let mut signed = false;
            for location in [
                SignatureLocation::Headers,
                SignatureLocation::QueryParams {
                    expires_in: Duration::from_secs(60),
                },
            ] {
                if let Ok(out) =
                    signer.sign_signable(&request, Payload::Bytes(input), &params, location)
                {
                    assert_eq!(out.signature().to_string().len(), 64);
                    let _ = (
                        out.canonical_request().redacted().to_string(),
                        out.additions(),
                    );
                    signed = true;
                }
            }
            // A target that makes a URI is presigned on a request too: the URI copies the
            // signed parameters from the canonical query, then appends the signature.
            if let Ok(mut request) = http::Request::get(format!("https://h{target}")).body(input) {
                let expires_in = Duration::from_secs(60);
                if let Ok(out) = signer.presign_request(&mut request, &params, expires_in) {
                    let query = request.uri().query().unwrap_or_default();
                    let signature = format!("X-Amz-Signature={}", out.signature());
                    assert!(query.contains(&signature), "{query}");
                    assert!(query.contains("X-Amz-Credential=AKIDEXAMPLE%2F"), "{query}");
                    assert!(query.ends_with("X-Amz-Security-Token=token"), "{query}");
                    presigned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            signed
        },
    );
    assert!(
        presigned.into_inner() > 100,
        "the fuzz run presigned too few requests on an http::Request"
    );
}
