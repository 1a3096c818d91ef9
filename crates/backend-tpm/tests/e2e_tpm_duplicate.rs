//! Duplication between two swtpm instances: a secret wrapped in software for TPM B's EK
//! imports on B only, and B then signs like the software key.

mod common;

use backend_tpm::{
    EkAlgorithm, EkPublic, KeyAuth, KeyKind, Tpm, TpmError, TpmKeyFile, wrap_for_tpm,
};
use common::*;
use sigv4_core::{KeyErrorKind, RootKey};
use zeroize::Zeroizing;

fn duplicate_to_b(algorithm: EkAlgorithm, password: Option<&str>) {
    let a = connect();
    let b = Tpm::connect(Some(&tcti_b())).expect("connect B");
    // What B publishes; the sender needs nothing else, and no TPM.
    let ek_b = EkPublic::from_tpm2b(
        &b.endorsement_key_public(algorithm)
            .expect("EK of B")
            .to_tpm2b()
            .expect("encode"),
    )
    .expect("parse EK");
    assert_eq!(
        ek_b.name().expect("name"),
        b.endorsement_key_name(algorithm).expect("name")
    );

    let password = password.map(|p| Zeroizing::new(p.as_bytes().to_vec()));
    let blob = wrap_for_tpm(&root_secret(), &ek_b, password.as_ref(), ACCESS_KEY_ID).expect("wrap");
    let pem = blob.to_pem();
    assert!(!pem.contains(SECRET));
    let blob = TpmKeyFile::from_pem(&pem).expect("parse blob");
    assert_eq!(blob.kind, KeyKind::Importable);
    assert_eq!(blob.parent, algorithm.handle());

    let err = a.import_duplicate(&blob).expect_err("A is not the target");
    assert!(matches!(err, TpmError::WrongTpm { .. }), "{err:?}");

    let imported = b.import_duplicate(&blob).expect("B imports");
    assert_eq!(imported.kind, KeyKind::Loadable);
    assert_eq!(imported.access_key_id(), Some(ACCESS_KEY_ID));
    let imported = TpmKeyFile::from_pem(&imported.to_pem()).expect("re-parse");
    let auth = password.map(KeyAuth::password).unwrap_or_default();
    let key = b.load_key_file(&imported, auth).expect("load on B");
    for day in ["20150830", "20301231"] {
        let d = date(day);
        assert_eq!(
            key.date_key(&d).expect("HMAC on B").as_bytes(),
            software_key().date_key(&d).expect("software").as_bytes()
        );
    }
    // The key file of B means nothing to A either.
    let err = a
        .load_key_file(&imported, KeyAuth::none())
        .expect_err("not A's key");
    assert!(matches!(err, TpmError::WrongTpm { .. }), "{err:?}");
    assert_eq!(sigv4_core::KeyError::from(err).kind(), KeyErrorKind::Device);
}

#[test]
fn blob_for_b_works_on_b_only_with_the_ecc_ek() {
    let _one = serial();
    duplicate_to_b(EkAlgorithm::EccP256, None);
}

#[test]
fn blob_for_b_works_on_b_only_with_the_rsa_ek_and_a_password() {
    let _one = serial();
    duplicate_to_b(EkAlgorithm::Rsa2048, Some("duplicated pin"));
}
