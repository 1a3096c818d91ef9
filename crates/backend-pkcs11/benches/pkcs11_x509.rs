//! Signing an IAM Roles Anywhere CreateSession with a private key in SoftHSM, against a bare
//! cryptoki `C_Sign` loop on the same key in one session, in the same run: groups
//! `ra-pkcs11-p256` (CKM_ECDSA over a SHA-256) and `ra-pkcs11-rsa2048` (CKM_SHA256_RSA_PKCS),
//! rows `keyhold` (the whole request signed through `Pkcs11X509Key`) and `bare-c-sign`.
//! Goal: keyhold >= 0.9x bare. Needs SoftHSM as the e2e tests do; `cargo xtask bench
//! pkcs11-x509` sets it up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use backend_pkcs11::Pkcs11X509Key;
use backend_pkcs11::uri::ObjectType;
use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use rolesanywhere::{CreateSession, RolesAnywhereClient};
use sha2::{Digest, Sha256};
use sigv4_core::{X509KeyType, X509Signer};
use test_support::rounds::{ROUNDS, plain, round, three_seconds};
use test_support::softhsm::TestToken;

fn certificate(kind: &str) -> Vec<u8> {
    // Any certificate of the key's kind: signing does not compare it with the key.
    std::fs::read(format!(
        "{}/../../testdata/sigv4-core/x509/{kind}-cert.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn benches(c: &mut Criterion) {
    let token = TestToken::new("bench-x509");
    let at = time::macros::datetime!(2026-12-04 12:00:00 UTC);
    let request = CreateSession::new(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0a"
            .parse()
            .unwrap(),
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b"
            .parse()
            .unwrap(),
        "arn:aws:iam::123456789012:role/bench".parse().unwrap(),
    );
    for (group, object, key_type, cert) in [
        ("ra-pkcs11-p256", "p256", X509KeyType::P256, "ec"),
        ("ra-pkcs11-rsa2048", "rsa", X509KeyType::Rsa2048, "rsa"),
    ] {
        backend_pkcs11::generate_key_pair(&token.uri(object), None, key_type).unwrap();
        let mut uri = token.uri(object);
        uri.object_type = Some(ObjectType::Private);
        let key = Pkcs11X509Key::open(&uri, None).unwrap();
        let client =
            RolesAnywhereClient::builder(X509Signer::new(&certificate(cert), key).unwrap())
                .region("us-east-1")
                .build()
                .unwrap();
        let session = token.user_session();
        let handle = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(object.as_bytes().to_vec()),
            ])
            .unwrap()[0];
        // As long as a CreateSession string to sign (about 150 bytes).
        let message = vec![b'x'; 150];
        let mut keyhold_row =
            |b: &mut Bencher<'_>| b.iter(|| client.sign_at(black_box(&request), at).unwrap());
        let mut bare_row = |b: &mut Bencher<'_>| {
            b.iter(|| match key_type {
                X509KeyType::P256 => session
                    .sign(
                        &Mechanism::Ecdsa,
                        handle,
                        &Sha256::digest(black_box(&message)),
                    )
                    .unwrap(),
                _ => session
                    .sign(&Mechanism::Sha256RsaPkcs, handle, black_box(&message))
                    .unwrap(),
            })
        };
        for n in 1..=ROUNDS {
            round(
                c,
                group,
                n,
                three_seconds,
                &mut [
                    ("keyhold", &mut plain(&mut keyhold_row)),
                    ("bare-c-sign", &mut plain(&mut bare_row)),
                ],
            );
        }
    }
}

criterion_group!(pkcs11_x509, benches);
criterion_main!(pkcs11_x509);
