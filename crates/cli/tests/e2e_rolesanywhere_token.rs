//! IAM Roles Anywhere keys in SoftHSM tokens, as AWS and other tools set them up: AWS's
//! YubiKey line (`--certificate 'pkcs11:type=cert?pin-value=...'`, no module, no token)
//! through p11-kit's proxy, a certificate written with another `CKA_ID` than its key, the PIN
//! typed on a terminal for `credential-process`, and `sign-string` and `doctor
//! --certificate` with a token key (and doctor with an expired certificate). Against the
//! local endpoint that verifies every request (`test_support::rolesanywhere`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::roles_anywhere::*;
use common::*;
use test_support::rolesanywhere::{Endpoint, Pki};

const PIN: &str = "user-pin-for-tests";

/// `pkcs11-tool --module M --token-label LABEL --login ARGS` with `SOFTHSM2_CONF` = `conf`.
fn pkcs11_tool(conf: &str, label: &str, args: &[&str]) {
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .env("RA_TEST_PIN", PIN)
        .args(["--module", &env(test_support::env::PKCS11_MODULE)])
        .args([
            "--token-label",
            label,
            "--login",
            "--pin",
            "env:RA_TEST_PIN",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkcs11-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The token label of a `pkcs11:token=LABEL;...` URI.
fn token_label(uri: &str) -> String {
    uri.strip_prefix("pkcs11:token=")
        .and_then(|rest| rest.split([';', '?']).next())
        .unwrap()
        .to_owned()
}

/// A SoftHSM of the test's own (`SOFTHSM2_CONF`) with tokens `labels`, and a p11-kit user
/// configuration (`XDG_CONFIG_HOME`) that loads SoftHSM into p11-kit's proxy. p11-kit reads
/// no user configuration for root (`getuid() == 0`, p11-kit/conf.c); then the proxy loads
/// SoftHSM through the module file Debian's softhsm2 package installs.
fn private_softhsm_behind_p11kit(dir: &Path, labels: &[&str]) -> Vec<(String, String)> {
    let system = Path::new("/usr/share/p11-kit/modules/softhsm2.module");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    assert!(
        !root || system.is_file(),
        "running as root, p11-kit reads only the system's module files, and {} is missing \
         (apt-get install softhsm2 p11-kit-modules)",
        system.display()
    );
    let conf = test_support::softhsm::private_conf(dir);
    let modules = dir.join("xdg/pkcs11/modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(
        modules.join("softhsm2.module"),
        format!("module: {}\n", env(test_support::env::PKCS11_MODULE)),
    )
    .unwrap();
    for label in labels {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "so-pin-for-tests", "--pin", PIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    vec![
        ("SOFTHSM2_CONF".into(), conf.display().to_string()),
        (
            "XDG_CONFIG_HOME".into(),
            dir.join("xdg").display().to_string(),
        ),
    ]
}

#[test]
fn the_aws_yubikey_line_works_as_written_through_p11_kits_proxy() {
    let dir = scratch("ra-yubikey-line");
    let environment = private_softhsm_behind_p11kit(&dir, &["ra-one", "ra-two"]);
    let conf = environment[0].1.clone();
    let with_env = |cmd: &mut Command| {
        cmd.envs(environment.iter().map(|(k, v)| (k, v)));
    };
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, PIN).unwrap();
    // The key pair and its certificate on ra-one, made by keyhold through SoftHSM's module.
    let made = {
        let mut cmd = keyhold();
        with_env(&mut cmd);
        cmd.args(["cert", "keygen", "--key"]).arg(format!(
            "pkcs11:token=ra-one;object=yk?module-path={}&pin-source=file:{}",
            env(test_support::env::PKCS11_MODULE),
            pin_file.display()
        ));
        run(&mut cmd).ok().stdout.trim().to_owned()
    };
    let csr = dir.join("yk.csr");
    let mut cmd = keyhold();
    with_env(&mut cmd);
    cmd.args([
        "cert",
        "csr",
        "--key",
        &made,
        "--subject",
        "CN=yubikey-line",
        "-o",
    ])
    .arg(&csr);
    run(&mut cmd).ok();
    let pki = Pki::make(&dir.join("pki"), &["--csr", csr.to_str().unwrap()]);
    let mut cmd = keyhold();
    with_env(&mut cmd);
    cmd.args(["cert", "import", "--key", &made, "--certificate"])
        .arg(pki.path("leaf.pem"));
    run(&mut cmd).ok();

    // As AWS writes it: no module (p11-kit's proxy), no token, the PIN in the URI.
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let line = |cmd: &mut Command| {
        with_env(cmd);
        cmd.arg("credential-process")
            .args([
                "--certificate",
                &format!("pkcs11:type=cert?pin-value={PIN}"),
            ])
            .args(endpoint.session_flags());
    };
    let mut cmd = keyhold();
    line(cmd.arg("-v"));
    let out = run(&mut cmd);
    temporary_key_id(&out);
    assert!(out.stderr.contains("p11-kit-proxy"), "{}", out.stderr);
    assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());

    // A certificate on the other token too: which one is meant is not guessed.
    pkcs11_tool(
        &conf,
        "ra-two",
        &[
            "--write-object",
            pki.path("leaf.der").to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "01",
            "--label",
            "yk",
        ],
    );
    let mut cmd = keyhold();
    line(&mut cmd);
    let out = run(&mut cmd);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expected in ["'ra-one'", "'ra-two'", "pkcs11:type=cert", "token="] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
    assert!(!out.stderr.contains(PIN), "{}", out.stderr);
}

#[test]
fn a_certificate_with_another_cka_id_finds_its_key_by_public_key() {
    let dir = scratch("ra-other-id");
    let token = softhsm_key("otherid", "client", &dir);
    let private = keyhold_ok(&["cert", "keygen", "--key", &token])
        .trim()
        .to_owned();
    let pki = certify(&dir, &private, "CN=other-id", &[]);
    // Written by pkcs11-tool with an id and label of its own, as some enrolment tools do.
    let conf = env("SOFTHSM2_CONF");
    let lock = std::fs::File::create(Path::new(&conf).with_file_name("token-init.lock")).unwrap();
    lock.lock().unwrap();
    pkcs11_tool(
        &conf,
        &token_label(&private),
        &[
            "--write-object",
            pki.path("leaf.der").to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "99",
            "--label",
            "enrolled",
        ],
    );
    drop(lock);
    let certificate = token.replacen("object=client", "object=enrolled;type=cert", 1);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let mut cmd = keyhold();
    cmd.args(["credential-process", "--certificate", &certificate])
        .args(endpoint.session_flags());
    temporary_key_id(&run(&mut cmd));
    assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());
}

#[test]
fn credential_process_asks_for_the_pin_once_on_the_terminal_and_prints_only_json() {
    let dir = scratch("ra-tty-credential-process");
    let (pki, private, certificate) = token_key_and_certificate("ttycp", &dir);
    let (certificate, private) = (
        without_param(&certificate, "pin-source"),
        without_param(&private, "pin-source"),
    );
    assert!(!certificate.contains("pin-") && !private.contains("pin-"));
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let flags = endpoint.session_flags();
    // The certificate alone, then the certificate and the key: both on the token, both need
    // the PIN, which is asked for once.
    for extra in [vec![], vec!["--private-key", private.as_str()]] {
        let mut args = vec!["credential-process", "--certificate", &certificate];
        args.extend(extra.iter().copied());
        args.extend(flags.iter().map(String::as_str));
        let shown = on_a_terminal(&args, PIN, true);
        assert_eq!(shown.code, 0, "{}", shown.terminal);
        assert_eq!(
            shown.terminal.matches("PIN for token").count(),
            1,
            "{}",
            shown.terminal
        );
        assert!(
            !shown.terminal.contains(PIN),
            "not echoed: {}",
            shown.terminal
        );
        let document: serde_json::Value = serde_json::from_str(&shown.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?}", shown.stdout));
        assert_eq!(document["Version"], 1);
        assert!(
            document["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA")
        );
    }
    assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());
}

