//! `keyhold cert`, `sign-string`, `doctor --certificate` and the PIN typed on a terminal,
//! around IAM Roles Anywhere keys: the whole flow from a key made in a token to the AWS CLI
//! and boto3, against the local endpoint that verifies every request and mints role
//! credentials from moto (`test_support::rolesanywhere`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::roles_anywhere::*;
use common::*;
use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, role_arn};

#[test]
fn the_whole_flow_from_cert_keygen_to_an_aws_command_on_a_token() {
    for key_type in ["ec-p256", "ec-p384", "rsa-2048"] {
        let dir = scratch(&format!("ra-flow-{key_type}"));
        let token = softhsm_key(&format!("flow{key_type}"), "client", &dir);
        // The key pair, made in the token.
        let made = keyhold_ok(&["cert", "keygen", "--key", &token, "--type", key_type]);
        let private = made.trim();
        assert!(
            private.contains("type=private") && private.contains("id="),
            "{private}"
        );
        assert!(!private.contains("pin-value"), "{private}");
        // Made again: refused, nothing overwritten.
        let mut again = keyhold();
        let out = run(again.args(["cert", "keygen", "--key", &token]));
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("already holds"), "{}", out.stderr);

        // Its certificate request, certified by the test CA (which checks its signature).
        let subject = format!("CN=flow-{key_type},O=keyhold tests");
        let pki = certify(&dir, private, &subject, &[]);

        // Onto the token beside its key; a certificate of another key is refused.
        let other = Pki::make(&dir.join("other"), &["--key", "p256"]);
        let mut wrong = keyhold();
        let out = run(wrong.args([
            "cert",
            "import",
            "--key",
            private,
            "--certificate",
            other.path("leaf.pem").to_str().unwrap(),
        ]));
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("not the certificate's"),
            "{}",
            out.stderr
        );
        let stored = import_certificate(private, &pki);
        let certificate = stored.as_str();
        assert!(certificate.contains("type=cert"), "{certificate}");

        let shown = keyhold_ok(&["cert", "show", "--certificate", certificate]);
        assert!(shown.contains(&format!("Subject: {subject}")), "{shown}");
        assert!(
            shown.contains(&format!(
                "(decimal, as Roles Anywhere uses it): {}",
                pki.serial
            )),
            "{shown}"
        );

        // And the AWS CLI, through the certificate's URI alone.
        let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
        let session = format!("flow-{key_type}");
        assert_aws_cli_and_boto3_are_role_session(
            &dir,
            &format!(
                "--certificate '{certificate}' --trust-anchor-arn {TRUST_ANCHOR_ARN} \
                 --profile-arn {PROFILE_ARN} --role-arn {} --role-session-name {session} \
                 --endpoint-url {}",
                role_arn(),
                endpoint.url
            ),
            &session,
        );
    }
}

#[test]
fn sign_string_signs_stdin_and_checks_it_against_the_certificate() {
    let dir = scratch("ra-sign-string");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p384"]);
    let other = Pki::make(&dir.join("other"), &["--key", "p384"]);
    let key = pki.path("leaf.key");
    let sign = |extra: &[&str]| {
        let mut cmd = keyhold();
        cmd.args(["sign-string", "--private-key", key.to_str().unwrap()])
            .args(extra);
        run_with_stdin(&mut cmd, "AWS Roles Anywhere self-test")
    };
    let text = sign(&["--certificate", pki.path("leaf.pem").to_str().unwrap()]).ok();
    let hex = text.stdout.trim();
    assert!(
        hex.starts_with("30") && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex}"
    );
    assert!(text.stderr.contains("verifies"), "{}", text.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&sign(&["--format", "json"]).ok().stdout).unwrap();
    assert_eq!(json["Algorithm"], "ECDSA SHA-256 (DER)");
    // Raw DER bytes, read as bytes: a lossy text of random bytes may be longer than the hex.
    let der = sign(&["--format", "bin"]).ok().stdout_bytes;
    assert!(
        der.len() > 2 && der[0] == 0x30 && usize::from(der[1]) + 2 == der.len(),
        "a DER SEQUENCE, not hex: {der:02x?}"
    );

    let mut wrong = keyhold();
    wrong.args(["sign-string", "--private-key", key.to_str().unwrap()]);
    wrong.args(["--certificate", other.path("leaf.pem").to_str().unwrap()]);
    let out = run_with_stdin(&mut wrong, "x");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("does not verify"), "{}", out.stderr);
    let out = sign(&["--digest", "SHA384"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("SHA-256 only"), "{}", out.stderr);
}

