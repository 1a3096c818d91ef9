//! Enabling only `tpm` compiles no PKCS#11, Tink, STS or SDK code: checked with `cargo tree`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn tree(features: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "keyhold",
            "--no-default-features",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--features", features])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has(tree: &str, krate: &str) -> bool {
    tree.lines()
        .any(|l| l.split_whitespace().next() == Some(krate))
}

#[test]
fn only_tpm_builds_no_other_backend_or_layer() {
    let tpm = tree("tpm");
    assert!(has(&tpm, "backend-tpm") && has(&tpm, "sigv4-core"), "{tpm}");
    for absent in [
        "backend-pkcs11",
        "cryptoki",
        "backend-tink",
        "sts-client",
        "sdk-credentials",
        "reqwest",
        "aws-credential-types",
        "aws-smithy-runtime-api",
    ] {
        assert!(
            !has(&tpm, absent),
            "{absent} is built with only `tpm`:\n{tpm}"
        );
    }
}

#[test]
fn each_feature_brings_its_crate() {
    for (feature, krate) in [
        ("pkcs11", "backend-pkcs11"),
        ("sts", "sts-client"),
        ("sdk", "sdk-credentials"),
        ("tink", "backend-tink"),
    ] {
        let t = tree(feature);
        assert!(has(&t, krate), "{feature}: {t}");
        assert!(
            !has(&t, "backend-tpm"),
            "{feature} pulls in the TPM backend:\n{t}"
        );
    }
}

#[test]
fn tpm_duplication_crypto_only_with_its_feature() {
    let tpm = tree("tpm");
    for absent in ["rsa", "p256", "aes", "cfb-mode"] {
        assert!(!has(&tpm, absent), "tpm alone pulls in {absent}:\n{tpm}");
    }
    let duplicate = tree("tpm-duplicate");
    for present in ["backend-tpm", "rsa", "p256", "aes", "cfb-mode"] {
        assert!(
            has(&duplicate, present),
            "tpm-duplicate lacks {present}:\n{duplicate}"
        );
    }
}
