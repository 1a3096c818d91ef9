//! `keyhold credential-process --certificate ...` as the AWS signing helper's lines use it:
//! the signing region (`--region`, else the trust anchor's), the endpoint (`--endpoint`,
//! `AWS_ENDPOINT_URL_ROLESANYWHERE`), throttling retried, the helper's flags that keyhold
//! takes (`--pkcs11-lib`, `--debug`, `--with-proxy`, ...) and `read-certificate-data`. Against
//! the local endpoint that verifies every request (`test_support::rolesanywhere`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::roles_anywhere::*;
use common::*;
use test_support::rolesanywhere::{
    Endpoint, EndpointOptions, PROFILE_ARN, PROFILE_ARN_EU_WEST_1, Pki, TRUST_ANCHOR_ARN,
    TRUST_ANCHOR_ARN_EU_WEST_1, role_arn,
};

/// `keyhold credential-process` with `pki`'s leaf and key, the trust anchor `anchor`, then
/// `extra`, with `env` set (the host's region and endpoints removed first).
fn credential_process(pki: &Pki, anchor: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    // Roles Anywhere resources are regional: the profile is where the trust anchor is.
    let profile = match anchor {
        TRUST_ANCHOR_ARN_EU_WEST_1 => PROFILE_ARN_EU_WEST_1,
        _ => PROFILE_ARN,
    };
    let mut cmd = keyhold();
    cmd.env_remove("AWS_ENDPOINT_URL_ROLESANYWHERE")
        .envs(env.iter().copied())
        .arg("credential-process")
        .args(["--certificate", pki.path("leaf.pem").to_str().unwrap()])
        .args(["--private-key", pki.path("leaf.key").to_str().unwrap()])
        .args(["--trust-anchor-arn", anchor, "--profile-arn", profile])
        .args(["--role-arn", &role_arn()])
        .args(extra);
    run(&mut cmd)
}

fn endpoint_in(pki: &Pki, region: &str, trust_anchor_arn: &str) -> Endpoint {
    let profile_arn = match trust_anchor_arn {
        TRUST_ANCHOR_ARN_EU_WEST_1 => PROFILE_ARN_EU_WEST_1,
        _ => PROFILE_ARN,
    };
    Endpoint::start_configured(
        &pki.path("ca.pem"),
        &EndpointOptions {
            region: region.into(),
            trust_anchor_arn: trust_anchor_arn.into(),
            profile_arn: profile_arn.into(),
            ..EndpointOptions::default()
        },
    )
}

