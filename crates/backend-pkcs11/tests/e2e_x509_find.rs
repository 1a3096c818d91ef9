//! Finding a Roles Anywhere key when the URI names no token, and a certificate's key by its
//! public key: a PIN is never tried on a token that does not hold what the URI names (even
//! the only token there), a trust store never holds a private key, and a key without a
//! `CKA_ID` is compared by its own public key, not by a public key object that has no id
//! either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use backend_pkcs11::uri::ObjectType;
use backend_pkcs11::{Error, Pkcs11Uri, Pkcs11X509Key};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use sigv4_core::X509Key;
use test_support::softhsm::{TestToken, USER_PIN};

use common::*;

/// Set in the child process of the lone-token test (its own `SOFTHSM2_CONF`).
const LONE_CHILD: &str = "KEYHOLD_TEST_LONE_TOKEN_CHILD";

#[test]
fn a_uri_naming_no_token_never_logs_in_to_a_lone_token_that_does_not_hold_its_object() {
    // A SoftHSM of this test's own, so that its token is the only one there: run in a child
    // process of this test binary, whose environment points SoftHSM at it.
    let dir = std::env::temp_dir().join(format!("keyhold-lone-token-{}", std::process::id()));
    let conf = test_support::softhsm::private_conf(&dir);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lone_token_child", "--nocapture"])
        .env("SOFTHSM2_CONF", &conf)
        .env(LONE_CHILD, "1")
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && shown.contains("1 passed"),
        "{shown}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The lone-token test's half that runs in its child process.
#[test]
fn lone_token_child() {
    if std::env::var_os(LONE_CHILD).is_none() {
        return;
    }
    let token = TestToken::new("lone");
    let session = token.user_session();
    let public = keypair(&session, "held", b"h1", Some(P256), true);
    let spki = spki_of(&session, public, "p256");
    store_certificate(&session, "held", b"h1", certificate_with(spki));
    // Logged out, as the token is when keyhold comes: login state is the whole process's.
    session.logout().unwrap();
    drop(session);
    let slots = token.ctx.get_slots_with_initialized_token().unwrap();
    assert_eq!(slots.len(), 1, "the token is the only one");
    let count_low = || {
        token
            .ctx
            .get_token_info(token.slot())
            .unwrap()
            .user_pin_count_low()
    };
    assert!(!count_low());
    // A URI naming no token, with a wrong PIN (as if for another token): what it names is
    // not on the lone token, so that token is not the one and the PIN is not tried there.
    let no_token = |object: &str, object_type: ObjectType| {
        let mut uri = uri(&token, object, object_type);
        uri.token = None;
        uri.pin_value = Some("not-this-tokens-pin".into());
        uri
    };
    for object_type in [ObjectType::Private, ObjectType::Cert] {
        let err = Pkcs11X509Key::open(&no_token("absent", object_type), None).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::TokenNotFound { .. })
                && message.contains(&format!("'{}'", token.label))
                && message.contains("none of which holds it")
                && message.contains("object=absent"),
            "{message}"
        );
        assert!(!count_low(), "no C_Login was made: {object_type:?}");
    }
    // What SoftHSM does with a wrong PIN, seen the same way: the URI names what the token
    // holds, so the token is the one and its PIN is tried.
    let err = Pkcs11X509Key::open(&no_token("held", ObjectType::Private), None).unwrap_err();
    assert!(matches!(err, Error::PinIncorrect { .. }), "{err:?}");
    assert!(count_low(), "SoftHSM counts a failed C_Login");
    // And with its PIN, the key is found there and signs.
    let mut with_pin = no_token("held", ObjectType::Cert);
    with_pin.pin_value = Some(USER_PIN.into());
    let key = Pkcs11X509Key::open(&with_pin, None).unwrap();
    assert!(!count_low(), "a good login resets the count");
    // (Handles last while a session is open: SoftHSM dropped the first ones at logout.)
    let session = token.user_session();
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"held".to_vec()),
        ])
        .unwrap()[0];
    verify(&session, public, "p256", &key.sign(MESSAGE).unwrap());
}

