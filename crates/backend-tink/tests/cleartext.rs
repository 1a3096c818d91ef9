//! The `insecure-cleartext-keyset` feature: a cleartext keyset written by keyhold opens and
//! signs like the software key, and goes through the same checks as an encrypted one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend_tink::{Error, TinkRootKey, insecure_cleartext_keyset};
use common::{SUITE_SECRET, assert_signs_like_software, suite_secret};

#[test]
fn cleartext_keyset_round_trips() {
    let json = insecure_cleartext_keyset(&suite_secret());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["key"][0]["outputPrefixType"], "RAW");
    assert_eq!(value["key"][0]["keyData"]["keyMaterialType"], "SYMMETRIC");
    let key = TinkRootKey::insecure_open_cleartext(json.as_bytes()).unwrap();
    assert_signs_like_software(key, SUITE_SECRET);
}

#[test]
fn cleartext_keyset_with_wrong_parameters_is_refused() {
    let json = insecure_cleartext_keyset(&suite_secret());
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["key"][0]["outputPrefixType"] = "LEGACY".into();
    let err = TinkRootKey::insecure_open_cleartext(value.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(&err, Error::UnsuitableHmacKey { reason, .. } if reason.contains("LEGACY")),
        "{err:?}"
    );
    let err = TinkRootKey::insecure_open_cleartext(b"{\"encryptedKeyset\": \"AA==\"}").unwrap_err();
    assert!(matches!(err, Error::KeysetJson { .. }), "{err:?}");
}
