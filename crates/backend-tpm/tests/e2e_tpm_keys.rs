//! Import and use on swtpm: key files and persistent handles, passwords, PCR policies, custom
//! policies, and each refusal as its own error. kDate must equal the software key's.

mod common;

use std::sync::Arc;

use backend_tpm::tss_esapi::{self, Context, interface_types::session_handles::PolicySession};
use backend_tpm::{
    ImportOptions, KeyAuth, PcrSelection, PolicyAuthorizer, SessionEncryption, Tpm, TpmError,
    TpmKeyFile,
};
use common::*;
use sigv4_core::{KeyErrorKind, RootKey};
use zeroize::Zeroizing;

fn assert_signs_like_software(key: &dyn RootKey) {
    for day in ["20150830", "20120215", "20991231"] {
        let d = date(day);
        assert_eq!(
            key.date_key(&d).expect("TPM2_HMAC").as_bytes(),
            software_key().date_key(&d).expect("software").as_bytes(),
            "kDate for {day}"
        );
    }
}

fn password(text: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(text.as_bytes().to_vec())
}

#[test]
fn key_file_round_trips_through_pem_and_signs_like_software() {
    let _one = serial();
    let tpm = connect();
    let imported = tpm
        .import(&root_secret(), &ImportOptions::new(ACCESS_KEY_ID))
        .expect("import");
    let pem = imported.key_file.to_pem();
    assert!(pem.starts_with("aws_access_key_id = AKIDEXAMPLE\n-----BEGIN TSS2 PRIVATE KEY-----\n"));
    assert!(!pem.contains(SECRET));
    let file = TpmKeyFile::from_pem(&pem).expect("parse our own PEM");
    assert!(file.empty_auth);
    assert_eq!(file.access_key_id(), Some(ACCESS_KEY_ID));
    let key = tpm.load_key_file(&file, KeyAuth::none()).expect("load");
    assert_eq!(key.access_key_id(), Some(ACCESS_KEY_ID));
    assert_signs_like_software(&key);
}

#[test]
fn cleartext_sessions_sign_the_same() {
    let _one = serial();
    let tpm = connect_cleartext();
    let imported = tpm
        .import(&root_secret(), &ImportOptions::new(ACCESS_KEY_ID))
        .expect("import");
    let key = tpm
        .load_key_file(&imported.key_file, KeyAuth::none())
        .expect("load");
    assert_signs_like_software(&key);
}

#[test]
fn persistent_key_with_password_signs_and_refuses_a_wrong_password() {
    let _one = serial();
    let handle = handle(1);
    evict_if_present(&tcti(), handle);
    let tpm = connect();
    let options = ImportOptions::new(ACCESS_KEY_ID)
        .password(password("correct horse"))
        .persist_at(handle);
    let imported = tpm.import(&root_secret(), &options).expect("import");
    assert_eq!(imported.persistent_handle, Some(handle));
    assert!(!imported.key_file.empty_auth);

    let key = tpm
        .load_persistent(handle, KeyAuth::password(password("correct horse")))
        .expect("load persistent");
    assert_signs_like_software(&key);
    let debug = format!(
        "{key:?} {options:?} {:?}",
        KeyAuth::password(password("correct horse"))
    );
    assert!(!debug.contains("correct horse"), "{debug}");

    let wrong = tpm
        .load_persistent(handle, KeyAuth::password(password("wrong")))
        .expect("load persistent");
    let err = wrong
        .date_key(&date("20150830"))
        .expect_err("wrong password");
    assert_eq!(err.kind(), KeyErrorKind::Denied);
    let text = test_support::chain(&err);
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("wrong"), "{text}");

    let err = tpm
        .import(&root_secret(), &options)
        .expect_err("handle taken");
    assert!(matches!(err, TpmError::HandleInUse { .. }), "{err:?}");
    tpm.evict_persistent(handle).expect("evict");
    let err = tpm
        .load_persistent(handle, KeyAuth::none())
        .expect_err("evicted");
    assert!(matches!(err, TpmError::KeyNotFound { .. }), "{err:?}");
    // Let the next test start with no failed-authorization count.
    tpm.disconnect();
    tpm2(&tcti(), "tpm2_dictionarylockout", &["-c"]);
}

