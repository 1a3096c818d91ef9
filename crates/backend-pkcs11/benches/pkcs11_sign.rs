//! Signing speed through a SoftHSM token, each row against its baseline in the same run:
//!
//! - `pkcs11-cache-off`: a full SigV4 signature of get-vanilla with the cache off (one token
//!   HMAC per signature) through keyhold (`keyhold`), against a bare cryptoki `C_Sign` loop
//!   on the same key in one session (`bare-c-sign`). Goal: keyhold >= 0.9x bare.
//! - `pkcs11-cache-on`: the same signature with the per-scope cache (the token is called once
//!   per scope per day) through the token key (`keyhold`) and the software key (`software`).
//!   Goal: token >= 0.9x software.
//! - `pkcs11-date-key`: `RootKey::date_key` alone (pool checkout, C_Sign, checkin) against the
//!   bare loop, to show what the pool costs.
//!
//! Needs SoftHSM like the e2e tests: `SOFTHSM2_CONF` (a private token directory) and
//! `KEYHOLD_TEST_PKCS11_MODULE`; `cargo xtask bench` sets both. It creates its own token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use backend_pkcs11::{OpenOptions, Pkcs11RootKey};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use secrecy::SecretString;
use sigv4_core::{CachePolicy, DateStamp, RootKey, Signer, SigningParams, SoftwareRootKey};

const UNIX_TIME: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the suite's time

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

fn benches(c: &mut Criterion) {
    let token = TestToken::new("bench");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let open = || {
        Pkcs11RootKey::open_with(
            &token.uri("aws"),
            OpenOptions::new().pin(SecretString::from(USER_PIN)),
        )
        .expect("open the token key")
    };

    // The baseline: one logged-in session, the key handle found once, C_Sign in a loop.
    let session = token.user_session();
    let key = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"aws".to_vec()),
        ])
        .expect("find")[0];
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    let bare = || {
        session
            .sign(&Mechanism::Sha256Hmac, key, black_box(date.as_bytes()))
            .expect("C_Sign")
    };

    let off = Signer::new(SUITE_ACCESS_KEY_ID, open()).with_cache_policy(CachePolicy::Off);
    let mut group = c.benchmark_group("pkcs11-cache-off");
    // Token calls are slow and a shared machine is noisy: measure longer than the default.
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("keyhold", |b| {
        b.iter_batched_ref(get_vanilla, |r| sign(&off, r), BatchSize::SmallInput)
    });
    group.bench_function("bare-c-sign", |b| b.iter(bare));
    group.finish();

    let warm = Signer::new(SUITE_ACCESS_KEY_ID, open());
    let software = Signer::new(
        SUITE_ACCESS_KEY_ID,
        SoftwareRootKey::from_secret_access_key(SUITE_SECRET),
    );
    sign(&warm, &mut get_vanilla());
    sign(&software, &mut get_vanilla());
    let mut group = c.benchmark_group("pkcs11-cache-on");
    group.bench_function("keyhold", |b| {
        b.iter_batched_ref(get_vanilla, |r| sign(&warm, r), BatchSize::SmallInput)
    });
    group.bench_function("software", |b| {
        b.iter_batched_ref(get_vanilla, |r| sign(&software, r), BatchSize::SmallInput)
    });
    group.finish();
    assert_eq!(
        warm.root_key_calls(),
        1,
        "cache on: one token call for one scope"
    );

    let root = open();
    let mut group = c.benchmark_group("pkcs11-date-key");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("keyhold", |b| {
        b.iter(|| root.date_key(black_box(&date)).expect("date_key"))
    });
    group.bench_function("bare-c-sign", |b| b.iter(bare));
    group.finish();
}

criterion_group!(pkcs11, benches);
criterion_main!(pkcs11);
