//! Signing through a SoftHSM token equals signing in software: kDate itself, the AWS suite's
//! get-vanilla and post-vanilla, the request generator, eight threads at once; and with the
//! cache on, the token is called once per scope per day.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use std::sync::Arc;
use std::time::Duration;

use backend_pkcs11::{OpenOptions, Pkcs11RootKey};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use secrecy::SecretString;
use sigv4_core::testing::{SuiteCase, arb_request};
use sigv4_core::{
    CachePolicy, DateStamp, Payload, RootKey, SignatureLocation, Signer, SigningParams,
    SoftwareRootKey,
};

fn open(token: &TestToken, object: &str) -> Pkcs11RootKey {
    Pkcs11RootKey::open_with(
        &token.uri(object),
        OpenOptions::new().pin(SecretString::from(USER_PIN)),
    )
    .unwrap()
}

#[test]
fn date_keys_equal_the_software_keys() {
    let _serial = common::serial();
    let token = TestToken::new("kdate");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let device = open(&token, "aws");
    let software = SoftwareRootKey::from_secret_access_key(SUITE_SECRET);
    let dates = [
        time::macros::date!(2012 - 02 - 15),
        time::macros::date!(2015 - 08 - 30),
        time::macros::date!(2024 - 02 - 29),
        time::macros::date!(9999 - 12 - 31),
    ];
    for date in dates {
        let stamp = DateStamp::from_date(date);
        assert_eq!(
            device.date_key(&stamp).unwrap().as_bytes(),
            software.date_key(&stamp).unwrap().as_bytes(),
            "{stamp}"
        );
    }
}

/// Signs a suite case through the token (cache off, so the token computes every kDate) and
/// checks the three stages against the suite's files and the software signer.
fn check_suite_case(name: &str) {
    let case = SuiteCase::load(name);
    let context = case.context.as_ref().expect("the case has a context");
    let token = TestToken::new(name);
    token.import("suite", &context.secret_access_key, &context.access_key_id);
    let key = open(&token, "suite");
    assert_eq!(key.access_key_id(), context.access_key_id);
    let device = context.signer_with(key, CachePolicy::Off);
    let software = context.signer();
    for (mode, location) in [
        ("header", SignatureLocation::Headers),
        (
            "query",
            SignatureLocation::QueryParams {
                expires_in: Duration::from_secs(context.expires_in),
            },
        ),
    ] {
        let sign = |signer: &Signer| {
            signer
                .sign_signable(
                    &case.request.signable(),
                    Payload::Bytes(&case.request.body),
                    &context.params(),
                    location,
                )
                .unwrap()
        };
        let (ours, reference) = (sign(&device), sign(&software));
        assert_eq!(
            ours.canonical_request().to_string(),
            case.expected(mode, "canonical-request")
        );
        assert_eq!(
            ours.string_to_sign().to_string(),
            case.expected(mode, "string-to-sign")
        );
        assert_eq!(
            ours.signature().to_string(),
            case.expected(mode, "signature"),
            "{name} [{mode}]"
        );
        assert_eq!(
            ours.signature().to_string(),
            reference.signature().to_string()
        );
    }
    assert_eq!(
        device.root_key_calls(),
        2,
        "cache off: one token call per signature"
    );
}

#[test]
fn aws_suite_get_vanilla() {
    let _serial = common::serial();
    check_suite_case("get-vanilla");
}

#[test]
fn aws_suite_post_vanilla() {
    let _serial = common::serial();
    check_suite_case("post-vanilla");
}

