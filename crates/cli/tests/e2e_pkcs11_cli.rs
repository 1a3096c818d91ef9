//! End to end, PKCS#11: the built `keyhold` against SoftHSM and moto, driven as a user
//! would (secret on stdin, key reference from import's stdout), and as the AWS CLI and
//! boto3 drive it through credential_process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn import_then_whoami_is_the_user_and_the_reference_works_without_flags() {
    let dir = scratch("p11-whoami");
    let key = softhsm_key("whoami", "aws", &dir);
    let imported = import(&key, &access_key_id(), &secret(), &[]).ok();
    let reference = imported.stdout.trim();
    assert!(reference.starts_with("pkcs11:"), "{reference}");
    assert!(reference.contains("pin-source=file:"), "{reference}");
    assert!(
        imported.stderr.contains("HMAC matches"),
        "{}",
        imported.stderr
    );
    // The printed reference alone is enough: the access key id comes from the token.
    let out = whoami(reference, &[]).ok();
    assert_is_test_user(&out.stdout);
}

#[test]
fn a_wrong_secret_is_caught_by_signature_does_not_match_at_whoami() {
    let dir = scratch("p11-wrong");
    let key = softhsm_key("wrong", "aws", &dir);
    // The import itself succeeds: the device holds exactly what it was given.
    import(&key, &access_key_id(), &wrong_secret(), &[]).ok();
    let out = whoami(&key, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(
        line.starts_with(&format!(
            "keyhold: access key id {} (stored with the key at import) was rejected by STS: \
             STS GetCallerIdentity failed with SignatureDoesNotMatch",
            access_key_id()
        )),
        "{line}"
    );
    assert!(
        line.contains("check that the right secret was imported"),
        "{line}"
    );
}

#[test]
fn aws_cli_and_boto3_get_role_credentials_through_credential_process() {
    let dir = scratch("p11-clients");
    let key = softhsm_key("clients", "aws", &dir);
    import(&key, &access_key_id(), &secret(), &[]).ok();
    real_clients_through_credential_process("pkcs11", &key, "", &dir);
}

#[test]
fn no_secret_in_verbose_logs_or_output() {
    let dir = scratch("p11-logs");
    let key = softhsm_key("logs", "aws", &dir);
    let role_arn = create_role("logs");
    let secret = secret();
    let imported = import(&key, &access_key_id(), &secret, &["-vv"]).ok();
    assert!(
        imported.stderr.contains("INFO"),
        "-vv logs: {}",
        imported.stderr
    );
    for verbosity in ["-vv", "-vvv"] {
        let out = run(keyhold().args([
            verbosity,
            "credential-process",
            "--key",
            &key,
            "--role-arn",
            &role_arn,
            "--endpoint-url",
            &moto(),
        ]))
        .ok();
        let credentials: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let temporary_secret = credentials["SecretAccessKey"].as_str().unwrap();
        let token = credentials["SessionToken"].as_str().unwrap();
        assert!(temporary_secret.len() >= 20, "{temporary_secret}");
        assert!(
            out.stderr.contains("DEBUG"),
            "{verbosity} logs debug: {}",
            out.stderr
        );
        for (what, value) in [
            ("the secret access key", secret.as_str()),
            ("the temporary secret key", temporary_secret),
            ("the session token", token),
            ("the PIN", "user-pin-for-tests"),
        ] {
            assert!(
                !out.stderr.contains(value),
                "{verbosity} stderr contains {what}"
            );
        }
        assert!(
            !out.stdout.contains(&secret),
            "stdout contains the long-term secret"
        );
    }
    for text in [&imported.stdout, &imported.stderr] {
        assert!(!text.contains(&secret), "import printed the secret");
        assert!(
            !text.contains("user-pin-for-tests"),
            "import printed the PIN"
        );
    }
}

#[test]
fn credential_process_prints_version_1_json_with_a_future_expiration() {
    let dir = scratch("p11-json");
    let key = softhsm_key("json", "aws", &dir);
    import(&key, &access_key_id(), &secret(), &[]).ok();
    let role_arn = create_role("json");
    let out = run(keyhold()
        .args(["credential-process", "--key", &key, "--role-arn", &role_arn])
        .args(["--duration", "15m"])
        .env("AWS_ENDPOINT_URL_STS", moto()))
    .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{json}");
    assert_eq!(json["Version"], 1);
    assert!(
        json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{json}"
    );
    let expiration = time::OffsetDateTime::parse(
        json["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expiration - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(10) && left <= time::Duration::minutes(16),
        "15 minutes asked, {left} left"
    );

    // GetSessionToken instead of AssumeRole gives the same document.
    let out = run(keyhold()
        .args(["credential-process", "--key", &key, "--session-token"])
        .args(["--endpoint-url", &moto()]))
    .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    assert!(json["SessionToken"].as_str().is_some_and(|t| !t.is_empty()));
}

#[test]
fn credential_process_failure_is_one_stderr_line_and_exit_1() {
    let dir = scratch("p11-cpfail");
    let key = softhsm_key("cpfail", "aws", &dir);
    import(&key, &access_key_id(), &wrong_secret(), &[]).ok();
    let role_arn = create_role("cpfail");
    // The device holds a wrong secret: STS refuses the AssumeRole signature.
    let out = run(keyhold()
        .args(["credential-process", "--key", &key, "--role-arn", &role_arn])
        .args(["--endpoint-url", &moto()]));
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("AssumeRole failed with SignatureDoesNotMatch"),
        "{}",
        out.stderr
    );
    // A PIN file that does not exist: the key cannot be opened.
    let bad = key.replace(
        &format!("file:{}", dir.join("pin").display()),
        "file:/nonexistent/pin",
    );
    let out = run(keyhold()
        .args(["credential-process", "--key", &bad, "--session-token"])
        .args(["--endpoint-url", &moto()]));
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/pin"), "{}", out.stderr);
}

#[test]
fn sign_prints_headers_presigns_and_sends() {
    let dir = scratch("p11-sign");
    let key = softhsm_key("sign", "aws", &dir);
    import(&key, &access_key_id(), &secret(), &[]).ok();
    let common = [
        "-X",
        "POST",
        "-H",
        "content-type: application/x-www-form-urlencoded",
        "--data",
        "Action=GetCallerIdentity&Version=2011-06-15",
    ];
    let endpoint = format!("{}/", moto());
    let headers = run(sign_for(&key, "sts").args(common).arg(&endpoint)).ok();
    let authorization = headers
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("authorization: "))
        .unwrap_or_else(|| panic!("{}", headers.stdout));
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={}/", access_key_id()))
    );
    assert!(
        headers
            .stdout
            .lines()
            .any(|l| l.starts_with("x-amz-date: "))
    );

    // --send: moto checks the signature and answers with the identity.
    let sent = run(sign_for(&key, "sts")
        .args(common)
        .args(["--send", "-i", "--fail"])
        .arg(&endpoint))
    .ok();
    assert!(
        sent.stdout.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        sent.stdout
    );
    assert!(
        sent.stdout.contains(&format!("<Arn>{}</Arn>", user_arn())),
        "{}",
        sent.stdout
    );

    // A presigned URL (query signing). moto cannot check query signatures (it answers 500
    // without an Authorization header), so this checks the URL's form; sigv4-core's tests
    // check presigned signatures against the AWS suite.
    let presigned = run(sign_s3(&key)
        .args(["--presign", "--expires", "300"])
        .arg(format!("{}/bucket/report.pdf", moto())))
    .ok();
    let url = presigned.stdout.trim();
    let query = url
        .strip_prefix(&format!("{}/bucket/report.pdf?", moto()))
        .unwrap_or_else(|| panic!("{url}"));
    let params: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature"
        ],
        "{url}"
    );
    assert!(
        query.contains(&format!("X-Amz-Credential={}%2F", access_key_id())),
        "{url}"
    );
    assert!(query.contains("%2Fus-east-1%2Fs3%2Faws4_request&"), "{url}");
    assert!(query.contains("X-Amz-Expires=300&"), "{url}");

    // --fail turns an HTTP error into exit 1 (a wrong secret: 403).
    let wrong_key = softhsm_key("signwrong", "aws", &dir);
    import(&wrong_key, &access_key_id(), &wrong_secret(), &[]).ok();
    let failed = run(sign_for(&wrong_key, "sts")
        .args(common)
        .args(["--send", "--fail"])
        .arg(&endpoint));
    assert_eq!(failed.code, 1);
    assert!(
        failed.stdout.contains("SignatureDoesNotMatch"),
        "{}",
        failed.stdout
    );
    assert!(failed.stderr.contains("HTTP 403"), "{}", failed.stderr);
}

