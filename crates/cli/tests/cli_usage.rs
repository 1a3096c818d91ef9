//! Usage errors exit 2 with a message saying what was wrong, before anything is touched;
//! `--help` explains with examples and exits 0. No services needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

fn keyhold(args: &[&str]) -> (i32, String, String) {
    keyhold_env(args, &[])
}

#[test]
fn usage_errors_exit_2_and_say_what_was_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "Usage"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["whoami"], "--key"),
        (&["whoami", "--key", "kms:prod"], "'kms' is not a key type"),
        (
            &["whoami", "--key", "tpm:handle=0x1234"],
            "not a persistent owner handle",
        ),
        (
            &["whoami", "--key", "pkcs11:token=a;token=b"],
            "invalid PKCS#11 key reference",
        ),
        // The secret is never a flag.
        (
            &["import", "--key", "tpm:file=/tmp/x.pem", "--secret", "abc"],
            "unexpected argument '--secret'",
        ),
        (
            &["import", "--key", "tpm:file=/tmp/x.pem"],
            "--access-key-id",
        ),
        (
            &[
                "import",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--access-key-id",
                "A",
                "--secret-file",
                "f",
                "--secret-env",
                "V",
            ],
            "cannot be used with",
        ),
        (
            &["credential-process", "--key", "tpm:file=/tmp/x.pem"],
            "--role-arn",
        ),
        (
            &[
                "credential-process",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--role-arn",
                "arn:aws:iam::1:role/r",
                "--session-token",
            ],
            "cannot be used with",
        ),
        (
            &[
                "credential-process",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--session-token",
                "--external-id",
                "x",
            ],
            "cannot be used with",
        ),
        (
            &[
                "credential-process",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--session-token",
                "--duration",
                "1d",
            ],
            "unit",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--service",
                "s3",
                "https://h/",
            ],
            "--region",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--region",
                "r",
                "--service",
                "s3",
                "--presign",
                "--expires",
                "0",
                "https://h/",
            ],
            "--expires",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--region",
                "r",
                "--service",
                "s3",
                "--expires",
                "60",
                "https://h/",
            ],
            "--presign",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--region",
                "r",
                "--service",
                "s3",
                "/relative",
            ],
            "not an absolute URL",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--region",
                "r",
                "--service",
                "s3",
                "-H",
                "no-colon",
                "https://h/",
            ],
            "'Name: value'",
        ),
        (
            &[
                "sign",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--region",
                "r",
                "--service",
                "s3",
                "-i",
                "https://h/",
            ],
            "--send",
        ),
        // A profile name that would not read back as the same INI section, for both
        // commands that write one.
        (
            &[
                "update",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--profile",
                " work",
            ],
            "invalid value ' work' for '--profile <NAME>': \" work\" cannot name a section",
        ),
        (
            &[
                "export",
                "--key",
                "tpm:file=/tmp/x.pem",
                "--format",
                "ini",
                "--profile",
                "a]b",
            ],
            "invalid value 'a]b' for '--profile <NAME>'",
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = keyhold(args);
        assert_eq!(code, 2, "{args:?} exited {code}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed to stdout: {stdout}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn help_explains_with_examples_and_exits_0() {
    let (code, stdout, _) = keyhold(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:"), "{stdout}");
    assert!(
        stdout.contains("credential_process = keyhold credential-process"),
        "{stdout}"
    );
    for command in ["import", "sign", "whoami", "credential-process", "doctor"] {
        let (code, stdout, _) = keyhold(&[command, "--help"]);
        assert_eq!(code, 0, "{command}");
        assert!(
            stdout.contains("Examples"),
            "{command} --help has no examples: {stdout}"
        );
        assert!(
            stdout.contains("[env: KEYHOLD_KEY"),
            "{command} --help names no env: {stdout}"
        );
    }
    let (code, stdout, _) = keyhold(&["--version"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("keyhold "), "{stdout}");
}

#[test]
fn failures_that_are_not_usage_errors_exit_1_with_one_line() {
    // A key file that does not exist: the command line is fine, the operation fails.
    let (code, stdout, stderr) = keyhold(&[
        "whoami",
        "--key",
        "tpm:file=/nonexistent/keyhold/aws.pem",
        "--tcti",
        "swtpm:host=127.0.0.1,port=1",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("keyhold: could not open the key tpm:file="),
        "{stderr}"
    );
}

/// Runs keyhold with `args`, without the host's AWS settings, plus the variables `env`.
fn keyhold_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_STS")
        .env_remove("KEYHOLD_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PKCS#11 key whose module does not exist: any command that reached the device would
/// fail with exit 1 naming the module, so an exit 2 proves the check came first.
const NO_DEVICE: &str = "pkcs11:token=t;object=o?module-path=/nonexistent/keyhold-test.so";

#[test]
fn plain_http_to_another_machine_is_refused_before_the_device_unless_allowed() {
    let (code, _, err) = keyhold_env(
        &[
            "whoami",
            "--key",
            NO_DEVICE,
            "--endpoint-url",
            "http://sts.example.com",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--allow-insecure-http") && err.contains("from --endpoint-url"),
        "{err}"
    );
    // The generic variable, inherited from whatever runs keyhold, is named as the source.
    let (code, _, err) = keyhold_env(
        &[
            "credential-process",
            "--key",
            NO_DEVICE,
            "--get-session-token",
        ],
        &[("AWS_ENDPOINT_URL", "http://10.1.2.3:8080")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AWS_ENDPOINT_URL in the environment"), "{err}");
    // Allowed: the command goes on to the device, which is missing (exit 1).
    let (code, _, err) = keyhold_env(
        &[
            "whoami",
            "--key",
            NO_DEVICE,
            "--endpoint-url",
            "http://sts.example.com",
            "--allow-insecure-http",
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    // Loopback needs no flag.
    let (code, _, err) = keyhold_env(
        &[
            "whoami",
            "--key",
            NO_DEVICE,
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    for bad in ["sts.example.com", "ftp://x", "https://x/?a=b"] {
        let (code, _, err) =
            keyhold_env(&["whoami", "--key", NO_DEVICE, "--endpoint-url", bad], &[]);
        assert_eq!(code, 2, "{bad}: {err}");
    }
}

#[test]
fn a_bad_role_arn_duration_or_access_key_id_is_a_usage_error_before_the_device() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "credential-process",
                "--key",
                NO_DEVICE,
                "--role-arn",
                "deploy",
            ],
            "not an IAM ARN",
        ),
        (
            &[
                "credential-process",
                "--key",
                NO_DEVICE,
                "--role-arn",
                "arn:aws:iam::123456789012:user/me",
            ],
            "not a role",
        ),
        (
            &[
                "credential-process",
                "--key",
                NO_DEVICE,
                "--role-arn",
                "arn:aws:iam::123456789012:role/r",
                "--duration-seconds",
                "100",
            ],
            "outside AssumeRole's range",
        ),
        (
            &[
                "credential-process",
                "--key",
                NO_DEVICE,
                "--get-session-token",
                "--duration",
                "37h",
            ],
            "outside GetSessionToken's range",
        ),
        (
            &[
                "import",
                "--key",
                NO_DEVICE,
                "--access-key-id",
                "wJalrXUtnFEMI/K7MDENG",
            ],
            "is not an access key id",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = keyhold_env(args, &[("AWS_REGION", "us-east-1")]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn a_pin_value_is_never_echoed_and_its_use_is_warned_about() {
    // clap quotes a value it rejects: the PIN must not be in it.
    let (code, _, err) = keyhold_env(
        &[
            "whoami",
            "--key",
            "pkcs11:token=t?pin-value=s3cr3t-pin&frobnicate=1",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("s3cr3t-pin"), "{err}");
    assert!(err.contains("pin-value=***"), "{err}");
    let key =
        "pkcs11:token=t;object=o?module-path=/nonexistent/keyhold-test.so&pin-value=s3cr3t-pin";
    let (code, _, err) = keyhold_env(&["whoami", "--key", key, "-vv"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("s3cr3t-pin"), "{err}");
    assert_eq!(
        err.matches("warning: the --key URI holds the PIN").count(),
        1,
        "warned once: {err}"
    );
}

#[test]
fn keyhold_started_by_its_own_kms_client_stops_at_once() {
    // The marker a keyhold with a Tink key (AWS KMS) sets for the programs its KMS client
    // may start; another pid's marker means this keyhold was started by that one.
    let key = "tink:/nonexistent/keyhold/aws.keyset.json";
    let kek =
        "aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let (code, out, err) = keyhold_env(
        &[
            "credential-process",
            "--key",
            key,
            "--kek-uri",
            kek,
            "--get-session-token",
        ],
        &[("KEYHOLD_KMS_CLIENT_PID", "1")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("keyhold started itself") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    // Without the marker the same command goes on (and fails on the missing keyset).
    let (code, _, err) = keyhold_env(
        &[
            "credential-process",
            "--key",
            key,
            "--kek-uri",
            kek,
            "--get-session-token",
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("started itself"), "{err}");
}

#[test]
fn import_only_flags_are_shown_only_by_import() {
    let (_, import_help, _) = keyhold_env(&["import", "--help"], &[]);
    for flag in [
        "--replace",
        "--verify",
        "--secret-file",
        "--label",
        "--tpm-pem-out",
    ] {
        assert!(import_help.contains(flag), "import --help lacks {flag}");
    }
    for command in ["whoami", "sign", "credential-process", "doctor"] {
        let (_, help, _) = keyhold_env(&[command, "--help"], &[]);
        for flag in [
            "--replace",
            "--verify",
            "--secret-file",
            "--label",
            "--tpm-pem-out",
            "--tpm-persist-at",
        ] {
            assert!(!help.contains(flag), "{command} --help shows {flag}");
        }
    }
}
