//! Whole signatures through the TPM: the AWS suite's get-vanilla and post-vanilla, the
//! request generator against the software signer, and the per-scope cache's call count.

mod common;

use std::sync::Arc;

use backend_tpm::{ImportOptions, KeyAuth, TpmRootKey};
use common::*;
use proptest::prelude::*;
use sigv4_core::testing::{SuiteCase, arb_request};
use sigv4_core::{CachePolicy, Payload, RootSecret, Signer, SigningParams};
use zeroize::Zeroizing;

fn tpm_key(secret_access_key: &str) -> Arc<TpmRootKey> {
    let tpm = connect();
    let secret =
        RootSecret::from_secret_access_key(Zeroizing::new(secret_access_key.as_bytes().to_vec()));
    let imported = tpm
        .import(&secret, &ImportOptions::new(ACCESS_KEY_ID))
        .expect("import");
    Arc::new(
        tpm.load_key_file(&imported.key_file, KeyAuth::none())
            .expect("load"),
    )
}

#[test]
fn suite_vanilla_cases_sign_identically_through_the_tpm() {
    let _one = serial();
    for name in ["get-vanilla", "post-vanilla"] {
        let case = SuiteCase::load(name);
        let context = case.context.as_ref().expect("context.json");
        let signer = context.signer_with(tpm_key(&context.secret_access_key), CachePolicy::Off);
        let out = signer
            .sign_signable(
                &case.request.signable(),
                Payload::Bytes(&case.request.body),
                &context.params(),
                sigv4_core::SignatureLocation::Headers,
            )
            .expect("sign");
        assert_eq!(
            out.signature().to_string(),
            case.expected("header", "signature"),
            "{name}"
        );
        assert_eq!(signer.root_key_calls(), 1, "{name}");
    }
}

#[test]
fn generated_requests_sign_like_the_software_signer() {
    let _one = serial();
    let key = tpm_key(SECRET);
    let tpm_signer = Signer::from_arc(ACCESS_KEY_ID, key).with_cache_policy(CachePolicy::Off);
    let software = Signer::new(ACCESS_KEY_ID, software_key());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(&(arb_request(), 0i64..4000), |(req, day)| {
            let time = time::macros::datetime!(2015-08-30 12:36:00 UTC) + time::Duration::days(day);
            let params = SigningParams::new("us-east-1", "sts").at(time);
            let (mut ours, mut theirs) = (req.to_http(), req.to_http());
            tpm_signer
                .sign_request(&mut ours, &params)
                .expect("TPM signer");
            software
                .sign_request(&mut theirs, &params)
                .expect("software signer");
            prop_assert_eq!(ours.headers(), theirs.headers());
            Ok(())
        })
        .expect("TPM and software signatures agree");
    assert_eq!(
        tpm_signer.root_key_calls(),
        200,
        "cache off: one TPM call per signature"
    );
}

#[test]
fn cached_signer_calls_the_tpm_once_per_scope_and_day() {
    let _one = serial();
    let signer = Signer::from_arc(ACCESS_KEY_ID, tpm_key(SECRET));
    let software = Signer::new(ACCESS_KEY_ID, software_key());
    let day1 = time::macros::datetime!(2015-08-30 12:36:00 UTC);
    let day2 = day1 + time::Duration::days(1);
    let sign = |region: &str, at: time::OffsetDateTime, i: usize| {
        let params = SigningParams::new(region, "sts").at(at + time::Duration::seconds(i as i64));
        let build = || {
            http::Request::post("https://sts.amazonaws.com/")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("Action=GetCallerIdentity&Version=2011-06-15&n={i}").into_bytes())
                .expect("request")
        };
        let (mut ours, mut theirs) = (build(), build());
        signer.sign_request(&mut ours, &params).expect("sign");
        software.sign_request(&mut theirs, &params).expect("sign");
        assert_eq!(ours.headers(), theirs.headers());
    };
    for i in 0..50 {
        sign("us-east-1", day1, i);
    }
    assert_eq!(signer.root_key_calls(), 1);
    sign("eu-west-1", day1, 0);
    assert_eq!(
        signer.root_key_calls(),
        2,
        "another region is another scope"
    );
    sign("us-east-1", day2, 0);
    assert_eq!(signer.root_key_calls(), 3, "another day is another kDate");
}
