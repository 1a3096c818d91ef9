//! Signing an IAM Roles Anywhere CreateSession with a file key, against the bare signature
//! of the same key in the same run (RustCrypto's, over a message of the string to sign's
//! length): what building the request, its canonical form and its headers add to the one
//! private-key operation. Groups `ra-file-p256` and `ra-file-rsa2048`, rows `keyhold` and
//! `bare-sign`; `cargo xtask bench rolesanywhere` prints the ratios (target >= 0.9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use rolesanywhere::{CertificateChain, CreateSession, FileKey, RolesAnywhereClient};
use sigv4_core::X509Key;
use test_support::rounds::{ROUNDS, plain, round, three_seconds};

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../testdata/sigv4-core/x509/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn request() -> CreateSession {
    CreateSession::new(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00010203-0405-0607-0809-0a0b0c0d0e0f"
            .parse()
            .unwrap(),
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0f0e0d0c-0b0a-0908-0706-050403020100"
            .parse()
            .unwrap(),
        "arn:aws:iam::123456789012:role/keyhold-test".parse().unwrap(),
    )
}

fn benches(c: &mut Criterion) {
    let at = time::macros::datetime!(2026-12-04 12:00:00 UTC);
    for (group, kind) in [("ra-file-p256", "ec"), ("ra-file-rsa2048", "rsa")] {
        let chain =
            CertificateChain::from_pem(testdata(&format!("{kind}-cert.pem")).as_bytes()).unwrap();
        let client = RolesAnywhereClient::builder(
            chain
                .signer(FileKey::from_pem(&testdata(&format!("{kind}-key.pem")), None).unwrap())
                .unwrap(),
        )
        .region("us-east-1")
        .build()
        .unwrap();
        let request = request();
        // The bare row signs a message as long as a CreateSession string to sign (algorithm,
        // date, scope and a hex SHA-256: about 150 bytes).
        let bare_key = FileKey::from_pem(&testdata(&format!("{kind}-key.pem")), None).unwrap();
        let message = vec![b'x'; 150];
        let mut keyhold_row =
            |b: &mut Bencher<'_>| b.iter(|| client.sign_at(black_box(&request), at).unwrap());
        let mut bare_row =
            |b: &mut Bencher<'_>| b.iter(|| bare_key.sign(black_box(&message)).unwrap());
        for n in 1..=ROUNDS {
            round(
                c,
                group,
                n,
                three_seconds,
                &mut [
                    ("keyhold", &mut plain(&mut keyhold_row)),
                    ("bare-sign", &mut plain(&mut bare_row)),
                ],
            );
        }
    }
}

criterion_group!(create_session, benches);
criterion_main!(create_session);