#[test]
fn doctor_passes_every_link_and_names_the_broken_one_with_its_fix() {
    let dir = scratch("p11-doctor");
    let key = softhsm_key("doctor", "aws", &dir);
    import(&key, &access_key_id(), &secret(), &[]).ok();
    let out = run(keyhold().args(["doctor", "--key", &key, "--endpoint-url", &moto()])).ok();
    let marks: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(marks.len(), 8, "{}", out.stdout);
    assert!(
        marks.iter().all(|l| l.starts_with("[ ok ]")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&user_arn()), "{}", out.stdout);

    // A wrong PIN: module and token pass, login fails with the fix, the rest is skipped.
    std::fs::write(dir.join("pin"), "not-the-pin").unwrap();
    let out = run(keyhold().args(["doctor", "--key", &key, "--endpoint-url", &moto()]));
    assert_eq!(out.code, 1, "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[1].starts_with("[ ok ] PKCS#11 module loads"),
        "{}",
        out.stdout
    );
    assert!(lines[2].starts_with("[ ok ] token found"), "{}", out.stdout);
    assert!(
        lines[3].starts_with("[FAIL] login with the user PIN"),
        "{}",
        out.stdout
    );
    assert!(lines[3].contains("CKR_PIN_INCORRECT"), "{}", out.stdout);
    assert!(lines[4].trim_start().starts_with("fix: "), "{}", out.stdout);
    assert!(
        out.stdout.contains("[skip] GetCallerIdentity"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("checks failed"), "{}", out.stderr);

    // A module that is not there fails the first link.
    let out = run(keyhold().args([
        "doctor",
        "--key",
        "pkcs11:token=x;object=y?module-path=/nonexistent/libnothing.so",
        "--endpoint-url",
        &moto(),
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("[FAIL] PKCS#11 module loads"),
        "{}",
        out.stdout
    );
}

#[test]
fn import_refuses_a_taken_label_unless_replacing() {
    let dir = scratch("p11-replace");
    let key = softhsm_key("replace", "aws", &dir);
    import(&key, &access_key_id(), &wrong_secret(), &[]).ok();
    // A problem with the command line, found before the secret is read: exit 2.
    let again = import(&key, &access_key_id(), &secret(), &[]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already holds"), "{}", again.stderr);
    import(&key, &access_key_id(), &secret(), &["--replace"]).ok();
    assert_is_test_user(&whoami(&key, &[]).ok().stdout);
}

#[test]
fn the_secret_can_come_from_a_file_or_a_named_variable() {
    let dir = scratch("p11-sources");
    let key = softhsm_key("sources", "fromfile", &dir);
    let file = dir.join("secret");
    std::fs::write(&file, format!("{}\n", secret())).unwrap();
    let run_file = run(keyhold()
        .args(["import", "--key", &key, "--access-key-id", &access_key_id()])
        .arg("--secret-file")
        .arg(&file))
    .ok();
    assert_is_test_user(&whoami(run_file.stdout.trim(), &[]).ok().stdout);
    let out = run(keyhold()
        .args(["import", "--key", &key, "--access-key-id", &access_key_id()])
        .args([
            "--label",
            "fromenv",
            "--id",
            "02",
            "--secret-env",
            "MY_SECRET",
        ])
        .env("MY_SECRET", secret()))
    .ok();
    assert!(out.stdout.contains("object=fromenv"), "{}", out.stdout);
    assert!(out.stdout.contains("id=%02"), "{}", out.stdout);
    assert_is_test_user(&whoami(out.stdout.trim(), &[]).ok().stdout);
}
