//! Google Cloud KMS has no local emulator, so these tests run `GcpKmsAead` (the official
//! `google-cloud-kms-v1` client underneath) against a small HTTP server in the test that
//! implements the documented REST calls `POST /v1/{name}:encrypt` and `POST /v1/{name}:decrypt`
//! and checks what it receives: the path, the base64 fields, and the CRC32C checksums.
//!
//! What this proves: our request mapping (name, plaintext, associated data, checksums), our
//! checks on the reply (verified flags, key name, checksums), our error mapping of Google's
//! JSON error format, and a keyset round trip. What it cannot prove: that real Cloud KMS
//! accepts the calls (authentication, IAM, real ciphertexts) — see the README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use backend_tink::{
    Error, GcpKmsAead, GcpKmsOptions, MasterKey, TinkRootKey, create_keyset,
    create_keyset_with_associated_data,
};
use base64::Engine as _;
use common::{SUITE_SECRET, assert_signs_like_software, suite_secret};
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
const MAGIC: &[u8] = b"gcpkms-double\0";

/// CRC32C, bit by bit (independent of the table-driven one in the crate).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One request the double received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    body: Value,
}

/// The local stand-in for Cloud KMS.
struct KmsDouble {
    endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl KmsDouble {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Self { endpoint, received }
    }

