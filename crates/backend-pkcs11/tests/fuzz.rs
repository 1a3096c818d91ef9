//! Fuzz target on stable Rust (see `test-support`'s `fuzz`), run for a bounded number of
//! inputs in `cargo xtask ci`: RFC 7512 PKCS#11 URIs, as `--key` and configuration files
//! give them. Parsing never panics, and what parses prints as a URI that parses again to
//! the same text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_pkcs11::Pkcs11Uri;
use test_support::fuzz;

#[test]
fn fuzz_pkcs11_uri() {
    let dictionary: &[&[u8]] = &[
        b"%",
        b"%2",
        b"%00",
        b"%ff",
        b";",
        b"?",
        b"&",
        b"=",
        b"pin-value=",
        b"pin-source=file:",
        b"module-path=",
        b"id=",
        b"type=secret-key",
        b"token=",
        b"object=",
        b"serial=",
    ];
    let parsed = fuzz::run(
        "pkcs11-uri",
        0x5eed_0003,
        fuzz::runs(20_000),
        dictionary,
        |input| {
            let text = String::from_utf8_lossy(input);
            let Ok(uri) = Pkcs11Uri::parse(&text) else {
                return false;
            };
            let printed = uri.to_string();
            let again = Pkcs11Uri::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again.to_string(), printed, "{text:?}");
            true
        },
    );
    assert!(parsed > 10, "only {parsed} inputs parsed");
}
