//! `keyhold credential-process --certificate ... --private-key FILE`: the AWS CLI and boto3
//! get IAM Roles Anywhere credentials through it, from the local endpoint that verifies every
//! request (`test_support::rolesanywhere`) and mints role credentials from moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, role_arn};

/// The credential-process arguments for `pki`'s leaf and key, against `endpoint`.
fn arguments(pki: &Pki, certificate: &str, endpoint: &Endpoint, session: &str) -> String {
    format!(
        "--certificate {} --private-key {} --trust-anchor-arn {TRUST_ANCHOR_ARN} \
         --profile-arn {PROFILE_ARN} --role-arn {} --role-session-name {session} \
         --endpoint-url {}",
        pki.path(certificate).display(),
        pki.path("leaf.key").display(),
        role_arn(),
        endpoint.url
    )
}

fn credential_process(arguments: &str) -> Run {
    let mut cmd = keyhold();
    without_host_credentials(&mut cmd)
        .arg("credential-process")
        .args(arguments.split_whitespace());
    run(&mut cmd)
}

#[test]
fn the_aws_cli_and_boto3_work_through_roles_anywhere_with_file_keys() {
    let role_name = role_arn().rsplit('/').next().unwrap().to_owned();
    for (kind, format, certificate) in [
        ("rsa2048", "pkcs1", "leaf.pem"),
        ("p256", "sec1", "full-chain.pem"),
        ("p384", "pkcs8", "full-chain.pem"),
    ] {
        let dir = scratch(&format!("ra-{kind}"));
        let mut args = vec!["--key", kind, "--key-format", format];
        if certificate == "full-chain.pem" {
            args.push("--intermediate");
        }
        let pki = Pki::make(&dir.join("pki"), &args);
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let session = format!("ra-{kind}");
        let profile =
            AwsProfile::with_arguments(&dir, &arguments(&pki, certificate, &endpoint, &session));

        let identity = profile.aws(&["sts", "get-caller-identity"]);
        let expected = format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/{session}",
            account()
        );
        assert_eq!(identity["Arn"], expected.as_str(), "{kind}: {identity}");
        let bucket = format!("ra-{kind}-{}", std::process::id());
        profile.aws(&["s3api", "create-bucket", "--bucket", &bucket]);
        let seen = profile.boto3_identity_and_buckets(&format!("{bucket}-boto3"));
        assert_eq!(seen["Arn"], expected.as_str(), "{kind}: {seen}");
        let names = seen["Buckets"].as_array().unwrap();
        assert!(names.iter().any(|n| n == bucket.as_str()), "{seen}");
        assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());
    }
}

#[test]
fn an_encrypted_key_takes_its_password_from_a_file_or_the_environment_never_a_flag() {
    let dir = scratch("ra-encrypted");
    let pki = Pki::make_with_password(
        &dir.join("pki"),
        &["--key", "p256", "--key-format", "encrypted"],
        "correct horse",
    );
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let base = arguments(&pki, "leaf.pem", &endpoint, "ra-encrypted");

    let out = credential_process(&base);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--private-key-password-file"),
        "{}",
        out.stderr
    );

    let password = dir.join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let out = credential_process(&format!(
        "{base} --private-key-password-file {}",
        password.display()
    ))
    .ok();
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(document["Version"], 1);
    assert!(
        document["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );

    let mut cmd = keyhold();
    without_host_credentials(&mut cmd)
        .env("KEYHOLD_PRIVATE_KEY_PASSWORD", "correct horse")
        .arg("credential-process")
        .args(base.split_whitespace());
    run(&mut cmd).ok();

    std::fs::write(&password, "wrong\n").unwrap();
    let wrong = format!("{base} --private-key-password-file {}", password.display());
    fails(&wrong, 2, "password is wrong");
    assert!(!credential_process(&wrong).stderr.contains("correct horse"));
}

/// Runs credential-process with `arguments`; asserts the exit code and that stderr holds
/// `text`.
fn fails(arguments: &str, code: i32, text: &str) {
    let out = credential_process(arguments);
    assert_eq!(out.code, code, "{}", out.stderr);
    assert!(
        out.stderr.contains(text),
        "expected {text:?} in: {}",
        out.stderr
    );
}

#[test]
fn mistakes_are_named_with_the_flag_and_refusals_with_the_service_reason() {
    let dir = scratch("ra-mistakes");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256"]);
    let other = Pki::make(&dir.join("other"), &["--key", "p256"]);
    let expired = Pki::make(
        &dir.join("expired"),
        &[
            "--key",
            "p256",
            "--expired",
            "--ca-dir",
            pki.dir.to_str().unwrap(),
        ],
    );
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let base = arguments(&pki, "leaf.pem", &endpoint, "ra-mistakes");

    // The key of another certificate: caught before anything is sent.
    let mismatched = base.replace(
        pki.path("leaf.key").to_str().unwrap(),
        other.path("leaf.key").to_str().unwrap(),
    );
    fails(&mismatched, 2, "is not the private key of --certificate");
    // An expired certificate: named, with its date.
    let expired = arguments(&expired, "leaf.pem", &endpoint, "x1");
    fails(&expired, 2, "--certificate: the certificate expired on");
    // A certificate of another CA: the service's refusal, typed, with its reason.
    fails(
        &arguments(&other, "leaf.pem", &endpoint, "x2"),
        1,
        "IAM Roles Anywhere refused CreateSession: AccessDeniedException (HTTP 403): \
         Untrusted signing certificate",
    );
    // Durations and ARNs are checked before any file is read.
    fails(
        &format!("{base} --session-duration 60"),
        2,
        "--session-duration",
    );
    let not_a_profile = base.replace(PROFILE_ARN, "arn:aws:iam::123456789012:role/x");
    fails(&not_a_profile, 2, "--profile-arn");
    // Plain http to another machine is refused, as for STS.
    let far = base.replace(&endpoint.url, "http://192.0.2.1:9");
    fails(&far, 2, "--allow-insecure-http");
    assert!(
        endpoint
            .refusals()
            .contains("Untrusted signing certificate")
    );
}