/// p11-kit's trust module, a PKCS#11 module of the system's CA certificates.
fn trust_module() -> std::path::PathBuf {
    backend_pkcs11::find_module_file("p11-kit-trust.so")
        .expect("p11-kit's trust module (apt-get install p11-kit-modules)")
}

/// The label of a certificate in the trust store `module`.
fn a_trusted_certificate_label(module: &Path) -> String {
    let ctx = Pkcs11::new(module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    for slot in ctx.get_slots_with_token().unwrap() {
        let session = ctx.open_ro_session(slot).unwrap();
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
            .unwrap();
        if let Some(&certificate) = found.first() {
            match session
                .get_attributes(certificate, &[AttributeType::Label])
                .unwrap()
                .remove(0)
            {
                Attribute::Label(label) => return String::from_utf8(label).unwrap(),
                other => panic!("{other:?}"),
            }
        }
    }
    panic!("the trust store {} holds no certificate", module.display());
}

#[test]
fn a_trust_store_never_holds_a_private_key() {
    // A URI naming no token whose label is a CA certificate's in the trust store: the trust
    // store needs no login and shows no private key, so it holds no key of that name.
    let module = trust_module();
    let label = a_trusted_certificate_label(&module);
    for object_type in [ObjectType::Private, ObjectType::Cert] {
        let mut uri = Pkcs11Uri::default();
        uri.object = Some(label.clone());
        uri.object_type = Some(object_type);
        uri.module_path = Some(module.display().to_string());
        uri.pin_value = Some("a-pin-for-another-token".into());
        let err = Pkcs11X509Key::open(&uri, None).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::TokenNotFound { .. })
                && message.contains("none of which holds it"),
            "{object_type:?}: {message}"
        );
    }
}

#[test]
fn keys_without_a_cka_id_are_compared_by_their_own_public_key() {
    let token = TestToken::new("x509-noid");
    let session = token.user_session();
    // Two RSA pairs without an id (a decoy made first), and a certificate of the second one
    // with an id of its own: the key is found by its own modulus and exponent, not by the
    // first public key object without an id.
    keypair(&session, "decoy", b"", None, true);
    let public = keypair(&session, "rsa", b"", None, true);
    store_certificate(
        &session,
        "rsa-cert",
        b"rsa-cert-id",
        certificate_with(spki_of(&session, public, "rsa")),
    );
    let key = Pkcs11X509Key::open(&uri(&token, "rsa-cert", ObjectType::Cert), None).unwrap();
    verify(&session, public, "rsa", &key.sign(MESSAGE).unwrap());

    // An EC private key shows no point of its own (SoftHSM's doesn't), and without an id
    // nothing pairs it with a public key object: not found, rather than guessed.
    let ec_public = keypair(&session, "ec", b"", Some(P256), true);
    store_certificate(
        &session,
        "ec-cert",
        b"ec-cert-id",
        certificate_with(spki_of(&session, ec_public, "p256")),
    );
    let err = Pkcs11X509Key::open(&uri(&token, "ec-cert", ObjectType::Cert), None).unwrap_err();
    assert!(
        matches!(err, Error::KeyNotFound { .. })
            && err
                .to_string()
                .contains("nor one whose public key is the certificate's"),
        "{err}"
    );
    // With an id of their own (another than the certificate's), EC keys are paired with
    // their public key object and found.
    let paired = keypair(&session, "ec-paired", b"ec-key-id", Some(P256), true);
    store_certificate(
        &session,
        "ec-paired-cert",
        b"ec-paired-cert-id",
        certificate_with(spki_of(&session, paired, "p256")),
    );
    let key = Pkcs11X509Key::open(&uri(&token, "ec-paired-cert", ObjectType::Cert), None).unwrap();
    verify(&session, paired, "p256", &key.sign(MESSAGE).unwrap());
}