#[test]
fn generated_requests_sign_the_same_through_the_token() {
    let _serial = common::serial();
    let token = TestToken::new("proptest");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let device =
        Signer::new(SUITE_ACCESS_KEY_ID, open(&token, "aws")).with_cache_policy(CachePolicy::Off);
    let software = Signer::new(
        SUITE_ACCESS_KEY_ID,
        SoftwareRootKey::from_secret_access_key(SUITE_SECRET),
    );
    let times =
        (0i64..4_000_000_000).prop_map(|t| time::OffsetDateTime::from_unix_timestamp(t).unwrap());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(arb_request(), times), |(request, at)| {
            let params = SigningParams::new("us-east-1", "service").at(at);
            let mut ours = request.to_http();
            let mut reference = request.to_http();
            let a = device.sign_request(&mut ours, &params).unwrap();
            let b = software.sign_request(&mut reference, &params).unwrap();
            prop_assert_eq!(a.signature().to_string(), b.signature().to_string());
            prop_assert_eq!(ours.headers(), reference.headers());
            Ok(())
        })
        .unwrap();
    assert!(device.root_key_calls() >= 256);
}

#[test]
fn eight_threads_sign_at_once_through_one_key() {
    let _serial = common::serial();
    let token = TestToken::new("threads");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let key = Arc::new(open(&token, "aws"));
    let device = Arc::new(
        Signer::from_arc(SUITE_ACCESS_KEY_ID, key.clone()).with_cache_policy(CachePolicy::Off),
    );
    let software = Arc::new(Signer::new(
        SUITE_ACCESS_KEY_ID,
        SoftwareRootKey::from_secret_access_key(SUITE_SECRET),
    ));
    let start = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (device, software, start) = (device.clone(), software.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..250i64 {
                    // A different day per signature, so every one is a fresh kDate.
                    let at =
                        time::OffsetDateTime::from_unix_timestamp((t * 1000 + i) * 86_400).unwrap();
                    let params = SigningParams::new("us-east-1", "sts").at(at);
                    let uri = format!("https://sts.amazonaws.com/?thread={t}&i={i}");
                    let mut ours = http::Request::get(&uri).body(Vec::new()).unwrap();
                    let mut reference = http::Request::get(&uri).body(Vec::new()).unwrap();
                    let a = device.sign_request(&mut ours, &params).unwrap();
                    let b = software.sign_request(&mut reference, &params).unwrap();
                    assert_eq!(a.signature().to_string(), b.signature().to_string());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(device.root_key_calls(), 8 * 250);
    let idle = key.idle_sessions();
    assert!((1..=8).contains(&idle), "{idle} idle sessions");
}

#[test]
fn eight_threads_open_keys_at_once() {
    let _serial = common::serial();
    let token = TestToken::new("opens");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    let want = *SoftwareRootKey::from_secret_access_key(SUITE_SECRET)
        .date_key(&date)
        .unwrap()
        .as_bytes();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let key = open(&token, "aws");
                assert_eq!(key.date_key(&date).unwrap().as_bytes(), &want);
            });
        }
    });
}

#[test]
fn cache_on_calls_the_token_once_per_scope_per_day() {
    let _serial = common::serial();
    let token = TestToken::new("cache");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let signer = Signer::new(SUITE_ACCESS_KEY_ID, open(&token, "aws"));
    let day = time::macros::datetime!(2015-08-30 00:00 UTC);
    let sign = |service: &str, at: time::OffsetDateTime, path: &str| {
        let mut request = http::Request::get(format!("https://{service}.amazonaws.com/{path}"))
            .body(Vec::new())
            .unwrap();
        signer
            .sign_request(
                &mut request,
                &SigningParams::new("us-east-1", service).at(at),
            )
            .unwrap();
    };
    for minute in 0..100 {
        sign(
            "sts",
            day + time::Duration::minutes(minute * 14),
            &format!("p{minute}"),
        );
    }
    assert_eq!(
        signer.root_key_calls(),
        1,
        "one scope, one day: one token call"
    );
    sign("iam", day, "");
    assert_eq!(
        signer.root_key_calls(),
        2,
        "a second service is a second scope"
    );
    sign("sts", day + time::Duration::days(1), "");
    assert_eq!(signer.root_key_calls(), 3, "the next day is a new kDate");
}
