//! A whole `keyhold credential-process` run through IAM Roles Anywhere (process start to the
//! JSON on stdout), with a file key, a key in SoftHSM and a key in swtpm, next to Python's
//! `iam-rolesanywhere-session` (PyPI, pinned in the xtask virtualenv) getting the same
//! CreateSession with the same file key, in one run: group `ra-process`, rows
//! `keyhold-file`, `keyhold-pkcs11`, `keyhold-tpm`, `python-iam-rolesanywhere-session`.
//!
//! Both talk to the local endpoint of the tests (`test_support::rolesanywhere`), which
//! verifies every request; here it answers fixed credentials (no STS call to time). The
//! Python library only speaks https, so it gets the endpoint's TLS listener (its CA passed
//! as `verify`); keyhold gets plain http on loopback. Needs SoftHSM, swtpm and the
//! virtualenv: `cargo xtask bench ra-process` sets them up.

use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use sigv4_core::{X509Key, X509KeyType};
use test_support::rolesanywhere::{Endpoint, PROFILE_ARN, Pki, TRUST_ANCHOR_ARN, python, scratch};
use test_support::rounds::{Group, ROUNDS, plain, round};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench";

/// Process runs take tens to hundreds of milliseconds: ten samples each.
fn slow(group: &mut Group<'_>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
}

/// Runs `command` to its end; panics unless it printed credentials.
fn run(command: &mut Command) {
    let out = command.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success() && out.stdout.windows(4).any(|w| w == b"ASIA"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keyhold(
    endpoint: &Endpoint,
    certificate: &std::path::Path,
    private_key: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyhold"));
    cmd.args(["credential-process", "--certificate"])
        .arg(certificate)
        .args(["--private-key", private_key])
        .args([
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
            "--profile-arn",
            PROFILE_ARN,
        ])
        .args(["--role-arn", ROLE_ARN, "--endpoint-url", &endpoint.url])
        // Every run calls the endpoint: this group times the whole exchange.
        .arg("--no-cache")
        .args(extra)
        .env_remove("AWS_PROFILE");
    cmd
}

/// The public key of a device key, as PEM for the test CA to certify.
fn public_pem(public: &sigv4_core::X509PublicKey, path: &std::path::Path) {
    let der = rolesanywhere::public_key_der(public).expect("public key");
    std::fs::write(path, der).expect("write public key");
}

fn benches(c: &mut Criterion) {
    let dir = scratch("bench-ra-process");
    // The file key (P-256, PKCS#8) and the endpoint's CA, with a TLS server certificate.
    let pki = Pki::make(&dir.join("file"), &["--key", "p256", "--server"]);
    let endpoint = Endpoint::start_static(&pki, ROLE_ARN);

    // A P-256 key made in SoftHSM.
    let token = test_support::softhsm::TestToken::new("bench-process");
    backend_pkcs11::generate_key_pair(&token.uri("ra"), None, X509KeyType::P256).expect("keygen");
    let mut uri = token.uri("ra");
    uri.object_type = Some(backend_pkcs11::uri::ObjectType::Private);
    let p11 = backend_pkcs11::Pkcs11X509Key::open(&uri, None).expect("open");
    public_pem(&p11.public_key().expect("public"), &dir.join("p11.der"));
    drop(p11);
    let ca = pki.dir.to_str().expect("utf-8");
    let p11_pki = Pki::make(
        &dir.join("p11"),
        &[
            "--public-key",
            dir.join("p11.der").to_str().expect("utf-8"),
            "--ca-dir",
            ca,
        ],
    );
    let pin = test_support::softhsm::USER_PIN;
    let p11_uri = format!(
        "pkcs11:token={};object=ra;type=private?module-path={}",
        uri.token.as_deref().expect("token"),
        test_support::softhsm::module_path().display()
    );

    // A P-256 key made in swtpm.
    let tcti = std::env::var(test_support::env::TPM_TCTI).expect("KEYHOLD_TEST_TPM_TCTI");
    let tpm = backend_tpm::Tpm::connect(Some(&tcti)).expect("swtpm");
    let file = tpm
        .create_signing_key(X509KeyType::P256, None)
        .expect("keygen");
    let tpm_key_path = dir.join("tpm.pem");
    std::fs::write(&tpm_key_path, file.to_pem()).expect("write key");
    let loaded = tpm
        .load_signing_key_file(&file, backend_tpm::KeyAuth::none())
        .expect("load");
    public_pem(&loaded.public_key().expect("public"), &dir.join("tpm.der"));
    drop(loaded);
    tpm.disconnect();
    let tpm_pki = Pki::make(
        &dir.join("tpm"),
        &[
            "--public-key",
            dir.join("tpm.der").to_str().expect("utf-8"),
            "--ca-dir",
            ca,
        ],
    );

    let python_script = r#"
import json, sys
from iam_rolesanywhere_session import IAMRolesAnywhereSession
certificate, key, ca, endpoint, trust_anchor, profile, role = sys.argv[1:]
session = IAMRolesAnywhereSession(
    profile_arn=profile, role_arn=role, trust_anchor_arn=trust_anchor,
    certificate=open(certificate, "rb").read(), private_key=open(key, "rb").read(),
    region="us-east-1", endpoint=endpoint, verify=ca,
).get_session()
frozen = session.get_credentials().get_frozen_credentials()
print(json.dumps({"Version": 1, "AccessKeyId": frozen.access_key}))
"#;
    let tls = endpoint.tls_address.clone().expect("https listener");
    let leaf = pki.path("leaf.pem");
    let file_key = pki.path("leaf.key");
    let mut file_row = |b: &mut Bencher<'_>| {
        b.iter(|| {
            run(&mut keyhold(
                &endpoint,
                &leaf,
                file_key.to_str().expect("utf-8"),
                &[],
            ))
        })
    };
    let p11_leaf = p11_pki.path("leaf.pem");
    let mut p11_row = |b: &mut Bencher<'_>| {
        b.iter(|| run(keyhold(&endpoint, &p11_leaf, &p11_uri, &[]).env("KEYHOLD_PKCS11_PIN", pin)))
    };
    let tpm_leaf = tpm_pki.path("leaf.pem");
    let tpm_reference = format!("tpm:file={}", tpm_key_path.display());
    let mut tpm_row = |b: &mut Bencher<'_>| {
        b.iter(|| {
            run(&mut keyhold(
                &endpoint,
                &tpm_leaf,
                &tpm_reference,
                &["--tcti", &tcti],
            ))
        })
    };
    let ca_pem = pki.path("ca.pem");
    let mut python_row = |b: &mut Bencher<'_>| {
        b.iter(|| {
            run(Command::new(python())
                .args(["-c", python_script])
                .args([&leaf, &file_key, &ca_pem])
                .args([tls.as_str(), TRUST_ANCHOR_ARN, PROFILE_ARN, ROLE_ARN]))
        })
    };
    for n in 1..=ROUNDS {
        round(
            c,
            "ra-process",
            n,
            slow,
            &mut [
                ("keyhold-file", &mut plain(&mut file_row)),
                ("keyhold-pkcs11", &mut plain(&mut p11_row)),
                ("keyhold-tpm", &mut plain(&mut tpm_row)),
                (
                    "python-iam-rolesanywhere-session",
                    &mut plain(&mut python_row),
                ),
            ],
        );
    }
}

criterion_group!(ra_process, benches);
criterion_main!(ra_process);
