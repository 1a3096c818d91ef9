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

/// `keyhold ARGS...`, which must succeed; its stdout.
fn keyhold_ok(args: &[&str]) -> String {
    let mut cmd = keyhold();
    without_host_credentials(&mut cmd).args(args);
    run(&mut cmd).ok().stdout
}

/// `cert csr` for the key `private` with `subject`, certified by a fresh test CA in
/// `dir/pki` (which checks the request's signature).
fn certify(dir: &Path, private: &str, subject: &str) -> Pki {
    let csr = dir.join("client.csr");
    let csr = csr.to_str().unwrap();
    keyhold_ok(&[
        "cert",
        "csr",
        "--key",
        private,
        "--subject",
        subject,
        "-o",
        csr,
    ]);
    Pki::make(&dir.join("pki"), &["--csr", csr])
}

/// `cert import` of `pki`'s leaf for the key `private`; the certificate's URI.
fn import_certificate(private: &str, pki: &Pki) -> String {
    let leaf = pki.path("leaf.pem");
    let stored = keyhold_ok(&[
        "cert",
        "import",
        "--key",
        private,
        "--certificate",
        leaf.to_str().unwrap(),
    ]);
    stored.trim().to_owned()
}

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
        let pki = certify(&dir, private, &subject);

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
    let bin = sign(&["--format", "bin"]).ok();
    assert!(bin.stdout.len() < hex.len(), "raw bytes, not hex");

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
        without_host_credentials(&mut cmd).args(arguments.split_whitespace());
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

/// Runs keyhold with `args` on a pseudo-terminal (its controlling terminal), answers the
/// first prompt containing `PIN` with `pin`; returns what the terminal showed and the exit
/// code.
fn on_a_terminal(args: &[&str], pin: &str) -> (String, i32) {
    let script = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
while b"PIN" not in seen:
    seen += os.read(fd, 1024)
os.write(fd, sys.stdin.buffer.read())
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut cmd = std::process::Command::new(python_bin().join("python"));
    cmd.args(["-c", script, env!("CARGO_BIN_EXE_keyhold")])
        .args(args);
    let out = run_with_stdin(&mut cmd, &format!("{pin}\n"));
    (out.stdout, out.code)
}

#[test]
fn a_pin_is_asked_for_on_the_terminal_when_the_uri_gives_none() {
    let dir = scratch("ra-tty-pin");
    let token = softhsm_key("ttypin", "client", &dir);
    let private = keyhold_ok(&["cert", "keygen", "--key", &token]);
    let pki = certify(&dir, private.trim(), "CN=tty");
    let stored = import_certificate(private.trim(), &pki);
    // The same certificate, named without any PIN source.
    let pin_source = format!("pin-source=file:{}", dir.join("pin").display());
    let bare = stored
        .trim()
        .replace(&format!("{pin_source}&"), "")
        .replace(&format!("&{pin_source}"), "");
    assert!(!bare.contains("pin-"), "{bare}");

    let (shown, code) = on_a_terminal(
        &["cert", "show", "--certificate", &bare],
        "user-pin-for-tests",
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("PIN for token"), "{shown}");
    assert!(shown.contains("Subject: CN=tty"), "{shown}");
    assert!(
        !shown.contains("user-pin-for-tests"),
        "the PIN is not echoed: {shown}"
    );

    let (shown, code) = on_a_terminal(&["cert", "show", "--certificate", &bare], "wrong-pin");
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
