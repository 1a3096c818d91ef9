//! End to end, Tink: the built `keyhold` with KMS-wrapped keysets against moto's KMS and
//! STS, driven as a user would (secret on stdin, key reference from import's stdout), and as
//! the AWS CLI drives it through credential_process.
//!
//! keyhold calls KMS with the machine's own AWS identity, as a real user runs it: here the
//! test user's keys in a shared credentials file (`[default]`), and `AWS_ENDPOINT_URL_KMS`
//! pointing at moto. `AWS_ACCESS_KEY_ID` is never set for keyhold, so the access key id of
//! the imported secret can only come from the keyset's `.access-key-id` file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::tink::*;
use common::*;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn import_then_whoami_needs_only_the_printed_key_and_the_kek_uri() {
    let dir = scratch("tink-whoami");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("whoami");
    let keyset = dir.join("aws.keyset.json");
    let key = format!("tink:{}", keyset.display());

    let imported = import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    assert_eq!(imported.stdout.trim(), key, "the reference names the file");
    assert!(
        imported.stderr.contains("HMAC matches") && imported.stderr.contains(&kek_uri),
        "{}",
        imported.stderr
    );
    // The standard encrypted keyset, holding no secret; the access key id beside it.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keyset).unwrap()).unwrap();
    assert!(
        json["encryptedKeyset"]
            .as_str()
            .is_some_and(|s| s.len() > 40)
    );
    assert_eq!(
        json["keysetInfo"]["keyInfo"][0]["typeUrl"],
        "type.googleapis.com/google.crypto.tink.HmacKey"
    );
    assert!(!json.to_string().contains(&secret()));
    // The access key id, and the keyset it belongs to (a crash between the two files'
    // renames must not pair the id with another keyset).
    let sidecar = dir.join("aws.keyset.json.access-key-id");
    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        format!(
            "{}\nkeyset-primary-key-id={}\n",
            access_key_id(),
            json["keysetInfo"]["primaryKeyId"]
        )
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&keyset), 0o600, "keyset mode");
        assert_eq!(mode(&sidecar), 0o644, "access key id file mode");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "aws-credentials",
            "aws.keyset.json",
            "aws.keyset.json.access-key-id"
        ],
        "no temporary file is left"
    );

    // The printed reference and the KMS key alone: the access key id comes from the file.
    let out = whoami_tink(&kms, imported.stdout.trim(), &kek_uri).ok();
    assert_is_test_user(&out.stdout);
    // The KMS key URI from the environment works the same.
    let out = run(kms
        .keyhold()
        .args(["whoami", "--key", &key, "--endpoint-url", &moto()])
        .env("KEYHOLD_KEK_URI", &kek_uri))
    .ok();
    assert_is_test_user(&out.stdout);

    // sign --send: moto checks the signature and answers with the identity.
    let sent = run(kms
        .keyhold()
        .args(["sign", "--key", &key, "--kek-uri", &kek_uri])
        .args(["--region", "us-east-1", "--service", "sts", "-X", "POST"])
        .args(["-H", "content-type: application/x-www-form-urlencoded"])
        .args(["--data", "Action=GetCallerIdentity&Version=2011-06-15"])
        .args(["--send", "--fail"])
        .arg(format!("{}/", moto())))
    .ok();
    assert!(
        sent.stdout.contains(&format!("<Arn>{}</Arn>", user_arn())),
        "{}",
        sent.stdout
    );

    // An existing keyset is refused before the secret is read, unless --replace.
    let again = import_tink(&kms, &key, &kek_uri, &wrong_secret(), &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("--replace"), "{}", again.stderr);
    import_tink(&kms, &key, &kek_uri, &secret(), &["--replace"]).ok();
    assert_is_test_user(&whoami_tink(&kms, &key, &kek_uri).ok().stdout);
}

#[test]
fn a_wrong_secret_is_caught_by_signature_does_not_match_at_whoami() {
    let dir = scratch("tink-wrong");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("wrong");
    let key = format!("tink:{}", dir.join("wrong.json").display());
    // The import itself succeeds: the keyset holds exactly what it was given.
    import_tink(&kms, &key, &kek_uri, &wrong_secret(), &[]).ok();
    let out = whoami_tink(&kms, &key, &kek_uri);
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
}

#[test]
fn aws_cli_gets_role_credentials_through_credential_process() {
    let dir = scratch("tink-awscli");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("awscli");
    let key = format!("tink:{}", dir.join("aws.keyset.json").display());
    import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    let role_arn = create_role("tink-awscli");
    let role_name = role_arn.rsplit('/').next().unwrap();

    // The profile is chosen with --profile, not AWS_PROFILE: keyhold inherits the AWS CLI's
    // environment, and its own KMS call must use the machine's identity ([default]), not
    // this profile (which would run keyhold again).
    let config = dir.join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile keyhold]\nregion = us-east-1\ncredential_process = {} credential-process \
             --key {key} --kek-uri {kek_uri} --role-arn {role_arn} \
             --role-session-name tink-session\n",
            env!("CARGO_BIN_EXE_keyhold")
        ),
    )
    .unwrap();
    let aws = |args: &[&str]| -> serde_json::Value {
        let mut cmd = Command::new(python_bin().join("aws"));
        kms.apply(&mut cmd);
        without_host_credentials(&mut cmd);
        let out = run(cmd
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_ENDPOINT_URL", moto())
            .args(["--profile", "keyhold", "--output", "json"])
            .args(args))
        .ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    };

    let identity = aws(&["sts", "get-caller-identity"]);
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/tink-session",
            account()
        )
        .as_str(),
        "{identity}"
    );
    let bucket = format!("tink-cli-{}", std::process::id());
    aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let listed = aws(&["s3api", "list-buckets"]);
    let names: Vec<&str> = listed["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["Name"].as_str())
        .collect();
    assert!(names.contains(&bucket.as_str()), "{listed}");
}

