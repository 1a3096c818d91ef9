//! Signing an IAM Roles Anywhere CreateSession with a signing key in swtpm, against a bare
//! tss-esapi TPM2_Sign loop on a key of the same template, in the same run: groups
//! `ra-tpm-p256` and `ra-tpm-rsa2048`, rows `keyhold` (the whole request signed through
//! `TpmX509Key`, cleartext sessions as the floor's) and `bare-tss-esapi-sign`. Goal:
//! keyhold >= 0.9x bare. Needs swtpm as `tpm.rs` does; one client at a time, so each row
//! connects, runs and disconnects.

mod common;

use std::hint::black_box;

use backend_tpm::tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use backend_tpm::tss_esapi::interface_types::algorithm::HashingAlgorithm;
use backend_tpm::tss_esapi::structures::{Digest, HashScheme, SignatureScheme};
use backend_tpm::tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use backend_tpm::{KeyAuth, SessionEncryption, Tpm};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rolesanywhere::{CreateSession, RolesAnywhereClient};
use sha2::{Digest as _, Sha256};
use sigv4_core::{X509KeyType, X509Signer};
use test_support::rounds::{Group, ROUNDS, round, three_seconds};

fn certificate(kind: &str) -> Vec<u8> {
    // Any certificate of the key's kind: signing does not compare it with the key.
    std::fs::read(format!(
        "{}/../../testdata/sigv4-core/x509/{kind}-cert.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("testdata certificate")
}

/// The floor: tss-esapi alone, a primary and a signing key loaded once, then TPM2_Sign of a
/// SHA-256 digest under a null ticket.
fn bare_sign_loop(c: &mut Group<'_>, id: BenchmarkId, key_type: X509KeyType) {
    let (mut ctx, srk) = common::bare_context_and_primary();
    let template = backend_tpm::signing_key_template(key_type, false).expect("template");
    let created = ctx
        .create(srk, template, None, None, None, None)
        .expect("create");
    let key = ctx
        .load(srk, created.out_private, created.out_public)
        .expect("load");
    ctx.flush_context(srk.into()).expect("flush");
    let scheme = match key_type {
        X509KeyType::P256 => SignatureScheme::EcDsa {
            hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
        },
        _ => SignatureScheme::RsaSsa {
            hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
        },
    };
    // As long as a CreateSession string to sign (about 150 bytes), hashed on the host.
    let message = vec![b'x'; 150];
    c.bench_function(id, |b| {
        b.iter(|| {
            let digest =
                Digest::try_from(Sha256::digest(black_box(&message)).to_vec()).expect("digest");
            let ticket = TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: Default::default(),
            };
            black_box(
                ctx.sign(key, digest, scheme, ticket.try_into().expect("ticket"))
                    .expect("sign"),
            )
        })
    });
    ctx.flush_context(key.into()).expect("flush");
}

/// keyhold: a key made by `create_signing_key`, loaded, and whole requests signed with it.
fn keyhold(c: &mut Group<'_>, id: BenchmarkId, key_type: X509KeyType, kind: &str) {
    let tpm =
        Tpm::connect_with(Some(&common::tcti()), SessionEncryption::Cleartext).expect("swtpm");
    let file = tpm.create_signing_key(key_type, None).expect("create");
    let key = tpm
        .load_signing_key_file(&file, KeyAuth::none())
        .expect("load");
    let client =
        RolesAnywhereClient::builder(X509Signer::new(&certificate(kind), key).expect("signer"))
            .region("us-east-1")
            .build()
            .expect("client");
    let request = CreateSession::new(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0a"
            .parse()
            .expect("arn"),
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b"
            .parse()
            .expect("arn"),
        "arn:aws:iam::123456789012:role/bench".parse().expect("arn"),
    );
    let at = time::macros::datetime!(2026-12-04 12:00:00 UTC);
    c.bench_function(id, |b| {
        b.iter(|| client.sign_at(black_box(&request), at).expect("sign"))
    });
    drop(client);
    tpm.disconnect();
}

fn benches(c: &mut Criterion) {
    for (group, key_type, kind) in [
        ("ra-tpm-p256", X509KeyType::P256, "ec"),
        ("ra-tpm-rsa2048", X509KeyType::Rsa2048, "rsa"),
    ] {
        let mut bare = |g: &mut Group<'_>, id| bare_sign_loop(g, id, key_type);
        let mut ours = |g: &mut Group<'_>, id| keyhold(g, id, key_type, kind);
        for n in 1..=ROUNDS {
            round(
                c,
                group,
                n,
                three_seconds,
                &mut [("bare-tss-esapi-sign", &mut bare), ("keyhold", &mut ours)],
            );
        }
    }
}

criterion_group!(tpm_x509, benches);
criterion_main!(tpm_x509);
