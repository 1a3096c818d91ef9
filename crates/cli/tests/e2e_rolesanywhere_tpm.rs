//! `keyhold credential-process --certificate FILE --private-key tpm:file=KEY.pem`: the AWS
//! CLI and boto3 get IAM Roles Anywhere credentials with a signing key made in swtpm by tpm2-tools,
//! from the local endpoint that verifies every request and mints role credentials from moto.
//! Also `sign-string` and `doctor --certificate` with a TPM key, and the AWS signing helper's
//! spellings of one (a bare TSS2 key file path, `handle:0x81...`).
//! (A binary named `*tpm*`: nextest runs it in the one-at-a-time `tpm` group.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, role_arn};
use test_support::tpm::{SIGN, signing_key_file, tpm2};

fn tcti() -> String {
    env(test_support::env::TPM_TCTI)
}

#[test]
fn the_aws_cli_and_boto3_work_with_signing_keys_made_in_a_tpm() {
    for (kind, algorithm) in [("rsa", "rsa2048"), ("p256", "ecc256"), ("p384", "ecc384")] {
        let dir = scratch(&format!("ra-tpm-{kind}"));
        let (key, public) = signing_key_file(&tcti(), &dir, kind, algorithm, SIGN, &[]);
        let pki = Pki::make(
            &dir.join("pki"),
            &["--public-key", public.to_str().unwrap()],
        );
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let session = format!("ra-tpm-{kind}");
        let arguments = format!(
            "--certificate {} --private-key tpm:file={} --tcti {} --trust-anchor-arn \
             {TRUST_ANCHOR_ARN} --profile-arn {PROFILE_ARN} --role-arn {} --role-session-name \
             {session} --endpoint-url {}",
            pki.path("leaf.pem").display(),
            key.display(),
            tcti(),
            role_arn(),
            endpoint.url
        );
        assert_aws_cli_and_boto3_are_role_session(&dir, &arguments, &session);
        assert!(
            endpoint.refusals().is_empty(),
            "{kind}: {}",
            endpoint.refusals()
        );
    }
}

