//! Signing speed through a SoftHSM token, each row against its baseline in the same run:
//!
//! - `pkcs11-cache-off`: a full SigV4 signature of get-vanilla with the cache off (one token
//!   HMAC per signature) through keyhold (`keyhold`), against a bare cryptoki `C_Sign` loop
//!   on the same key in one session (`bare-c-sign`). Goal: keyhold >= 0.9x bare. The same
//!   signer on a minimal RootKey (`minimal-root-key`: one session behind a lock, `C_Sign`,
//!   nothing else) shows what keyhold's pool, checks and repair cost in place. The same
//!   signature from `Signer::sign_signable` (`no-http-request`: request parts in, the
//!   signature and its headers out, no `http::Request` touched) shows what the `http` side
//!   costs: setting the headers on the request, and the requests built between batches.
//! - `pkcs11-cache-on`: the same signature with the per-scope cache (the token is called once
//!   per scope per day) through the token key (`keyhold`) and the software key (`software`).
//!   Goal: token >= 0.9x software.
//! - `pkcs11-date-key`: `RootKey::date_key` alone (pool checkout, C_Sign, checkin) against the
//!   bare loop, to show what the pool costs.
//!
//! Every group runs in rounds (see `test_support::rounds`), all groups in turn within
//! a round; `cargo xtask bench` takes each ratio per round and reports the median.
//!
//! Needs SoftHSM like the e2e tests: `SOFTHSM2_CONF` (a private token directory) and
//! `KEYHOLD_TEST_PKCS11_MODULE`; `cargo xtask bench` sets both. It creates its own token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use std::hint::black_box;
use std::sync::Mutex;

use backend_pkcs11::{OpenOptions, Pkcs11RootKey};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN};
use criterion::{BatchSize, Bencher, Criterion, criterion_group, criterion_main};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secrecy::SecretString;
use sigv4_core::{
    CachePolicy, DateKey, DateStamp, KeyError, Payload, RootKey, SignableRequest, Signer,
    SigningOutput, SigningParams, SoftwareRootKey,
};
use test_support::rounds::{ROUNDS, plain, round, three_seconds};

const UNIX_TIME: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the suite's time

fn get_vanilla() -> http::Request<Vec<u8>> {
    http::Request::get("https://example.amazonaws.com/")
        .body(Vec::new())
        .expect("request")
}

fn params() -> SigningParams<'static> {
    let time = time::OffsetDateTime::from_unix_timestamp(UNIX_TIME).expect("time");
    SigningParams::new("us-east-1", "service").at(time)
}

/// Signs in place, run by `iter_batched_ref` (no move of the request in the timed part).
fn sign(signer: &Signer, request: &mut http::Request<Vec<u8>>) {
    signer.sign_request(request, &params()).expect("sign");
}

/// The same signature from request parts, without setting its headers on a request.
fn sign_without_request(signer: &Signer, parts: &http::request::Parts) -> SigningOutput {
    let request = SignableRequest::from_http(parts);
    signer
        .sign_signable(
            &request,
            Payload::Bytes(b""),
            &params(),
            sigv4_core::SignatureLocation::Headers,
        )
        .expect("sign")
}

/// The least a PKCS#11 RootKey can be: one session behind a lock and `C_Sign`. No pool, no
/// checks, no repair: a yardstick for [`Pkcs11RootKey`], not something to sign with.
struct MinimalRootKey {
    session: Mutex<Session>,
    key: ObjectHandle,
}

impl std::fmt::Debug for MinimalRootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MinimalRootKey")
    }
}

impl RootKey for MinimalRootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        let session = self.session.lock().expect("lock");
        let mac = session
            .sign(&Mechanism::Sha256Hmac, self.key, date.as_bytes())
            .expect("C_Sign");
        Ok(DateKey::from_slice(&mac).expect("32 bytes"))
    }
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
    let minimal = MinimalRootKey {
        session: Mutex::new(token.user_session()),
        key,
    };
    let minimal = Signer::new(SUITE_ACCESS_KEY_ID, minimal).with_cache_policy(CachePolicy::Off);
    let warm = Signer::new(SUITE_ACCESS_KEY_ID, open());
    let software = Signer::new(
        SUITE_ACCESS_KEY_ID,
        SoftwareRootKey::from_secret_access_key(SUITE_SECRET),
    );
    sign(&warm, &mut get_vanilla());
    sign(&software, &mut get_vanilla());
    let root = open();

    let mut off_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(get_vanilla, |r| sign(&off, r), BatchSize::SmallInput)
    };
    let mut bare_row = |b: &mut Bencher<'_>| b.iter(bare);
    let (vanilla_parts, _) = get_vanilla().into_parts();
    let mut no_request_row =
        |b: &mut Bencher<'_>| b.iter(|| sign_without_request(&off, &vanilla_parts));
    let mut minimal_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(get_vanilla, |r| sign(&minimal, r), BatchSize::SmallInput)
    };
    let mut warm_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(get_vanilla, |r| sign(&warm, r), BatchSize::SmallInput)
    };
    let mut software_row = |b: &mut Bencher<'_>| {
        b.iter_batched_ref(get_vanilla, |r| sign(&software, r), BatchSize::SmallInput)
    };
    let mut date_key_row =
        |b: &mut Bencher<'_>| b.iter(|| root.date_key(black_box(&date)).expect("date_key"));
    for n in 1..=ROUNDS {
        round(
            c,
            "pkcs11-cache-off",
            n,
            three_seconds,
            &mut [
                ("keyhold", &mut plain(&mut off_row)),
                ("bare-c-sign", &mut plain(&mut bare_row)),
                ("minimal-root-key", &mut plain(&mut minimal_row)),
                ("no-http-request", &mut plain(&mut no_request_row)),
            ],
        );
        round(
            c,
            "pkcs11-cache-on",
            n,
            three_seconds,
            &mut [
                ("keyhold", &mut plain(&mut warm_row)),
                ("software", &mut plain(&mut software_row)),
            ],
        );
        round(
            c,
            "pkcs11-date-key",
            n,
            three_seconds,
            &mut [
                ("keyhold", &mut plain(&mut date_key_row)),
                ("bare-c-sign", &mut plain(&mut bare_row)),
            ],
        );
    }
    assert_eq!(
        warm.root_key_calls(),
        1,
        "cache on: one token call for one scope"
    );
}

criterion_group!(pkcs11, benches);
criterion_main!(pkcs11);
