//! AWS KMS against moto_server (a real local KMS that checks every signature): create a
//! keyset, read it back, sign; and each way a keyset can fail to open gives its own error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend_tink::{
    Error, MasterKey, TinkRootKey, create_keyset, create_keyset_with_associated_data,
};
use base64::Engine as _;
use common::{SUITE_SECRET, assert_signs_like_software, moto, suite_secret};
use test_support::http::answer_every_request;

#[test]
fn created_keyset_is_standard_json_and_signs_like_the_software_key() {
    let moto = moto();
    let key_uri = moto.create_kms_key("roundtrip");
    let master_key = moto.master_key(&key_uri);

    let json = create_keyset(&suite_secret(), &master_key).unwrap();
    assert!(!json.contains(SUITE_SECRET) && !json.contains("wJalr"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let info = &value["keysetInfo"];
    let key_id = info["primaryKeyId"].as_u64().unwrap();
    assert_ne!(key_id, 0);
    assert_eq!(info["keyInfo"].as_array().unwrap().len(), 1);
    assert_eq!(info["keyInfo"][0]["keyId"].as_u64(), Some(key_id));
    assert_eq!(
        info["keyInfo"][0]["typeUrl"],
        "type.googleapis.com/google.crypto.tink.HmacKey"
    );
    assert_eq!(info["keyInfo"][0]["status"], "ENABLED");
    assert_eq!(info["keyInfo"][0]["outputPrefixType"], "RAW");
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(value["encryptedKeyset"].as_str().unwrap())
            .is_ok()
    );

    // A fresh AEAD (a new client) opens it: nothing was cached in the first one.
    let key = TinkRootKey::open(json.as_bytes(), &moto.master_key(&key_uri)).unwrap();
    assert_eq!(u64::from(key.key_id()), key_id);
    let debug = format!("{key:?}");
    assert!(
        debug.contains("redacted") && !debug.contains("wJalr"),
        "{debug}"
    );
    assert_signs_like_software(key, SUITE_SECRET);
}

#[test]
fn keyset_opens_from_a_file() {
    let moto = moto();
    let key_uri = moto.create_kms_key("file");
    let master_key = moto.master_key(&key_uri);
    let json = create_keyset(&suite_secret(), &master_key).unwrap();
    let dir = std::env::temp_dir().join(common::unique("file"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyset.json");
    std::fs::write(&path, &json).unwrap();
    let key = TinkRootKey::open_file(&path, &master_key).unwrap();
    assert_signs_like_software(key, SUITE_SECRET);

    let err = TinkRootKey::open_file(dir.join("absent.json"), &master_key).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keyset_under_another_kms_key_is_refused() {
    let moto = moto();
    let written_with = moto.create_kms_key("written-with");
    let other = moto.create_kms_key("other");
    let json = create_keyset(&suite_secret(), &moto.master_key(&written_with)).unwrap();

    let err = TinkRootKey::open(json.as_bytes(), &moto.master_key(&other)).unwrap_err();
    // Real KMS answers IncorrectKeyException (-> WrongKmsKey); moto answers
    // AccessDeniedException naming the ciphertext's key (-> KmsDenied). Both say so.
    match &err {
        Error::WrongKmsKey { uri, .. } => assert_eq!(uri, &other),
        Error::KmsDenied {
            uri,
            operation,
            code,
            ..
        } => {
            assert_eq!(uri, &other);
            assert_eq!(*operation, "Decrypt");
            assert_eq!(code, "AccessDeniedException");
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("encrypted under this key") || text.contains("not encrypted under"),
        "{text}"
    );
}

#[test]
fn corrupted_encrypted_keyset_is_refused() {
    let moto = moto();
    let key_uri = moto.create_kms_key("corrupt");
    let master_key = moto.master_key(&key_uri);
    let json = create_keyset(&suite_secret(), &master_key).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut ciphertext = b64
        .decode(value["encryptedKeyset"].as_str().unwrap())
        .unwrap();
    let last = ciphertext.len() - 1;
    ciphertext[last] ^= 0x01; // damage the authentication tag
    value["encryptedKeyset"] = b64.encode(&ciphertext).into();
    let damaged = serde_json::to_vec(&value).unwrap();

    let err = TinkRootKey::open(&damaged, &master_key).unwrap_err();
    assert!(
        matches!(&err, Error::KeysetCiphertextInvalid { code, .. } if code == "InvalidCiphertextException"),
        "{err:?}"
    );
    assert!(err.to_string().contains("corrupted"), "{err}");

    // Not even base64, or not a keyset at all: refused before KMS is asked.
    value["encryptedKeyset"] = "not base64!".into();
    let err = TinkRootKey::open(&serde_json::to_vec(&value).unwrap(), &master_key).unwrap_err();
    assert!(matches!(err, Error::KeysetJson { .. }), "{err}");
    let err = TinkRootKey::open(b"[1, 2, 3]", &master_key).unwrap_err();
    assert!(matches!(err, Error::KeysetJson { .. }), "{err}");
}

#[test]
fn keyset_with_an_aes_key_is_refused() {
    let moto = moto();
    let key_uri = moto.create_kms_key("aes");
    tink_aead::init();
    let handle = tink_core::keyset::Handle::new(&tink_aead::aes256_gcm_key_template()).unwrap();
    let mut json = Vec::new();
    // Written by Tink itself, through our AEAD's tink_core::Aead implementation.
    handle
        .write(
            &mut tink_core::keyset::JsonWriter::new(&mut json),
            Box::new(moto.aead(&key_uri)),
        )
        .unwrap();

    let err = TinkRootKey::open(&json, &moto.master_key(&key_uri)).unwrap_err();
    match &err {
        Error::NotHmac { type_url, key_id } => {
            assert_eq!(type_url, "type.googleapis.com/google.crypto.tink.AesGcmKey");
            assert_eq!(*key_id, handle.keyset_info().primary_key_id);
        }
        other => panic!("expected NotHmac, got {other:?}"),
    }
    assert!(err.to_string().contains("not an HMAC key"), "{err}");
}

#[test]
fn tink_generated_hmac_key_is_refused_as_not_an_aws_secret() {
    let moto = moto();
    let key_uri = moto.create_kms_key("tink-hmac");
    tink_mac::init();
    let handle =
        tink_core::keyset::Handle::new(&tink_mac::hmac_sha256_tag256_key_template()).unwrap();
    let mut json = Vec::new();
    handle
        .write(
            &mut tink_core::keyset::JsonWriter::new(&mut json),
            Box::new(moto.aead(&key_uri)),
        )
        .unwrap();
    // Tink's template uses the TINK prefix; that is refused first.
    let err = TinkRootKey::open(&json, &moto.master_key(&key_uri)).unwrap_err();
    assert!(
        matches!(&err, Error::UnsuitableHmacKey { reason, .. } if reason.contains("TINK")),
        "{err}"
    );
}

#[test]
fn missing_kms_key_is_refused() {
    let moto = moto();
    let missing = moto.missing_key_uri();
    let err = create_keyset(&suite_secret(), &moto.master_key(&missing)).unwrap_err();
    assert!(
        matches!(&err, Error::KmsKeyNotFound { operation: "Encrypt", code, .. } if code == "NotFoundException"),
        "{err:?}"
    );

    let key_uri = moto.create_kms_key("exists");
    let json = create_keyset(&suite_secret(), &moto.master_key(&key_uri)).unwrap();
    let err = TinkRootKey::open(json.as_bytes(), &moto.master_key(&missing)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::KmsKeyNotFound {
                operation: "Decrypt",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn associated_data_binds_the_keyset() {
    let moto = moto();
    let key_uri = moto.create_kms_key("ad");
    let master_key = moto.master_key(&key_uri);
    let json =
        create_keyset_with_associated_data(&suite_secret(), &master_key, b"profile=prod").unwrap();
    let key = TinkRootKey::open_with_associated_data(json.as_bytes(), &master_key, b"profile=prod")
        .unwrap();
    assert_signs_like_software(key, SUITE_SECRET);
    for wrong in [&b""[..], b"profile=dev"] {
        let err = TinkRootKey::open_with_associated_data(json.as_bytes(), &master_key, wrong)
            .unwrap_err();
        assert!(
            matches!(err, Error::KeysetCiphertextInvalid { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn wrong_credentials_are_denied() {
    let moto = moto();
    let key_uri = moto.create_kms_key("creds");
    let aead = backend_tink::AwsKmsAead::new(
        &key_uri,
        backend_tink::AwsKmsOptions::new()
            .endpoint_url(&moto.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                &moto.access_key_id,
                "not-the-secret-access-key-of-this-user",
                None,
                None,
                "wrong",
            )),
    )
    .unwrap();
    let err = create_keyset(&suite_secret(), &MasterKey::from(aead)).unwrap_err();
    assert!(matches!(err, Error::KmsDenied { .. }), "{err:?}");
}

#[test]
fn unreachable_endpoint_is_reported_as_unavailable() {
    let moto = moto();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let aead = backend_tink::AwsKmsAead::new(
        &moto.missing_key_uri(),
        backend_tink::AwsKmsOptions::new()
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(moto.credentials()),
    )
    .unwrap();
    let err = create_keyset(&suite_secret(), &MasterKey::from(aead)).unwrap_err();
    assert!(matches!(err, Error::KmsUnavailable { .. }), "{err:?}");
    assert_eq!(err.kind(), sigv4_core::KeyErrorKind::Unavailable);
}

#[tokio::test(flavor = "current_thread")]
async fn usable_inside_a_current_thread_runtime() {
    let moto = moto();
    let key_uri = moto.create_kms_key_blocking_outside(&key_label("ct"));
    let master_key = moto.master_key(&key_uri);
    let json = create_keyset(&suite_secret(), &master_key).unwrap();
    let key = TinkRootKey::open(json.as_bytes(), &master_key).unwrap();
    drop(master_key); // dropping the client inside a runtime must not panic
    assert_signs_like_software(key, SUITE_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_inside_a_multi_thread_runtime() {
    let moto = moto();
    let key_uri = moto.create_kms_key_blocking_outside(&key_label("mt"));
    let handle = tokio::spawn(async move {
        let master_key = moto.master_key(&key_uri);
        let json = create_keyset(&suite_secret(), &master_key).unwrap();
        TinkRootKey::open(json.as_bytes(), &master_key).unwrap()
    });
    assert_signs_like_software(handle.await.unwrap(), SUITE_SECRET);
}

fn key_label(flavor: &str) -> String {
    format!("runtime-{flavor}")
}

/// Creating the test's KMS key uses a runtime of its own, so from inside a runtime it runs
/// on a plain thread.
trait CreateOutside {
    fn create_kms_key_blocking_outside(&self, name: &str) -> String;
}

impl CreateOutside for common::Moto {
    fn create_kms_key_blocking_outside(&self, name: &str) -> String {
        std::thread::scope(|s| s.spawn(|| self.create_kms_key(name)).join().unwrap())
    }
}

#[test]
fn a_redirect_is_not_followed() {
    let moto = moto();
    let (target, reached) = answer_every_request(common::reply(200, ""));
    let (redirecting, asked) =
        answer_every_request(common::reply(307, &format!("location: {target}/\r\n")));
    let aead = backend_tink::AwsKmsAead::new(
        &moto.missing_key_uri(),
        backend_tink::AwsKmsOptions::new()
            .endpoint_url(&redirecting)
            .credentials_provider(moto.credentials()),
    )
    .unwrap();
    let err = create_keyset(&suite_secret(), &MasterKey::from(aead)).unwrap_err();
    assert!(
        asked.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "{err:?}"
    );
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the secret's Encrypt followed the redirect"
    );
}

#[test]
fn plain_http_to_another_machine_is_refused_unless_allowed() {
    let moto = moto();
    let options = || {
        backend_tink::AwsKmsOptions::new()
            .endpoint_url("http://10.1.2.3:8080")
            .credentials_provider(moto.credentials())
    };
    let err = backend_tink::AwsKmsAead::new(&moto.missing_key_uri(), options()).unwrap_err();
    assert!(matches!(err, Error::KmsEndpointRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("plain http"), "{err}");
    backend_tink::AwsKmsAead::new(&moto.missing_key_uri(), options().allow_insecure_http(true))
        .unwrap();
}