#[test]
fn pcr_policy_key_stops_working_when_the_pcr_changes() {
    let _one = serial();
    let tpm = connect();
    let pcrs = PcrSelection::sha256(&[16]).expect("pcr 16");
    let options = ImportOptions::new(ACCESS_KEY_ID).pcr_policy(pcrs);
    let imported = tpm.import(&root_secret(), &options).expect("import");
    assert_eq!(imported.key_file.policy.len(), 1);
    let file = TpmKeyFile::from_pem(&imported.key_file.to_pem()).expect("parse");
    let key = tpm.load_key_file(&file, KeyAuth::none()).expect("load");
    assert_signs_like_software(&key);

    tpm.disconnect();
    tpm2(
        &tcti(),
        "tpm2_pcrextend",
        &["16:sha256=0000000000000000000000000000000000000000000000000000000000000001"],
    );

    let err = key.date_key(&date("20150830")).expect_err("PCR 16 moved");
    assert_eq!(err.kind(), KeyErrorKind::Denied);
    let text = test_support::chain(&err);
    assert!(text.contains("PCRs [16]"), "{text}");
}

#[test]
fn pcr_and_password_policy_needs_both() {
    let _one = serial();
    let handle = handle(2);
    evict_if_present(&tcti(), handle);
    let tpm = connect();
    let pcrs = PcrSelection::sha256(&[23, 16]).expect("pcrs");
    let options = ImportOptions::new(ACCESS_KEY_ID)
        .pcr_policy(pcrs.clone())
        .password(password("pin"))
        .persist_at(handle);
    let imported = tpm.import(&root_secret(), &options).expect("import");
    assert_eq!(imported.key_file.policy.len(), 2);

    let from_file = tpm
        .load_key_file(&imported.key_file, KeyAuth::password(password("pin")))
        .expect("load file");
    assert_signs_like_software(&from_file);
    let persistent = tpm
        .load_persistent(
            handle,
            KeyAuth::password(password("pin")).with_pcr_policy(pcrs),
        )
        .expect("load persistent");
    assert_signs_like_software(&persistent);
    // The password alone does not pass: userWithAuth is clear.
    let password_only = tpm
        .load_persistent(handle, KeyAuth::password(password("pin")))
        .expect("load persistent");
    let err = password_only
        .date_key(&date("20150830"))
        .expect_err("policy required");
    assert_eq!(err.kind(), KeyErrorKind::Denied, "{err}");
    let text = test_support::chain(&err);
    assert!(text.contains("only its policy"), "{text}");
    tpm.evict_persistent(handle).expect("evict");
}

/// PCR 23 plus auth value, run by the caller's own code (the custom-session seam).
#[derive(Debug)]
struct Pcr23AndPassword;

impl PolicyAuthorizer for Pcr23AndPassword {
    fn authorize(&self, ctx: &mut Context, session: PolicySession) -> Result<(), tss_esapi::Error> {
        use tss_esapi::interface_types::algorithm::HashingAlgorithm;
        use tss_esapi::structures::{Digest, PcrSelectionList, PcrSlot};
        let pcrs = PcrSelectionList::builder()
            .with_selection(HashingAlgorithm::Sha256, &[PcrSlot::Slot23])
            .build()?;
        ctx.execute_without_session(|ctx| {
            ctx.policy_pcr(session, Digest::default(), pcrs)?;
            ctx.policy_auth_value(session)
        })
    }
}