/// `keyhold doctor --certificate CERTIFICATE [--private-key KEY] ...` against `endpoint`.
fn doctor(certificate: &str, key: Option<&str>, endpoint: &Endpoint) -> Run {
    let mut cmd = keyhold();
    cmd.args(["doctor", "--certificate", certificate]);
    if let Some(key) = key {
        cmd.args(["--private-key", key]);
    }
    run(cmd.args(endpoint.session_flags()))
}

#[test]
fn sign_string_and_doctor_work_with_a_token_key_and_doctor_names_an_expired_certificate() {
    let dir = scratch("ra-token-doctor");
    let (pki, private, certificate) = token_key_and_certificate("doctor", &dir);
    let mut sign = keyhold();
    sign.args(["sign-string", "--private-key", &private, "--format", "json"])
        .args(["--certificate", pki.path("leaf.pem").to_str().unwrap()]);
    let out = run_with_stdin(&mut sign, "AWS Roles Anywhere self-test");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("verifies"), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["Algorithm"], "ECDSA SHA-256 (DER)");

    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    for key in [None, Some(private.as_str())] {
        let good = doctor(&certificate, key, &endpoint);
        assert_eq!(good.code, 0, "{key:?}: {}{}", good.stdout, good.stderr);
        for link in [
            "[ ok ] certificate and private key open",
            "[ ok ] certificate valid now",
            "[ ok ] private key is the certificate's",
            "[ ok ] CreateSession signed by the private key: ASIA",
        ] {
            assert!(good.stdout.contains(link), "{link}: {}", good.stdout);
        }
    }

    // An expired certificate of the same CA: the link that fails says so, and the rest are
    // skipped (nothing is sent).
    let expired = Pki::make_expired(&dir.join("expired"), &pki, "p256");
    let out = doctor(
        expired.path("leaf.pem").to_str().unwrap(),
        Some(expired.path("leaf.key").to_str().unwrap()),
        &endpoint,
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let failed = out
        .stdout
        .lines()
        .find(|l| l.starts_with("[FAIL]"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        failed.contains("certificate valid now") && failed.contains("expired"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[skip] CreateSession"),
        "{}",
        out.stdout
    );
    // Only doctor's reachability probes (GET) were refused: no CreateSession failed.
    endpoint.assert_only_probes_refused();
}
