//! Usage errors exit 2 with a message saying what was wrong, before anything is touched;
//! `--help` explains with examples and exits 0. No services needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

fn keyhold(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .args(args)
        // libtss2's own logging to stderr, which keyhold cannot turn off from inside.
        .env("TSS2_LOG", "all+none")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("KEYHOLD_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_2_and_say_what_was_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "Usage"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["whoami"], "--key"),
        (
            &["whoami", "--key", "vault:prod"],
            "'vault' is not a key type",
        ),
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