#[test]
fn custom_policy_session_authorizes_a_key() {
    let _one = serial();
    let tpm = connect();
    let options = ImportOptions::new(ACCESS_KEY_ID)
        .pcr_policy(PcrSelection::sha256(&[23]).expect("pcr"))
        .password(password("pin"));
    let imported = tpm.import(&root_secret(), &options).expect("import");
    let auth = KeyAuth::password(password("pin")).with_custom_policy(Arc::new(Pcr23AndPassword));
    let key = tpm.load_key_file(&imported.key_file, auth).expect("load");
    assert_signs_like_software(&key);
}

#[test]
fn keys_of_the_wrong_type_or_attributes_are_refused() {
    let _one = serial();
    let dir = scratch("unsuitable");
    let tcti = tcti();
    let path = |f: &str| dir.join(f).display().to_string();
    tpm2(
        &tcti,
        "tpm2_createprimary",
        &["-C", "o", "-G", "ecc", "-c", &path("prim.ctx")],
    );
    // An RSA signing key: wrong type.
    tpm2(
        &tcti,
        "tpm2_create",
        &[
            "-C",
            &path("prim.ctx"),
            "-G",
            "rsa",
            "-u",
            &path("rsa.pub"),
            "-r",
            &path("rsa.priv"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    tpm2(
        &tcti,
        "tpm2_encodeobject",
        &[
            "-C",
            &path("prim.ctx"),
            "-u",
            &path("rsa.pub"),
            "-r",
            &path("rsa.priv"),
            "-o",
            &path("rsa.pem"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    // A restricted HMAC key: wrong attributes.
    tpm2(
        &tcti,
        "tpm2_create",
        &[
            "-C",
            &path("prim.ctx"),
            "-G",
            "hmac",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|restricted",
            "-u",
            &path("r.pub"),
            "-r",
            &path("r.priv"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);
    tpm2(
        &tcti,
        "tpm2_encodeobject",
        &[
            "-C",
            &path("prim.ctx"),
            "-u",
            &path("r.pub"),
            "-r",
            &path("r.priv"),
            "-o",
            &path("r.pem"),
        ],
    );
    tpm2(&tcti, "tpm2_flushcontext", &["-t"]);

    let tpm = connect();
    for (file, expected) in [("rsa.pem", "keyedhash"), ("r.pem", "restricted")] {
        let err = tpm
            .load_pem_file(dir.join(file), KeyAuth::none())
            .expect_err(file);
        assert!(matches!(err, TpmError::UnsuitableKey { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
        assert_eq!(
            sigv4_core::KeyError::from(err).kind(),
            KeyErrorKind::Unsuitable
        );
    }
}

#[test]
fn unreachable_tpm_is_its_own_error() {
    // Nothing listens on port 9 of loopback (discard is never enabled in test machines).
    let err = Tpm::connect(Some("swtpm:host=127.0.0.1,port=9")).expect_err("no TPM there");
    assert!(matches!(err, TpmError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_eq!(
        sigv4_core::KeyError::from(err).kind(),
        KeyErrorKind::Unavailable
    );
    let err = Tpm::connect(Some("carrier-pigeon:")).expect_err("bad TCTI");
    assert!(matches!(err, TpmError::InvalidTcti { .. }), "{err:?}");
}

#[test]
fn pinned_ek_name_is_enforced() {
    let _one = serial();
    let ek = backend_tpm::EkAlgorithm::EccP256;
    let name_a = connect().endorsement_key_name(ek).expect("EK name of A");
    let name_b = Tpm::connect(Some(&tcti_b()))
        .expect("connect B")
        .endorsement_key_name(ek)
        .expect("EK name of B");
    assert_ne!(name_a, name_b);
    let pinned = |name: &Vec<u8>| SessionEncryption::SaltedWithEk {
        ek,
        pinned_name: Some(name.clone()),
    };
    Tpm::connect_with(Some(&tcti()), pinned(&name_a)).expect("right EK");
    let err = Tpm::connect_with(Some(&tcti()), pinned(&name_b)).expect_err("wrong EK");
    assert!(matches!(err, TpmError::EkNameMismatch { .. }), "{err:?}");
    assert_eq!(sigv4_core::KeyError::from(err).kind(), KeyErrorKind::Denied);
}
