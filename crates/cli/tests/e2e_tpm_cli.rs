//! End to end, TPM: the built `keyhold` against swtpm and moto, with TSS2 PEM key files
//! (persistent handles would collide between tests sharing one swtpm). swtpm serves one
//! client at a time: this binary's name contains `tpm`, so nextest runs it alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn tcti() -> String {
    env(test_support::env::TPM_TCTI)
}

fn key_file(dir: &std::path::Path, name: &str) -> String {
    format!("tpm:file={}", dir.join(name).display())
}

#[test]
fn import_then_whoami_is_the_user() {
    let dir = scratch("tpm-whoami");
    let key = key_file(&dir, "aws.pem");
    let imported = import(&key, &access_key_id(), &secret(), &["--tcti", &tcti()]).ok();
    assert_eq!(
        imported.stdout.trim(),
        key,
        "the reference names the absolute file"
    );
    let pem = std::fs::read_to_string(dir.join("aws.pem")).unwrap();
    assert!(
        pem.starts_with(&format!("aws_access_key_id = {}\n", access_key_id())),
        "{pem}"
    );
    assert!(pem.contains("-----BEGIN TSS2 PRIVATE KEY-----"));
    assert!(!pem.contains(&secret()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("aws.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
    }
    // TCTI from the environment this time, as tpm2-tools takes it.
    let out = run(keyhold()
        .args(["whoami", "--key", &key, "--endpoint-url", &moto()])
        .env("TPM2TOOLS_TCTI", tcti()))
    .ok();
    assert_is_test_user(&out.stdout);
}

#[test]
fn a_password_protected_key_needs_its_password() {
    let dir = scratch("tpm-password");
    let key = key_file(&dir, "aws.pem");
    let password = dir.join("password");
    std::fs::write(&password, "tpm-key-password\n").unwrap();
    import(
        &key,
        &access_key_id(),
        &secret(),
        &[
            "--tcti",
            &tcti(),
            "--tpm-password-file",
            password.to_str().unwrap(),
        ],
    )
    .ok();
    let with = whoami(
        &key,
        &[
            "--tcti",
            &tcti(),
            "--tpm-password-file",
            password.to_str().unwrap(),
        ],
    )
    .ok();
    assert_is_test_user(&with.stdout);
    let from_env = run(keyhold()
        .args([
            "whoami",
            "--key",
            &key,
            "--endpoint-url",
            &moto(),
            "--tcti",
            &tcti(),
        ])
        .env("KEYHOLD_TPM_PASSWORD", "tpm-key-password"))
    .ok();
    assert_is_test_user(&from_env.stdout);
    let without = whoami(&key, &["--tcti", &tcti()]);
    assert_eq!(without.code, 1);
    assert!(without.stderr.contains("password"), "{}", without.stderr);
    assert!(!without.stderr.contains("tpm-key-password"));
    // doctor puts the failure on the authorization link.
    let doctor = run(keyhold().args([
        "doctor",
        "--key",
        &key,
        "--tcti",
        &tcti(),
        "--endpoint-url",
        &moto(),
    ]));
    assert_eq!(doctor.code, 1);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] authorization")),
        "{}",
        doctor.stdout
    );
}

#[test]
fn a_wrong_secret_is_caught_by_signature_does_not_match_at_whoami() {
    let dir = scratch("tpm-wrong");
    let key = key_file(&dir, "aws.pem");
    import(
        &key,
        &access_key_id(),
        &wrong_secret(),
        &["--tcti", &tcti()],
    )
    .ok();
    let out = whoami(&key, &["--tcti", &tcti()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("check that the right secret was imported"),
        "{}",
        out.stderr
    );
}

#[test]
fn aws_cli_and_boto3_get_role_credentials_through_credential_process() {
    let dir = scratch("tpm-clients");
    let key = key_file(&dir, "aws.pem");
    import(&key, &access_key_id(), &secret(), &["--tcti", &tcti()]).ok();
    let tcti_flag = format!("--tcti {}", tcti());
    real_clients_through_credential_process("tpm", &key, &tcti_flag, &dir);
}

#[test]
fn import_refuses_to_overwrite_a_key_file_before_reading_the_secret() {
    let dir = scratch("tpm-exists");
    let key = key_file(&dir, "aws.pem");
    std::fs::write(dir.join("aws.pem"), "keep me").unwrap();
    // No secret on stdin at all: the refusal comes first, as a usage error.
    let out = run(keyhold().args([
        "import",
        "--key",
        &key,
        "--access-key-id",
        &access_key_id(),
        "--tcti",
        &tcti(),
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--replace"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("aws.pem")).unwrap(),
        "keep me"
    );
    import(
        &key,
        &access_key_id(),
        &secret(),
        &["--tcti", &tcti(), "--replace"],
    )
    .ok();
    assert_is_test_user(&whoami(&key, &["--tcti", &tcti()]).ok().stdout);
}

#[test]
fn doctor_passes_every_link_with_a_tpm_key() {
    let dir = scratch("tpm-doctor");
    let key = key_file(&dir, "aws.pem");
    import(&key, &access_key_id(), &secret(), &["--tcti", &tcti()]).ok();
    let out = run(keyhold().args([
        "doctor",
        "--key",
        &key,
        "--tcti",
        &tcti(),
        "--endpoint-url",
        &moto(),
    ]))
    .ok();
    let marks: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(marks.len(), 8, "{}", out.stdout);
    assert!(
        marks.iter().all(|l| l.starts_with("[ ok ]")),
        "{}",
        out.stdout
    );
    // Nothing listens on port 1: the TPM link fails, with its fix.
    let out = run(keyhold().args([
        "doctor",
        "--key",
        &key,
        "--tcti",
        "swtpm:host=127.0.0.1,port=1",
        "--endpoint-url",
        &moto(),
    ]));
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("[ ok ] TCTI parses"), "{}", out.stdout);
    assert!(
        out.stdout.contains("[FAIL] TPM reachable"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("fix: start the TPM"), "{}", out.stdout);
}