#[test]
fn a_tpm_key_password_comes_from_a_file_and_a_wrong_one_is_named() {
    let dir = scratch("ra-tpm-password");
    let (key, public) =
        signing_key_file(&tcti(), &dir, "pw", "ecc256", SIGN, &["-p", "open sesame"]);
    let pki = Pki::make(
        &dir.join("pki"),
        &["--public-key", public.to_str().unwrap()],
    );
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let password = dir.join("password");
    let run_with = |password_text: &str| {
        std::fs::write(&password, password_text).unwrap();
        let mut cmd = keyhold();
        cmd.args([
            "credential-process",
            "--certificate",
            pki.path("leaf.pem").to_str().unwrap(),
            "--private-key",
            &format!("tpm:file={}", key.display()),
            "--tcti",
            &tcti(),
            "--tpm-password-file",
            password.to_str().unwrap(),
        ]);
        cmd.args(endpoint.session_flags());
        run(&mut cmd)
    };
    roles_anywhere::temporary_key_id(&run_with("open sesame\n"));

    let out = run_with("not it\n");
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("password"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("not it") && !out.stderr.contains("open sesame"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("esys"),
        "TSS2 logs are quiet: {}",
        out.stderr
    );
}

#[test]
fn the_whole_flow_from_cert_keygen_in_a_tpm_to_an_aws_command() {
    let dir = scratch("ra-tpm-flow");
    let key = dir.join("client.pem");
    let reference = format!("tpm:file={}", key.display());
    let keyhold_ok = |args: &[&str]| {
        let mut cmd = keyhold();
        cmd.args(args).args(["--tcti", &tcti()]);
        run(&mut cmd).ok().stdout
    };
    for key_type in ["ec-p384", "rsa-2048"] {
        let _ = std::fs::remove_file(&key);
        assert_eq!(
            keyhold_ok(&["cert", "keygen", "--key", &reference, "--type", key_type]).trim(),
            reference
        );
        let pem = std::fs::read_to_string(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN TSS2 PRIVATE KEY-----"), "{pem}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Never over an existing key file.
        let mut again = keyhold();
        let out = run(again.args(["cert", "keygen", "--key", &reference, "--tcti", &tcti()]));
        assert_ne!(out.code, 0, "{}", out.stderr);

        let csr = dir.join("client.csr");
        keyhold_ok(&[
            "cert",
            "csr",
            "--key",
            &reference,
            "--subject",
            "CN=tpm-flow",
            "-o",
            csr.to_str().unwrap(),
        ]);
        let pki = Pki::make(
            &dir.join(format!("pki-{key_type}")),
            &["--csr", csr.to_str().unwrap()],
        );
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let session = format!("tpm-flow-{key_type}");
        assert_aws_cli_and_boto3_are_role_session(
            &dir,
            &format!(
                "--certificate {} --private-key {reference} --tcti {} --trust-anchor-arn \
                 {TRUST_ANCHOR_ARN} --profile-arn {PROFILE_ARN} --role-arn {} \
                 --role-session-name {session} --endpoint-url {}",
                pki.path("leaf.pem").display(),
                tcti(),
                role_arn(),
                endpoint.url
            ),
            &session,
        );
    }
}

/// The persistent handle the helper-spelling test makes (and removes).
const HELPER_HANDLE: &str = "0x81000a21";

#[test]
fn sign_string_doctor_and_the_signing_helpers_spellings_work_with_a_tpm_key() {
    let dir = scratch("ra-tpm-helper");
    let (key, public) = signing_key_file(&tcti(), &dir, "helper", "ecc256", SIGN, &[]);
    let pki = Pki::make(
        &dir.join("pki"),
        &["--public-key", public.to_str().unwrap()],
    );
    let leaf = pki.path("leaf.pem");
    let reference = format!("tpm:file={}", key.display());
    let tcti = tcti();

    let mut sign = keyhold();
    sign.args(["sign-string", "--private-key", &reference, "--tcti", &tcti])
        .args(["--certificate", leaf.to_str().unwrap()]);
    let out = run_with_stdin(&mut sign, "AWS Roles Anywhere self-test");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("verifies"), "{}", out.stderr);
    assert!(out.stdout.trim().starts_with("30"), "{}", out.stdout);

    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let session = endpoint.session_flags();
    let mut doctor = keyhold();
    doctor
        .args(["doctor", "--certificate", leaf.to_str().unwrap()])
        .args(["--private-key", &reference, "--tcti", &tcti])
        .args(&session);
    let out = run(&mut doctor);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for link in [
        "[ ok ] certificate and private key open",
        "[ ok ] private key is the certificate's",
        "[ ok ] CreateSession signed by the private key: ASIA",
    ] {
        assert!(out.stdout.contains(link), "{link}: {}", out.stdout);
    }

    // The AWS signing helper's spellings: a bare path to a TSS2 key file, and a persistent
    // handle as handle:0x81....
    let _ = std::process::Command::new("tpm2_evictcontrol")
        .args(["-C", "o", "-c", HELPER_HANDLE])
        .env("TPM2TOOLS_TCTI", &tcti)
        .output();
    test_support::tpm::flush_all(&tcti);
    let loaded = dir.join("helper-k.ctx").display().to_string();
    tpm2(
        &tcti,
        "tpm2_evictcontrol",
        &["-C", "o", "-c", &loaded, HELPER_HANDLE],
    );
    test_support::tpm::flush_all(&tcti);
    for private_key in [key.display().to_string(), format!("handle:{HELPER_HANDLE}")] {
        let mut cmd = keyhold();
        cmd.args([
            "credential-process",
            "--certificate",
            leaf.to_str().unwrap(),
        ])
        .args(["--private-key", &private_key, "--tcti", &tcti])
        .args(&session);
        let out = run(&mut cmd);
        assert_eq!(out.code, 0, "{private_key}: {}", out.stderr);
        let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            document["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA"),
            "{private_key}"
        );
        assert!(
            !out.stderr.contains("esys"),
            "TSS2 logs are quiet: {}",
            out.stderr
        );
    }
    tpm2(
        &tcti,
        "tpm2_evictcontrol",
        &["-C", "o", "-c", HELPER_HANDLE],
    );
    // Only doctor's reachability probe (GET) was refused.
    endpoint.assert_only_probes_refused();
}