#[test]
fn doctor_checks_each_link_to_create_session() {
    let dir = scratch("ra-doctor");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256", "--intermediate"]);
    let other = Pki::make(&dir.join("other"), &["--key", "p256"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let doctor = |certificate: &Pki, file: &str, key: &Pki| {
        let arguments = format!(
            "doctor --certificate {} --private-key {} --trust-anchor-arn {TRUST_ANCHOR_ARN} \
             --profile-arn {PROFILE_ARN} --role-arn {} --endpoint-url {}",
            certificate.path(file).display(),
            key.path("leaf.key").display(),
            role_arn(),
            endpoint.url
        );
        let mut cmd = keyhold();
        cmd.args(arguments.split_whitespace());
        run(&mut cmd)
    };
    let good = doctor(&pki, "full-chain.pem", &pki);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    for link in [
        "[ ok ] certificate and private key open",
        "[ ok ] certificate valid now",
        "[ ok ] private key is the certificate's",
        "[ ok ] chain names its issuers in order: 1 intermediate(s); the trust anchor must hold",
        "[ ok ] clock sane",
        "[ ok ] Roles Anywhere reachable",
        "[ ok ] CreateSession signed by the private key: ASIA",
    ] {
        assert!(good.stdout.contains(link), "{link}: {}", good.stdout);
    }
    let mismatched = doctor(&pki, "leaf.pem", &other);
    assert_eq!(mismatched.code, 1, "{}", mismatched.stdout);
    assert!(
        mismatched
            .stdout
            .contains("[FAIL] private key is the certificate's"),
        "{}",
        mismatched.stdout
    );
    assert!(
        mismatched.stdout.contains("[skip] CreateSession"),
        "{}",
        mismatched.stdout
    );
    let untrusted = doctor(&other, "leaf.pem", &other);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stdout);
    assert!(
        untrusted
            .stdout
            .contains("[FAIL] CreateSession signed by the private key"),
        "{}",
        untrusted.stdout
    );
    assert!(
        untrusted.stdout.contains("Untrusted signing certificate"),
        "{}",
        untrusted.stdout
    );
}

#[test]
fn a_pin_is_asked_for_on_the_terminal_when_the_uri_gives_none() {
    let dir = scratch("ra-tty-pin");
    let token = softhsm_key("ttypin", "client", &dir);
    let private = keyhold_ok(&["cert", "keygen", "--key", &token]);
    let pki = certify(&dir, private.trim(), "CN=tty", &[]);
    let stored = import_certificate(private.trim(), &pki);
    // The same certificate, named without any PIN source.
    let pin_source = format!("pin-source=file:{}", dir.join("pin").display());
    let bare = stored
        .trim()
        .replace(&format!("{pin_source}&"), "")
        .replace(&format!("&{pin_source}"), "");
    assert!(!bare.contains("pin-"), "{bare}");

    let OnTerminal {
        terminal: shown,
        code,
        ..
    } = on_a_terminal(
        &["cert", "show", "--certificate", &bare],
        "user-pin-for-tests",
        false,
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("PIN for token"), "{shown}");
    assert!(shown.contains("Subject: CN=tty"), "{shown}");
    assert!(
        !shown.contains("user-pin-for-tests"),
        "the PIN is not echoed: {shown}"
    );

    let OnTerminal {
        terminal: shown,
        code,
        ..
    } = on_a_terminal(
        &["cert", "show", "--certificate", &bare],
        "wrong-pin",
        false,
    );
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("PIN incorrect"), "{shown}");

    // Without a terminal (a new session has no controlling terminal, as a service's), the
    // error says what to give.
    let mut cmd = std::process::Command::new("setsid");
    cmd.args(["--wait", env!("CARGO_BIN_EXE_keyhold"), "cert", "show"])
        .args(["--certificate", &bare])
        .stdin(std::process::Stdio::null());
    let out = run(&mut cmd);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("PIN"), "{}", out.stderr);
}