    fn aead(&self, key_name: &str) -> GcpKmsAead {
        GcpKmsAead::new(
            &format!("gcp-kms://{key_name}"),
            GcpKmsOptions::new()
                .endpoint(&self.endpoint)
                .credentials(google_cloud_auth::credentials::anonymous::Builder::new().build()),
        )
        .unwrap()
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves HTTP/1.1 requests on one connection until the client closes it.
fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
        let path = target.split('?').next().unwrap().to_owned();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        log.lock().unwrap().push(Received {
            path: path.clone(),
            body: body.clone(),
        });
        let (status, reply) = if method == "POST" {
            handle(&path, &body)
        } else {
            error(405, "method not allowed", "INVALID_ARGUMENT")
        };
        let reply = reply.to_string();
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}

fn error(code: u16, message: &str, status: &str) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// A bytes field of the request (proto3 JSON leaves empty ones out).
fn bytes_field(body: &Value, name: &str) -> Vec<u8> {
    body.get(name)
        .and_then(Value::as_str)
        .map(|s| B64.decode(s).expect("request bytes field must be base64"))
        .unwrap_or_default()
}

/// An int64 field, as a JSON string (proto3 JSON) or number.
fn int64_field(body: &Value, name: &str) -> Option<i64> {
    match body.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The documented behaviour of encrypt and decrypt, with a reversible stand-in cipher.
fn handle(path: &str, body: &Value) -> (u16, Value) {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return error(404, "unknown path", "NOT_FOUND");
    };
    let (name, verb) = rest.rsplit_once(':').unwrap_or((rest, ""));
    let key = name.rsplit('/').next().unwrap_or("");
    if !name.starts_with("projects/p/locations/global/keyRings/r/cryptoKeys/")
        || !["k", "lying-crc", "unverified", "other-name"].contains(&key)
    {
        return error(404, &format!("CryptoKey {name} not found."), "NOT_FOUND");
    }
    let aad = bytes_field(body, "additionalAuthenticatedData");
    if int64_field(body, "additionalAuthenticatedDataCrc32c") != Some(i64::from(crc32c(&aad))) {
        return error(
            400,
            "additional_authenticated_data_crc32c missing or wrong",
            "INVALID_ARGUMENT",
        );
    }
    match verb {
        "encrypt" => {
            let plaintext = bytes_field(body, "plaintext");
            if int64_field(body, "plaintextCrc32c") != Some(i64::from(crc32c(&plaintext))) {
                return error(400, "plaintext_crc32c missing or wrong", "INVALID_ARGUMENT");
            }
            let mut ciphertext = MAGIC.to_vec();
            ciphertext.extend_from_slice(&(aad.len() as u32).to_be_bytes());
            ciphertext.extend_from_slice(&aad);
            ciphertext.extend(plaintext.iter().map(|b| b ^ 0x5c));
            let crc = crc32c(&ciphertext) ^ u32::from(key == "lying-crc");
            let reply_name = if key == "other-name" {
                "projects/p/locations/global/keyRings/r/cryptoKeys/k2/cryptoKeyVersions/1"
                    .to_owned()
            } else {
                format!("{name}/cryptoKeyVersions/1")
            };
            (
                200,
                json!({
                    "name": reply_name,
                    "ciphertext": B64.encode(&ciphertext),
                    "ciphertextCrc32c": crc.to_string(),
                    "verifiedPlaintextCrc32c": key != "unverified",
                    "verifiedAdditionalAuthenticatedDataCrc32c": true,
                    "protectionLevel": "SOFTWARE",
                }),
            )
        }
        "decrypt" => {
            let ciphertext = bytes_field(body, "ciphertext");
            if int64_field(body, "ciphertextCrc32c") != Some(i64::from(crc32c(&ciphertext))) {
                return error(
                    400,
                    "ciphertext_crc32c missing or wrong",
                    "INVALID_ARGUMENT",
                );
            }
            let failed = || {
                error(
                    400,
                    "Decryption failed: the ciphertext is invalid.",
                    "INVALID_ARGUMENT",
                )
            };
            let Some(rest) = ciphertext.strip_prefix(MAGIC) else {
                return failed();
            };
            if rest.len() < 4 {
                return failed();
            }
            let aad_len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            if rest.len() < 4 + aad_len || rest[4..4 + aad_len] != aad[..] {
                return failed();
            }
            let plaintext: Vec<u8> = rest[4 + aad_len..].iter().map(|b| b ^ 0x5c).collect();
            (
                200,
                json!({
                    "plaintext": B64.encode(&plaintext),
                    "plaintextCrc32c": crc32c(&plaintext).to_string(),
                    "usedPrimary": true,
                    "protectionLevel": "SOFTWARE",
                }),
            )
        }
        _ => error(404, "unknown method", "NOT_FOUND"),
    }
}

#[test]
fn keyset_round_trip_sends_the_documented_requests() {
    let kms = KmsDouble::start();
    let master_key = MasterKey::from(kms.aead(KEY));
    assert_eq!(master_key.name(), format!("gcp-kms://{KEY}"));
    let json = create_keyset_with_associated_data(&suite_secret(), &master_key, b"ad").unwrap();
    let key = TinkRootKey::open_with_associated_data(json.as_bytes(), &master_key, b"ad").unwrap();
    assert_signs_like_software(key, SUITE_SECRET);

    let received = kms.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    // create = encrypt + read-back decrypt; open = decrypt.
    assert_eq!(
        paths,
        [
            format!("/v1/{KEY}:encrypt"),
            format!("/v1/{KEY}:decrypt"),
            format!("/v1/{KEY}:decrypt")
        ]
    );
    let encrypt = &received[0].body;
    assert_eq!(bytes_field(encrypt, "additionalAuthenticatedData"), b"ad");
    let plaintext = bytes_field(encrypt, "plaintext");
    assert!(!plaintext.is_empty());
    assert_eq!(
        int64_field(encrypt, "plaintextCrc32c"),
        Some(i64::from(crc32c(&plaintext)))
    );
    let decrypt = &received[2].body;
    let ciphertext = bytes_field(decrypt, "ciphertext");
    assert!(ciphertext.starts_with(MAGIC));
    assert_eq!(
        int64_field(decrypt, "ciphertextCrc32c"),
        Some(i64::from(crc32c(&ciphertext)))
    );
}

#[test]
fn usable_as_a_tink_aead_and_inside_a_runtime() {
    let kms = KmsDouble::start();
    let aead = kms.aead(KEY);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plaintext = runtime.block_on(async {
        let ciphertext = tink_core::Aead::encrypt(&aead, b"hello", b"").unwrap();
        tink_core::Aead::decrypt(&aead, &ciphertext, b"").unwrap()
    });
    assert_eq!(plaintext, b"hello");
}

#[test]
fn unknown_key_is_not_found() {
    let kms = KmsDouble::start();
    let master_key =
        MasterKey::from(kms.aead("projects/p/locations/global/keyRings/r/cryptoKeys/gone"));
    let err = create_keyset(&suite_secret(), &master_key).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::KmsKeyNotFound {
                operation: "Encrypt",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn wrong_associated_data_is_a_ciphertext_error() {
    let kms = KmsDouble::start();
    let master_key = MasterKey::from(kms.aead(KEY));
    let json = create_keyset(&suite_secret(), &master_key).unwrap();
    let err =
        TinkRootKey::open_with_associated_data(json.as_bytes(), &master_key, b"other").unwrap_err();
    assert!(
        matches!(err, Error::KeysetCiphertextInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn replies_failing_integrity_checks_are_refused() {
    let kms = KmsDouble::start();
    let key = |id: &str| {
        MasterKey::from(kms.aead(&format!(
            "projects/p/locations/global/keyRings/r/cryptoKeys/{id}"
        )))
    };
    let err = create_keyset(&suite_secret(), &key("lying-crc")).unwrap_err();
    assert!(
        matches!(&err, Error::KmsReply { reason, .. } if reason.contains("ciphertextCrc32c")),
        "{err:?}"
    );
    let err = create_keyset(&suite_secret(), &key("unverified")).unwrap_err();
    assert!(
        matches!(&err, Error::KmsReply { reason, .. } if reason.contains("verifiedPlaintextCrc32c")),
        "{err:?}"
    );
    let err = create_keyset(&suite_secret(), &key("other-name")).unwrap_err();
    assert!(
        matches!(&err, Error::WrongKmsKey { detail, .. } if detail.contains("cryptoKeys/k2")),
        "{err:?}"
    );
}

#[test]
fn a_redirect_is_not_followed() {
    let kms = KmsDouble::start();
    let location = format!("location: {}/v1/{KEY}:encrypt\r\n", kms.endpoint);
    let (redirecting, asked) =
        test_support::http::answer_every_request(common::reply(307, &location));
    let aead = GcpKmsAead::new(
        &format!("gcp-kms://{KEY}"),
        GcpKmsOptions::new()
            .endpoint(&redirecting)
            .credentials(google_cloud_auth::credentials::anonymous::Builder::new().build()),
    )
    .unwrap();
    let err = create_keyset(&suite_secret(), &MasterKey::from(aead)).unwrap_err();
    assert!(
        asked.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "{err:?}"
    );
    assert!(
        kms.received().is_empty(),
        "the secret's encrypt followed the redirect"
    );
}

#[test]
fn plain_http_to_another_machine_is_refused_unless_allowed() {
    let options = || {
        GcpKmsOptions::new()
            .endpoint("http://10.1.2.3:8080")
            .credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
    };
    let uri = format!("gcp-kms://{KEY}");
    let err = GcpKmsAead::new(&uri, options()).unwrap_err();
    assert!(matches!(err, Error::KmsEndpointRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("plain http"), "{err}");
    GcpKmsAead::new(&uri, options().allow_insecure_http(true)).unwrap();
}
