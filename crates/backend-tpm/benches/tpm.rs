//! TPM signing speed, each row against its baseline in the same run, on one swtpm:
//!
//! - `tpm-cache-off/bare-tss-esapi-hmac`: a loop of TPM2_HMAC through tss-esapi on a loaded
//!   key with a password session, nothing else (the floor).
//! - `tpm-cache-off/keyhold-cleartext`: a whole GET signature by a cache-off signer, so one
//!   TPM2_HMAC per signature, same session type as the floor.
//! - `tpm-salted/keyhold-salted` against `tpm-salted/keyhold-cleartext`: the same signature
//!   with keyhold's default, encrypted sessions salted with the EK (the cost of parameter
//!   encryption).
//! - `tpm-cache-on/software-signer` and `tpm-cache-on/keyhold-tpm`: warm per-scope cache,
//!   the TPM key against the software key.
//!
//! The cache-off and cache-on groups run in rounds (see `test_support::rounds`);
//! `cargo xtask bench` takes each ratio per round and reports the median.
//!
//! Needs `KEYHOLD_TEST_TPM_TCTI` (swtpm started by `cargo xtask`, or by hand:
//! `swtpm socket --tpm2 --tpmstate dir=D --server type=tcp,port=P --ctrl type=tcp,port=P+1
//! --flags not-need-init,startup-clear` and `KEYHOLD_TEST_TPM_TCTI=swtpm:host=127.0.0.1,port=P`).
//! Only one client at a time: each row's connection is closed before the next row starts.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use backend_tpm::tss_esapi::interface_types::algorithm::HashingAlgorithm;
use backend_tpm::tss_esapi::structures::{MaxBuffer, SensitiveData};
use backend_tpm::{ImportOptions, KeyAuth, SessionEncryption, Tpm, TpmRootKey};
use criterion::{BatchSize, Bencher, BenchmarkId, Criterion, criterion_group, criterion_main};
use sigv4_core::{CachePolicy, RootSecret, Signer, SigningParams, SoftwareRootKey};
use test_support::rounds::{Group, ROUNDS, plain, round, three_seconds};
use zeroize::Zeroizing;

const AKID: &str = "AKIDEXAMPLE";
// The public example secret of AWS's documentation and test suite.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const UNIX_TIME: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

fn get_vanilla() -> http::Request<Vec<u8>> {
    http::Request::get("https://example.amazonaws.com/")
        .body(Vec::new())
        .expect("request")
}

/// Signs in place, run by `iter_batched_ref` (no move of the request in the timed part).
fn sign(signer: &Signer, request: &mut http::Request<Vec<u8>>) {
    let time = time::OffsetDateTime::from_unix_timestamp(UNIX_TIME).expect("time");
    let params = SigningParams::new("us-east-1", "service").at(time);
    signer.sign_request(request, &params).expect("sign");
}

fn tpm_key(encryption: SessionEncryption) -> (Tpm, Arc<TpmRootKey>) {
    let tpm = Tpm::connect_with(Some(&common::tcti()), encryption).expect("connect to swtpm");
    let secret = RootSecret::from_secret_access_key(Zeroizing::new(SECRET.as_bytes().to_vec()));
    let imported = tpm
        .import(&secret, &ImportOptions::new(AKID))
        .expect("import");
    let key = tpm
        .load_key_file(&imported.key_file, KeyAuth::none())
        .expect("load");
    (tpm, Arc::new(key))
}

/// The floor: tss-esapi alone, a primary and an HMAC key loaded once, then TPM2_HMAC.
fn bare_hmac_loop(c: &mut Group<'_>, id: BenchmarkId) {
    let (mut ctx, srk) = common::bare_context_and_primary();
    let secret = SensitiveData::try_from(format!("AWS4{SECRET}").into_bytes()).expect("data");
    let created = ctx
        .create(
            srk,
            backend_tpm::hmac_key_template(None, false).expect("key template"),
            None,
            Some(secret),
            None,
            None,
        )
        .expect("create");
    let key = ctx
        .load(srk, created.out_private, created.out_public)
        .expect("load");
    ctx.flush_context(srk.into()).expect("flush");
    c.bench_function(id, |b| {
        b.iter(|| {
            let data = MaxBuffer::try_from(b"20150830".to_vec()).expect("buffer");
            black_box(
                ctx.hmac(key.into(), data, HashingAlgorithm::Sha256)
                    .expect("hmac"),
            )
        })
    });
    ctx.flush_context(key.into()).expect("flush");
}

/// A cache-off signer on a fresh connection (swtpm serves one client at a time, so each row
/// connects, runs and disconnects).
fn keyhold_cache_off(c: &mut Group<'_>, id: BenchmarkId, encryption: SessionEncryption) {
    let (tpm, key) = tpm_key(encryption);
    let signer = Signer::from_arc(AKID, key).with_cache_policy(CachePolicy::Off);
    c.bench_function(id, |b| {
        b.iter_batched_ref(get_vanilla, |r| sign(&signer, r), BatchSize::SmallInput)
    });
    drop(signer);
    tpm.disconnect();
}

fn cache_off(c: &mut Criterion) {
    let mut bare = bare_hmac_loop;
    let mut keyhold =
        |g: &mut Group<'_>, id| keyhold_cache_off(g, id, SessionEncryption::Cleartext);
    for n in 1..=ROUNDS {
        round(
            c,
            "tpm-cache-off",
            n,
            three_seconds,
            &mut [
                ("bare-tss-esapi-hmac", &mut bare),
                ("keyhold-cleartext", &mut keyhold),
            ],
        );
    }
    // An encrypted session costs tens of times a cleartext one: measured once, not in rounds.
    let mut group = c.benchmark_group("tpm-salted");
    for (name, encryption) in [
        ("keyhold-cleartext", SessionEncryption::Cleartext),
        ("keyhold-salted", SessionEncryption::default()),
    ] {
        keyhold_cache_off(&mut group, BenchmarkId::from_parameter(name), encryption);
    }
    group.finish();
}

fn cache_on(c: &mut Criterion) {
    let software = Signer::new(AKID, SoftwareRootKey::from_secret_access_key(SECRET));
    let (tpm, key) = tpm_key(SessionEncryption::default());
    let signer = Signer::from_arc(AKID, key);
    let warm = |signer: &Signer, b: &mut Bencher<'_>| {
        b.iter_batched_ref(get_vanilla, |r| sign(signer, r), BatchSize::SmallInput)
    };
    let mut software_row = |b: &mut Bencher<'_>| warm(&software, b);
    let mut tpm_row = |b: &mut Bencher<'_>| warm(&signer, b);
    for n in 1..=ROUNDS {
        round(
            c,
            "tpm-cache-on",
            n,
            three_seconds,
            &mut [
                ("software-signer", &mut plain(&mut software_row)),
                ("keyhold-tpm", &mut plain(&mut tpm_row)),
            ],
        );
    }
    assert_eq!(
        signer.root_key_calls(),
        1,
        "the TPM is called once per scope and day"
    );
    tpm.disconnect();
}

criterion_group!(benches, cache_off, cache_on);
criterion_main!(benches);
