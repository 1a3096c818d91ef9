//! Fuzz target on stable Rust (see `test-support`'s `fuzz`), run for a bounded number of
//! inputs in `cargo xtask ci`: Tink JSON keysets, encrypted (opened with a local AEAD as
//! the master key) and cleartext. Opening never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_tink::{MasterKey, TinkRootKey};
use sigv4_core::{DateStamp, RootKey};
use test_support::fuzz;

#[test]
fn fuzz_tink_keyset() {
    tink_aead::init();
    let handle = tink_core::keyset::Handle::new(&tink_aead::aes256_gcm_key_template()).unwrap();
    let master_key = MasterKey::from_tink_aead("local", tink_aead::new(&handle).unwrap());
    let dictionary: &[&[u8]] = &[
        b"\"encryptedKeyset\":",
        b"\"primaryKeyId\":",
        b"4294967295",
        b"-1",
        b"null",
        b"[]",
        b"{}",
        b"\"",
        b"\\u0000",
        b"type.googleapis.com/google.crypto.tink.HmacKey",
        b"\"ENABLED\"",
        b"\"RAW\"",
        b"\"TINK\"",
        b"=",
    ];
    let date = DateStamp::from_date(time::macros::date!(2026 - 12 - 04));
    let parsed = fuzz::run(
        "tink-keyset",
        0x5eed_0005,
        fuzz::runs(5_000),
        dictionary,
        |input| {
            if let Ok(key) = TinkRootKey::open(input, &master_key) {
                let _ = key.date_key(&date);
            }
            let cleartext = TinkRootKey::insecure_open_cleartext(input);
            if let Ok(key) = &cleartext {
                let _ = key.date_key(&date);
            }
            cleartext.is_ok()
        },
    );
    assert!(parsed > 10, "only {parsed} inputs opened");
}
