//! `keyhold credential-process --certificate ... --private-key FILE`: the AWS CLI and boto3
//! get IAM Roles Anywhere credentials through it, from the local endpoint that verifies every
//! request (`test_support::rolesanywhere`) and mints role credentials from moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

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
    cmd.arg("credential-process")
        .args(arguments.split_whitespace());
    run(&mut cmd)
}

#[test]
fn the_aws_cli_and_boto3_work_through_roles_anywhere_with_file_keys() {
    let role_name = role_arn().rsplit('/').next().unwrap().to_owned();
    // The chain three ways: none, in the certificate file (leaf first), in --intermediates.
    for (kind, format, certificate, intermediates) in [
        ("rsa2048", "pkcs1", "leaf.pem", false),
        ("p256", "sec1", "full-chain.pem", false),
        ("p384", "pkcs8", "leaf.pem", true),
    ] {
        let dir = scratch(&format!("ra-{kind}"));
        let mut args = vec!["--key", kind, "--key-format", format];
        if certificate == "full-chain.pem" || intermediates {
            args.push("--intermediate");
        }
        let pki = Pki::make(&dir.join("pki"), &args);
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let session = format!("ra-{kind}");
        let mut line = arguments(&pki, certificate, &endpoint, &session);
        if intermediates {
            line += &format!(
                " --intermediates {}",
                pki.path("intermediate.pem").display()
            );
        }
        let profile = AwsProfile::with_arguments(&dir, &line);

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
    roles_anywhere::temporary_key_id(&out);

    let mut cmd = keyhold();
    cmd.env("KEYHOLD_PRIVATE_KEY_PASSWORD", "correct horse")
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
    let expired = Pki::make_expired(&dir.join("expired"), &pki, "p256");
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let base = arguments(&pki, "leaf.pem", &endpoint, "ra-mistakes");

    // The key of another certificate: caught before anything is sent.
    let mismatched = base.replace(
        pki.path("leaf.key").to_str().unwrap(),
        other.path("leaf.key").to_str().unwrap(),
    );
    fails(
        &mismatched,
        2,
        "--private-key: the private key is not the certificate's",
    );
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

/// A key pair made inside a fresh SoftHSM token (`pkcs11-tool --keypairgen`, label `ra`, id
/// 01), its certificate issued by a test CA for the token's public key and written back to
/// the token. Returns the PKI and the token's URI for `ra` (without a type).
fn token_key_and_certificate(name: &str, key_type: &str, dir: &Path) -> (Pki, String) {
    let uri = softhsm_key(name, "ra", dir);
    let label = uri
        .split(';')
        .next()
        .and_then(|t| t.strip_prefix("pkcs11:token="))
        .unwrap()
        .to_owned();
    let module = env(test_support::env::PKCS11_MODULE);
    let tool = |args: &[&str]| {
        // Token writes take turns with other tests' (see softhsm_key).
        let conf = std::path::PathBuf::from(env("SOFTHSM2_CONF"));
        let lock = std::fs::File::create(conf.with_file_name("token-init.lock")).unwrap();
        lock.lock().unwrap();
        let out = std::process::Command::new("pkcs11-tool")
            .args(["--module", &module, "--token-label", &label])
            .args(["--login", "--pin", "env:RA_TEST_PIN"])
            .env("RA_TEST_PIN", "user-pin-for-tests")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    tool(&[
        "--keypairgen",
        "--key-type",
        key_type,
        "--id",
        "01",
        "--label",
        "ra",
    ]);
    let pki = match key_type.strip_prefix("EC:") {
        // pkcs11-tool can't export a P-384 public key with OpenSSL 3 ("cannot create
        // EVP_PKEY"): the test CA certifies the point it lists instead.
        Some(curve) => {
            let listed = tool(&["--list-objects", "--type", "pubkey"]);
            let point = listed
                .lines()
                .find_map(|l| l.trim().strip_prefix("EC_POINT:"))
                .unwrap()
                .trim()
                .to_owned();
            let key = if curve == "secp384r1" { "p384" } else { "p256" };
            Pki::make(&dir.join("pki"), &["--key", key, "--ec-point", &point])
        }
        None => {
            let public = dir.join("public.der");
            tool(&[
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                "01",
                "-o",
                public.to_str().unwrap(),
            ]);
            Pki::make(
                &dir.join("pki"),
                &["--public-key", public.to_str().unwrap()],
            )
        }
    };
    let der = pki.path("leaf.der");
    tool(&[
        "--write-object",
        der.to_str().unwrap(),
        "--type",
        "cert",
        "--id",
        "01",
        "--label",
        "ra",
    ]);
    (pki, uri)
}

#[test]
fn the_aws_cli_and_boto3_work_with_keys_made_in_a_pkcs11_token() {
    for (kind, key_type) in [
        ("rsa", "rsa:2048"),
        ("p256", "EC:prime256v1"),
        ("p384", "EC:secp384r1"),
    ] {
        let dir = scratch(&format!("ra-p11-{kind}"));
        let (pki, uri) = token_key_and_certificate(&format!("ra{kind}"), key_type, &dir);
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let ra = format!(
            "--trust-anchor-arn {TRUST_ANCHOR_ARN} --profile-arn {PROFILE_ARN} --role-arn {} \
             --endpoint-url {}",
            role_arn(),
            endpoint.url
        );
        // As AWS documents it for a YubiKey: only the certificate's URI; the key is the
        // token's private key with the certificate's CKA_ID.
        let certificate = uri.replacen("object=ra", "object=ra;type=cert", 1);
        let session = format!("ra-p11-{kind}");
        assert_aws_cli_and_boto3_are_role_session(
            &dir,
            &format!("--certificate '{certificate}' {ra} --role-session-name {session}"),
            &session,
        );

        // The certificate from a file, the key on the token.
        let private = uri.replacen("object=ra", "object=ra;type=private", 1);
        let out = credential_process(&format!(
            "--certificate {} --private-key {private} {ra}",
            pki.path("leaf.pem").display()
        ))
        .ok();
        let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            document["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA"),
            "{kind}"
        );
        assert!(
            endpoint.refusals().is_empty(),
            "{kind}: {}",
            endpoint.refusals()
        );
    }
}