#[test]
fn a_tink_key_without_a_kek_uri_is_a_usage_error() {
    let dir = scratch("tink-nokek");
    let key = format!("tink:{}", dir.join("aws.keyset.json").display());
    for args in [
        vec!["whoami", "--key", &key],
        vec!["credential-process", "--key", &key, "--session-token"],
        vec![
            "import",
            "--key",
            &key,
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
        ],
    ] {
        let out = run(keyhold().env_remove("KEYHOLD_KEK_URI").args(&args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("add --kek-uri aws-kms://")
                && out.stderr.contains("KEYHOLD_KEK_URI"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // A URI of no known KMS is a usage error too, found before any secret is read.
    let out = run(keyhold().args([
        "import",
        "--key",
        &key,
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
        "--kek-uri",
        "vault://transit/keys/aws",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("aws-kms://"), "{}", out.stderr);
    assert!(!dir.join("aws.keyset.json").exists());
}

#[test]
fn no_secret_in_verbose_logs_or_output() {
    let dir = scratch("tink-logs");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("logs");
    let key = format!("tink:{}", dir.join("aws.keyset.json").display());
    let role_arn = create_role("tink-logs");
    let secret = secret();
    let imported = import_tink(&kms, &key, &kek_uri, &secret, &["-vv"]).ok();
    assert!(imported.stderr.contains("DEBUG"), "{}", imported.stderr);
    for text in [&imported.stdout, &imported.stderr] {
        assert!(!text.contains(&secret), "import printed the secret");
    }
    for verbosity in ["-vv", "-vvv"] {
        let out = run(kms.keyhold().args([
            verbosity,
            "credential-process",
            "--key",
            &key,
            "--kek-uri",
            &kek_uri,
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
            out.stderr.contains("KMS Decrypt") && out.stderr.contains("DEBUG"),
            "{verbosity} logs the KMS call: {}",
            out.stderr
        );
        for (what, value) in [
            ("the secret access key", secret.as_str()),
            ("the temporary secret key", temporary_secret),
            ("the session token", token),
        ] {
            assert!(
                !out.stderr.contains(value),
                "{verbosity} stderr contains {what}"
            );
        }
        assert!(!out.stdout.contains(&secret), "stdout contains the secret");
    }
}

#[test]
fn doctor_passes_every_link_and_names_the_broken_one_with_its_fix() {
    let dir = scratch("tink-doctor");
    let kms = KmsIdentity::new(&dir);
    let kek_uri = create_kms_key("doctor");
    let keyset = dir.join("aws.keyset.json");
    let key = format!("tink:{}", keyset.display());
    import_tink(&kms, &key, &kek_uri, &secret(), &[]).ok();
    let doctor = |key: &str, kek_uri: &str| tink_command(&kms, "doctor", key, kek_uri);

    let out = doctor(&key, &kek_uri).ok();
    let marks: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(marks.len(), 7, "{}", out.stdout);
    assert!(
        marks.iter().all(|l| l.starts_with("[ ok ]")),
        "{}",
        out.stdout
    );
    assert!(marks[0].contains(&access_key_id()), "{}", out.stdout);
    assert!(
        marks[2].starts_with("[ ok ] KMS reachable"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&user_arn()), "{}", out.stdout);

    // Another KMS key: the file and the URI pass, decrypting fails with the fix.
    let other = create_kms_key("doctor-other");
    let out = doctor(&key, &other);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with("[ ok ] keyset file"), "{}", out.stdout);
    assert!(
        lines[2].starts_with("[ ok ] KMS key URI parses"),
        "{}",
        out.stdout
    );
    assert!(
        lines[3].starts_with("[FAIL] KMS reachable and decrypts the keyset"),
        "{}",
        out.stdout
    );
    assert!(lines[4].trim_start().starts_with("fix: "), "{}", out.stdout);
    assert!(
        out.stdout.contains("[skip] GetCallerIdentity"),
        "{}",
        out.stdout
    );

    // KMS unreachable: the same link fails, with the endpoint in the fix.
    let out = run(kms
        .keyhold()
        .args(["doctor", "--key", &key, "--kek-uri", &kek_uri])
        .args(["--endpoint-url", &moto()])
        .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("[FAIL] KMS reachable") && out.stdout.contains("AWS_ENDPOINT_URL_KMS"),
        "{}",
        out.stdout
    );

    // Not a keyset at all: the first link fails.
    let bogus = dir.join("bogus.json");
    std::fs::write(&bogus, "{\"hello\": 1}").unwrap();
    let out = doctor(&format!("tink:{}", bogus.display()), &kek_uri);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("[FAIL] keyset file"),
        "{}",
        out.stdout
    );
}
