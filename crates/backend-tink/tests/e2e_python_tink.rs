//! Keyset compatibility with Python Tink (PyPI `tink`, in the xtask virtualenv) through its
//! own AWS KMS integration pointed at moto: each side opens the other's keyset and computes
//! the same HMAC.
//!
//! Python runs `tests/tink_interop.py`; the secret goes to it on stdin, never in argv or env.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use backend_tink::{TinkRootKey, create_keyset, create_keyset_with_associated_data};
use common::{Moto, SUITE_SECRET, assert_signs_like_software, hex, moto, suite_secret};
use sigv4_core::{DateStamp, RootKey, SoftwareRootKey};

/// Runs the interop script with `args`, `stdin`, and moto's endpoint and credentials.
fn python(moto: &Moto, args: &[&str], stdin: &[u8]) -> String {
    let bin = std::env::var_os(test_support::env::PYTHON_BIN).unwrap_or_else(|| {
        panic!(
            "KEYHOLD_TEST_PYTHON_BIN is not set: run the Python Tink tests through \
             `cargo xtask e2e`, which creates the virtualenv with PyPI tink"
        )
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tink_interop.py");
    let mut child = Command::new(PathBuf::from(bin).join("python"))
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL_KMS", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting Python");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tink_interop.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn keyset_made_by_python_tink_opens_in_keyhold_and_signs_identically() {
    let moto = moto();
    let key_uri = moto.create_kms_key("from-python");
    let json = python(&moto, &["create", &key_uri, ""], SUITE_SECRET.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["keysetInfo"]["primaryKeyId"], 1234567890);

    let key = TinkRootKey::open(json.as_bytes(), &moto.master_key(&key_uri)).unwrap();
    assert_eq!(key.key_id(), 1234567890);
    assert_signs_like_software(key, SUITE_SECRET);
}

#[test]
fn keyset_made_by_python_tink_with_associated_data_opens_in_keyhold() {
    let moto = moto();
    let key_uri = moto.create_kms_key("from-python-ad");
    let ad = b"keyhold interop";
    let json = python(
        &moto,
        &["create", &key_uri, &hex(ad)],
        SUITE_SECRET.as_bytes(),
    );
    let master_key = moto.master_key(&key_uri);
    let key = TinkRootKey::open_with_associated_data(json.as_bytes(), &master_key, ad).unwrap();
    assert_signs_like_software(key, SUITE_SECRET);
    // The encryption context is what binds it: without it KMS refuses.
    assert!(TinkRootKey::open(json.as_bytes(), &master_key).is_err());
}

#[test]
fn keyset_made_by_keyhold_opens_in_python_tink_with_the_same_mac() {
    let moto = moto();
    let key_uri = moto.create_kms_key("to-python");
    let json = create_keyset(&suite_secret(), &moto.master_key(&key_uri)).unwrap();
    let python_mac = python(&moto, &["mac", &key_uri, "", "20150830"], json.as_bytes());

    let software = SoftwareRootKey::from_secret_access_key(SUITE_SECRET);
    let stamp = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    assert_eq!(
        python_mac,
        hex(software.date_key(&stamp).unwrap().as_bytes())
    );
}

#[test]
fn keyset_made_by_keyhold_with_associated_data_opens_in_python_tink() {
    let moto = moto();
    let key_uri = moto.create_kms_key("to-python-ad");
    let ad = b"profile=prod";
    let json = create_keyset_with_associated_data(&suite_secret(), &moto.master_key(&key_uri), ad)
        .unwrap();
    let python_mac = python(
        &moto,
        &["mac", &key_uri, &hex(ad), "20240229"],
        json.as_bytes(),
    );

    let software = SoftwareRootKey::from_secret_access_key(SUITE_SECRET);
    let stamp = DateStamp::from_date(time::macros::date!(2024 - 02 - 29));
    assert_eq!(
        python_mac,
        hex(software.date_key(&stamp).unwrap().as_bytes())
    );
}
