//! Roles Anywhere signing keys in swtpm (`TpmX509Key`): RSA-2048, P-256 and P-384 keys made
//! by tpm2-tools (`tpm2_create` + `tpm2_encodeobject`, as the AWS helper's users make them)
//! sign in keyhold, and each signature verifies with the key's public area; a password is
//! honoured; keys that are not Roles Anywhere signing keys are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend_tpm::tss_esapi::structures::Public;
use backend_tpm::tss_esapi::traits::UnMarshall;
use backend_tpm::{KeyAuth, TpmError, TpmKeyFile};
use common::*;
use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use sigv4_core::{X509Key, X509KeyKind};
use test_support::tpm::{SIGN, signing_key_file};
use zeroize::Zeroizing;

const MESSAGE: &[u8] = b"AWS4-X509-ECDSA-SHA256\n20261204T120000Z\n...";

/// A signing key made by tpm2-tools, as a TSS2 PEM key file.
fn tools_key(
    dir: &std::path::Path,
    name: &str,
    algorithm: &str,
    attributes: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    signing_key_file(&tcti(), dir, name, algorithm, attributes, extra).0
}

/// Verifies `signature` over MESSAGE with the public area in the key file.
fn verify(pem: &std::path::Path, signature: &[u8]) {
    let file = TpmKeyFile::from_pem(&std::fs::read_to_string(pem).unwrap()).unwrap();
    let public = Public::unmarshall(&file.public[2..]).unwrap();
    let digest = Sha256::digest(MESSAGE);
    match public {
        Public::Rsa {
            unique, parameters, ..
        } => {
            let exponent = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(unique.value()),
                rsa::BigUint::from(exponent),
            )
            .unwrap();
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .unwrap();
        }
        Public::Ecc { unique, .. } => {
            let point = [&[0x04][..], unique.x().value(), unique.y().value()].concat();
            if unique.x().value().len() == 32 {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
                key.verify_prehash(&digest, &sig).unwrap();
            } else {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                let sig = p384::ecdsa::Signature::from_der(signature).unwrap();
                key.verify_prehash(&digest, &sig).unwrap();
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tpm2_tools_signing_keys_sign_roles_anywhere_requests() {
    let _one = serial();
    let dir = scratch("x509-kinds");
    for (name, algorithm, kind) in [
        ("rsa", "rsa2048", X509KeyKind::Rsa),
        ("p256", "ecc256", X509KeyKind::Ecdsa),
        ("p384", "ecc384", X509KeyKind::Ecdsa),
    ] {
        let pem = tools_key(&dir, name, algorithm, SIGN, &[]);
        let tpm = connect();
        let key = tpm.load_signing_pem_file(&pem, KeyAuth::none()).unwrap();
        assert_eq!(key.kind(), kind, "{name}");
        let signature = key.sign(MESSAGE).unwrap();
        verify(&pem, &signature);
        assert!(format!("{key:?}").contains("key file under"), "{key:?}");
        drop(key);
        tpm.disconnect();
    }
}

#[test]
fn a_password_is_needed_and_wrong_keys_are_refused() {
    let _one = serial();
    let dir = scratch("x509-password");
    let pem = tools_key(&dir, "pw", "ecc256", SIGN, &["-p", "open sesame"]);
    let tpm = connect();
    let key = tpm
        .load_signing_pem_file(
            &pem,
            KeyAuth::password(Zeroizing::new(b"open sesame".to_vec())),
        )
        .unwrap();
    verify(&pem, &key.sign(MESSAGE).unwrap());
    drop(key);
    let wrong = tpm
        .load_signing_pem_file(&pem, KeyAuth::password(Zeroizing::new(b"wrong".to_vec())))
        .unwrap();
    let err = wrong.try_sign(MESSAGE).unwrap_err();
    assert!(matches!(err, TpmError::WrongPassword { .. }), "{err:?}");
    assert!(!format!("{wrong:?}").contains("wrong\""), "{wrong:?}");
    drop(wrong);

    // A restricted signing key signs only what the TPM hashed: not a request.
    tpm.disconnect();
    let restricted = tools_key(
        &dir,
        "restricted",
        "ecc256:ecdsa-sha256:null",
        &format!("{SIGN}|restricted"),
        &[],
    );
    let tpm = connect();
    let err = tpm
        .load_signing_pem_file(&restricted, KeyAuth::none())
        .unwrap_err();
    assert!(err.to_string().contains("restricted"), "{err}");
    tpm.disconnect();
}

/// Runs `openssl ARGS` with the tpm2 provider against swtpm; panics with its stderr.
fn openssl_tpm2(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .env("TPM2OPENSSL_TCTI", tcti())
        .output()
        .expect("openssl (apt-get install openssl tpm2-openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keys_of_the_openssl_tpm2_provider_sign() {
    let _one = serial();
    let dir = scratch("x509-openssl");
    for (name, algorithm, option) in [("ec", "EC", "group:P-256"), ("rsa", "RSA", "bits:2048")] {
        let pem = dir.join(format!("{name}.pem"));
        test_support::tpm::flush_all(&tcti());
        openssl_tpm2(&[
            "genpkey",
            "-provider",
            "tpm2",
            "-algorithm",
            algorithm,
            "-pkeyopt",
            option,
            "-out",
            pem.to_str().unwrap(),
        ]);
        test_support::tpm::flush_all(&tcti());
        let tpm = connect();
        let key = tpm
            .load_signing_pem_file(&pem, KeyAuth::none())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        verify(&pem, &key.sign(MESSAGE).unwrap());
        drop(key);
        tpm.disconnect();
    }
}

#[test]
fn a_signing_key_at_a_persistent_handle_signs() {
    let _one = serial();
    let dir = scratch("x509-persistent");
    let pem = tools_key(&dir, "persist", "ecc384", SIGN, &[]);
    let file = TpmKeyFile::from_pem(&std::fs::read_to_string(&pem).unwrap()).unwrap();
    let handle = handle(40);
    let tpm = connect();
    tpm.persist_key_file(&file, handle, true).unwrap();
    let key = tpm
        .load_signing_persistent(handle, KeyAuth::none())
        .unwrap();
    verify(&pem, &key.sign(MESSAGE).unwrap());
    assert!(key.public_key().is_some());
    assert!(format!("{key:?}").contains("persistent"), "{key:?}");
    drop(key);
    tpm.evict_persistent(handle).unwrap();
    tpm.disconnect();
}

#[test]
fn a_key_under_a_persistent_storage_key_signs() {
    let _one = serial();
    let dir = scratch("x509-persistent-parent");
    let tcti = tcti();
    let path = |f: &str| dir.join(f).display().to_string();
    let parent = handle(41);
    let parent_text = format!("{parent:#010x}");
    // The standard storage primary, made persistent (as an SRK at 0x81000001 is).
    let _ = std::process::Command::new("tpm2_evictcontrol")
        .args(["-C", "o", "-c", &parent_text])
        .env("TPM2TOOLS_TCTI", &tcti)
        .output();
    test_support::tpm::flush_all(&tcti);
    test_support::tpm::create_primary(&tcti, &path("prim.ctx"));
    tpm2(
        &tcti,
        "tpm2_evictcontrol",
        &["-C", "o", "-c", &path("prim.ctx"), &parent_text],
    );
    test_support::tpm::flush_all(&tcti);
    let (public, private, pem) = (path("k.pub"), path("k.priv"), path("k.pem"));
    tpm2(
        &tcti,
        "tpm2_create",
        &[
            "-C",
            &parent_text,
            "-G",
            "rsa2048",
            "-a",
            SIGN,
            "-u",
            &public,
            "-r",
            &private,
        ],
    );
    test_support::tpm::flush_all(&tcti);
    tpm2(
        &tcti,
        "tpm2_encodeobject",
        &[
            "-C",
            &parent_text,
            "-u",
            &public,
            "-r",
            &private,
            "-o",
            &pem,
        ],
    );
    test_support::tpm::flush_all(&tcti);
    let file = TpmKeyFile::from_pem(&std::fs::read_to_string(&pem).unwrap()).unwrap();
    assert_eq!(
        file.parent, parent,
        "the key file names its persistent parent"
    );

    let tpm = connect();
    let key = tpm.load_signing_pem_file(&pem, KeyAuth::none()).unwrap();
    verify(std::path::Path::new(&pem), &key.sign(MESSAGE).unwrap());
    drop(key);
    tpm.evict_persistent(parent).unwrap();
    tpm.disconnect();
}

#[test]
fn a_signing_key_bound_to_pcrs_signs_only_under_its_pcr_policy() {
    let _one = serial();
    let dir = scratch("x509-pcr");
    let tcti = tcti();
    let path = |f: &str| dir.join(f).display().to_string();
    // The policy: PCR 16 (the debug PCR, free to extend) as it is now.
    test_support::tpm::flush_all(&tcti);
    tpm2(
        &tcti,
        "tpm2_createpolicy",
        &[
            "--policy-pcr",
            "-l",
            "sha256:16",
            "-L",
            &path("policy.digest"),
        ],
    );
    test_support::tpm::flush_all(&tcti);
    let policy = ["-L", &path("policy.digest")];
    let attributes = "fixedtpm|fixedparent|sensitivedataorigin|sign";
    let pem = tools_key(&dir, "pcr", "ecc256", attributes, &policy);
    let file = TpmKeyFile::from_pem(&std::fs::read_to_string(&pem).unwrap()).unwrap();
    let handle = handle(42);
    let pcrs = backend_tpm::PcrSelection::sha256(&[16]).unwrap();
    let tpm = connect();
    tpm.persist_key_file(&file, handle, true).unwrap();
    let key = tpm
        .load_signing_persistent(handle, KeyAuth::none().with_pcr_policy(pcrs.clone()))
        .unwrap();
    verify(&pem, &key.sign(MESSAGE).unwrap());
    drop(key);
    // Without the policy the key cannot sign at all.
    let no_policy = tpm
        .load_signing_persistent(handle, KeyAuth::none())
        .unwrap();
    assert!(no_policy.try_sign(MESSAGE).is_err());
    drop(no_policy);
    // After PCR 16 moves, the policy no longer holds.
    tpm.disconnect();
    tpm2(
        &tcti,
        "tpm2_pcrextend",
        &["16:sha256=0000000000000000000000000000000000000000000000000000000000000001"],
    );
    let tpm = connect();
    let key = tpm
        .load_signing_persistent(handle, KeyAuth::none().with_pcr_policy(pcrs))
        .unwrap();
    // A persistent key's policy is replayed with the PCRs' current values, so the TPM sees
    // a policy digest that is not the key's: a failed policy, typed.
    let err = key.try_sign(MESSAGE).unwrap_err();
    assert!(
        matches!(
            err,
            TpmError::PcrChanged { .. } | TpmError::PolicyFailed { .. }
        ),
        "{err:?}"
    );
    drop(key);
    tpm.evict_persistent(handle).unwrap();
    tpm.disconnect();
}