#[test]
fn the_signing_region_is_the_trust_anchors_unless_region_says_otherwise() {
    let dir = scratch("ra-region");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256"]);

    // A trust anchor in eu-west-1: signed for eu-west-1, whatever AWS_REGION says.
    let eu = endpoint_in(&pki, "eu-west-1", TRUST_ANCHOR_ARN_EU_WEST_1);
    let url = eu.url.clone();
    let at_eu = ["--endpoint-url", url.as_str()];
    let out = credential_process(
        &pki,
        TRUST_ANCHOR_ARN_EU_WEST_1,
        &at_eu,
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ],
    );
    temporary_key_id(&out);
    assert!(eu.refusals().is_empty(), "{}", eu.refusals());

    // A trust anchor in us-east-1 and a service that signs for eu-west-1: --region says so.
    let there = endpoint_in(&pki, "eu-west-1", TRUST_ANCHOR_ARN);
    let url = there.url.clone();
    let out = credential_process(
        &pki,
        TRUST_ANCHOR_ARN,
        &["--endpoint-url", &url, "--region", "eu-west-1"],
        &[("AWS_REGION", "us-east-1")],
    );
    temporary_key_id(&out);
    assert!(there.refusals().is_empty(), "{}", there.refusals());
    // Without it, the trust anchor's region is signed, and the service says so.
    let out = credential_process(
        &pki,
        TRUST_ANCHOR_ARN,
        &["--endpoint-url", &url],
        &[("AWS_REGION", "eu-west-1")],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/us-east-1/rolesanywhere/aws4_request is not"),
        "{}",
        out.stderr
    );

    // An empty --region is none, as in the AWS signing helper: the trust anchor's, and the
    // log says so.
    let out = credential_process(
        &pki,
        TRUST_ANCHOR_ARN_EU_WEST_1,
        &["--endpoint-url", &eu.url, "--region", "", "-v"],
        &[],
    );
    temporary_key_id(&out);
    assert!(
        out.stderr.contains("region=\"eu-west-1\"")
            && out.stderr.contains("from=\"the trust anchor\"")
            && !out.stderr.contains("--region"),
        "{}",
        out.stderr
    );

    // --region is read (and checked) on this path.
    let out = credential_process(&pki, TRUST_ANCHOR_ARN, &["--region", "bad region!"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not an AWS region name"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_endpoint_comes_from_endpoint_or_the_environment() {
    let dir = scratch("ra-endpoint");
    let pki = Pki::make(&dir.join("pki"), &["--key", "rsa2048"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    // The AWS signing helper's --endpoint.
    let url = endpoint.url.clone();
    temporary_key_id(&credential_process(
        &pki,
        TRUST_ANCHOR_ARN,
        &["--endpoint", &url],
        &[],
    ));
    // AWS_ENDPOINT_URL_ROLESANYWHERE, named in the log; it wins over AWS_ENDPOINT_URL.
    let out = credential_process(
        &pki,
        TRUST_ANCHOR_ARN,
        &["-v"],
        &[
            ("AWS_ENDPOINT_URL_ROLESANYWHERE", &url),
            ("AWS_ENDPOINT_URL", "http://192.0.2.1:9"),
        ],
    );
    temporary_key_id(&out);
    assert!(
        out.stderr
            .contains("AWS_ENDPOINT_URL_ROLESANYWHERE in the environment"),
        "{}",
        out.stderr
    );
    assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());
}

#[test]
fn throttling_is_retried_and_then_given_up_with_the_services_reason() {
    let dir = scratch("ra-throttle");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p384"]);
    let throttled = |n| Endpoint::throttling(&pki.path("ca.pem"), n);
    let endpoint = throttled(2);
    let url = endpoint.url.clone();
    temporary_key_id(&credential_process(
        &pki,
        TRUST_ANCHOR_ARN,
        &["--endpoint-url", &url],
        &[],
    ));
    assert_eq!(endpoint.refusals().matches("throttled").count(), 2);

    let endpoint = throttled(1000);
    let url = endpoint.url.clone();
    let out = credential_process(&pki, TRUST_ANCHOR_ARN, &["--endpoint-url", &url], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ThrottlingException (HTTP 429): Rate exceeded"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(endpoint.refusals().matches("throttled").count(), 3);
}

#[test]
fn the_signing_helpers_flags_that_change_nothing_and_debug_are_taken() {
    let dir = scratch("ra-helper-flags");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256"]);
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let url = endpoint.url.clone();
    let flags = [
        "--endpoint",
        url.as_str(),
        "--with-proxy",
        "--reuse-pin",
        "--no-tpm-key-password",
        "--debug",
    ];
    let out = credential_process(&pki, TRUST_ANCHOR_ARN, &flags, &[]);
    temporary_key_id(&out);
    // --debug is -vv: the log shows the steps (on stderr; stdout stays JSON).
    assert!(
        out.stderr.contains("Roles Anywhere endpoint"),
        "{}",
        out.stderr
    );
    // The one the helper refuses to be safe is refused here too.
    let out = credential_process(&pki, TRUST_ANCHOR_ARN, &["--no-verify-ssl"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for secret_flag in ["--pkcs8-password", "--tpm-key-password"] {
        let out = credential_process(&pki, TRUST_ANCHOR_ARN, &[secret_flag, "hunter2"], &[]);
        assert_eq!(out.code, 2, "{secret_flag}: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    }
}

#[test]
fn read_certificate_data_is_cert_show_and_pkcs11_lib_names_the_module() {
    let dir = scratch("ra-read-cert");
    let (pki, private, certificate) = token_key_and_certificate("readcert", &dir);
    // A file, by the helper's command name.
    let shown = keyhold_ok(&[
        "read-certificate-data",
        "--certificate",
        pki.path("leaf.pem").to_str().unwrap(),
    ]);
    assert!(
        shown.contains(&format!(
            "(decimal, as Roles Anywhere uses it): {}",
            pki.serial
        )),
        "{shown}"
    );
    // A token certificate whose URI names no module: --pkcs11-lib does.
    let module = env(test_support::env::PKCS11_MODULE);
    let no_module = |uri: &str| without_param(uri, "module-path");
    let bare_certificate = no_module(&certificate);
    assert!(
        !bare_certificate.contains("module-path"),
        "{bare_certificate}"
    );
    let shown = keyhold_ok(&[
        "read-certificate-data",
        "--certificate",
        &bare_certificate,
        "--pkcs11-lib",
        &module,
    ]);
    assert!(shown.contains("Subject: CN=readcert"), "{shown}");

    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let mut cmd = keyhold();
    cmd.args(["credential-process", "--certificate", &bare_certificate])
        .args([
            "--private-key",
            &no_module(&private),
            "--pkcs11-lib",
            &module,
        ])
        .args([
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
            "--profile-arn",
            PROFILE_ARN,
        ])
        .args(["--role-arn", &role_arn(), "--endpoint-url", &endpoint.url]);
    temporary_key_id(&run(&mut cmd));
    let mut sign = keyhold();
    sign.args(["sign-string", "--private-key", &no_module(&private)])
        .args(["--pkcs11-lib", &module, "--reuse-pin"])
        .args(["--certificate", pki.path("leaf.pem").to_str().unwrap()]);
    let out = run_with_stdin(&mut sign, "self-test");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("verifies"), "{}", out.stderr);
}

#[test]
fn a_private_key_through_a_fifo_is_read_once() {
    // `--private-key <(...)` or a FIFO: it can be read once, and that read is the key's (it
    // is not looked into for a TPM key first).
    let dir = scratch("ra-fifo");
    let pki = Pki::make(&dir.join("pki"), &["--key", "p256"]);
    let fifo = dir.join("key.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let pem = std::fs::read(pki.path("leaf.key")).unwrap();
    let writer = {
        let fifo = fifo.clone();
        // Blocks until keyhold opens the FIFO; a second open by keyhold would find no writer.
        std::thread::spawn(move || std::fs::write(fifo, pem))
    };
    let endpoint = Endpoint::start(&pki.path("ca.pem"), 0);
    let mut child = keyhold()
        .arg("credential-process")
        .args(["--certificate", pki.path("leaf.pem").to_str().unwrap()])
        .args(["--private-key", fifo.to_str().unwrap()])
        .args(["--trust-anchor-arn", TRUST_ANCHOR_ARN])
        .args(["--profile-arn", PROFILE_ARN, "--role-arn", &role_arn()])
        .args(["--endpoint-url", &endpoint.url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("keyhold waits for a second read of the FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        document["AccessKeyId"]
            .as_str()
            .is_some_and(|id| id.starts_with("ASIA")),
        "{document}"
    );
    writer.join().unwrap().unwrap();
    assert!(endpoint.refusals().is_empty(), "{}", endpoint.refusals());
}

#[test]
fn pkcs11_lib_takes_a_file_name_as_the_signing_helpers_loader_does() {
    let certificate = "pkcs11:type=cert;object=none-such";
    let read = |lib: &str, cwd: Option<&std::path::Path>| {
        let mut cmd = keyhold();
        cmd.args(["read-certificate-data", "--certificate", certificate])
            .args(["--pkcs11-lib", lib]);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        run(&mut cmd)
    };
    // A file name no module directory holds: the flag the user typed is named.
    let out = read("no-such-pkcs11-module.so", None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--pkcs11-lib")
            && out.stderr.contains("no-such-pkcs11-module.so")
            && out.stderr.contains("give the module's absolute path")
            && !out.stderr.contains("module-path"),
        "{}",
        out.stderr
    );
    // A file name found where the helper's loader finds it (OpenSC's module, as AWS's
    // documentation writes it): loaded by its full path, which had no card.
    let out = read("opensc-pkcs11.so", None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("/opensc-pkcs11.so")
            && !out.stderr.contains(" opensc-pkcs11.so")
            && !out.stderr.contains("absolute"),
        "{}",
        out.stderr
    );
    // A relative path, from the current directory.
    let module = std::path::PathBuf::from(env(test_support::env::PKCS11_MODULE));
    let file = module.file_name().unwrap().to_str().unwrap();
    let out = read(&format!("./{file}"), module.parent());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("module {}", module.display())),
        "{}",
        out.stderr
    );
}
