//! Roles Anywhere private keys in SoftHSM (`Pkcs11X509Key`): made in the token, named by
//! `type=private` or by their certificate (`type=cert`, same CKA_ID); their signatures
//! verify with the public key the token holds; a logout by another session is repaired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend_pkcs11::Pkcs11X509Key;
use backend_pkcs11::uri::ObjectType;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use sha2::{Digest, Sha256};
use sigv4_core::{X509Key, X509KeyKind};
use test_support::softhsm::TestToken;

use common::*;

#[test]
fn private_keys_made_in_the_token_sign_and_their_certificate_names_them() {
    let token = TestToken::new("x509");
    let session = token.user_session();
    for (kind, params) in [("rsa", None), ("p256", Some(P256)), ("p384", Some(P384))] {
        let id = kind.as_bytes();
        let public = keypair(&session, kind, id, params, true);
        let key = Pkcs11X509Key::open(&uri(&token, kind, ObjectType::Private), None).unwrap();
        let expected = if kind == "rsa" {
            X509KeyKind::Rsa
        } else {
            X509KeyKind::Ecdsa
        };
        assert_eq!(key.kind(), expected);
        assert!(
            key.certificate_der().is_none(),
            "{kind}: no certificate yet"
        );
        verify(&session, public, kind, &key.sign(MESSAGE).unwrap());
        assert!(!format!("{key:?}").contains("user-pin"), "{key:?}");

        // A certificate object with the key's CKA_ID (its bytes are the token's to keep;
        // the backend hands them back as they are): the key is found through it.
        let certificate = format!("certificate of {kind}").into_bytes();
        session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Label(format!("{kind}-cert").into_bytes()),
                Attribute::Id(id.to_vec()),
                Attribute::Subject(vec![0x30, 0x00]),
                Attribute::Value(certificate.clone()),
            ])
            .unwrap();
        let by_cert = Pkcs11X509Key::open(
            &uri(&token, &format!("{kind}-cert"), ObjectType::Cert),
            None,
        )
        .unwrap();
        assert_eq!(by_cert.certificate_der(), Some(&certificate[..]));
        verify(&session, public, kind, &by_cert.sign(MESSAGE).unwrap());
        let by_key = Pkcs11X509Key::open(&uri(&token, kind, ObjectType::Private), None).unwrap();
        assert_eq!(by_key.certificate_der(), Some(&certificate[..]));
    }
}

#[test]
fn a_logout_by_another_session_is_repaired_and_unsuitable_keys_are_refused() {
    let token = TestToken::new("x509-repair");
    let session = token.user_session();
    let public = keypair(&session, "ec", b"1", Some(P256), true);
    let key = Pkcs11X509Key::open(&uri(&token, "ec", ObjectType::Private), None).unwrap();
    verify(&session, public, "p256", &key.sign(MESSAGE).unwrap());
    // Another session logs out: login state is the application's, so the key's session is
    // logged out too. Its next signature logs in again by itself.
    session.logout().unwrap();
    assert_eq!(key.repairs(), 0);
    let signature = key.sign(MESSAGE).unwrap();
    assert_eq!(key.repairs(), 1, "the logout was seen and repaired");
    verify(&token.user_session(), public, "p256", &signature);

    keypair(&token.user_session(), "nosign", b"2", Some(P256), false);
    let err = Pkcs11X509Key::open(&uri(&token, "nosign", ObjectType::Private), None).unwrap_err();
    assert!(err.to_string().contains("CKA_SIGN is false"), "{err}");
    let err = Pkcs11X509Key::open(&uri(&token, "missing", ObjectType::Private), None).unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
    let err = Pkcs11X509Key::open(&uri(&token, "ec", ObjectType::SecretKey), None).unwrap_err();
    assert!(err.to_string().contains("type=private"), "{err}");
}

#[test]
fn key_pairs_made_by_keyhold_are_sensitive_and_never_extractable_as_the_token_says() {
    let token = TestToken::new("x509-keygen");
    for (object, key_type) in [
        ("ec", sigv4_core::X509KeyType::P384),
        ("rsa", sigv4_core::X509KeyType::Rsa2048),
        ("rsa3072", sigv4_core::X509KeyType::Rsa3072),
        ("rsa4096", sigv4_core::X509KeyType::Rsa4096),
    ] {
        let made = backend_pkcs11::generate_key_pair(&token.uri(object), None, key_type).unwrap();
        assert_eq!(made.object_type, Some(ObjectType::Private));
        assert!(made.pin_value.is_none() && made.id.is_some());
        // Asked of the token itself.
        let session = token.user_session();
        let private = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(object.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(private.len(), 1);
        let attributes = session
            .get_attributes(
                private[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Decrypt,
                    AttributeType::Sign,
                    AttributeType::Local,
                ],
            )
            .unwrap();
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(v) | Attribute::Sign(v) | Attribute::Local(v) => {
                    assert!(v, "{object}: {attribute:?}")
                }
                Attribute::Extractable(v) | Attribute::Decrypt(v) => {
                    assert!(!v, "{object}: {attribute:?}")
                }
                other => panic!("{other:?}"),
            }
        }
        // The key signs, and the public half the backend reports verifies it.
        let mut uri = made.clone();
        uri.pin_value = token.uri(object).pin_value;
        let key = Pkcs11X509Key::open(&uri, None).unwrap();
        assert!(key.public_key().is_some(), "{object}");
        let public = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(object.as_bytes().to_vec()),
            ])
            .unwrap()[0];
        let kind = if object.starts_with("rsa") {
            "rsa"
        } else {
            "p384"
        };
        verify(&session, public, kind, &key.sign(MESSAGE).unwrap());
        // Never over an existing pair.
        let err =
            backend_pkcs11::generate_key_pair(&token.uri(object), None, key_type).unwrap_err();
        assert!(err.to_string().contains("already holds"), "{err}");
    }
}

#[test]
fn keys_that_always_authenticate_get_the_context_specific_login() {
    let token = TestToken::new("x509-always");
    let session = token.user_session();
    let (public, _) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Label(b"always".to_vec()),
                Attribute::Id(b"aa".to_vec()),
                Attribute::Verify(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Label(b"always".to_vec()),
                Attribute::Id(b"aa".to_vec()),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::AlwaysAuthenticate(true),
            ],
        )
        .unwrap();
    // The token demands the login: a plain C_SignInit + C_Sign is refused.
    let private = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"always".to_vec()),
        ])
        .unwrap()[0];
    let plain = session.sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE);
    assert!(
        plain.is_err(),
        "SoftHSM enforces CKA_ALWAYS_AUTHENTICATE: {plain:?}"
    );
    let key = Pkcs11X509Key::open(&uri(&token, "always", ObjectType::Private), None).unwrap();
    // Every signature logs in again (the login counts for one operation).
    verify(&session, public, "rsa", &key.sign(MESSAGE).unwrap());
    verify(&session, public, "rsa", &key.sign(MESSAGE).unwrap());

    // Without a PIN it cannot be used at all: said at open, not at the first signature.
    let mut no_pin = uri(&token, "always", ObjectType::Private);
    no_pin.pin_value = None;
    let err = Pkcs11X509Key::open(&no_pin, None).unwrap_err();
    assert!(
        matches!(err, backend_pkcs11::Error::PinRequired { .. }),
        "{err:?}"
    );
}

#[test]
fn a_certificate_whose_cka_id_differs_finds_its_key_by_public_key() {
    let token = TestToken::new("x509-pubmatch");
    let session = token.user_session();
    for (kind, params) in [("rsa", None), ("p256", Some(P256))] {
        // The key pair with one id, the certificate with another (as some tools write them),
        // and a decoy key pair with the certificate's id on no other token object.
        let public = keypair(
            &session,
            kind,
            format!("key-{kind}").as_bytes(),
            params,
            true,
        );
        keypair(&session, &format!("{kind}-other"), b"other", params, true);
        let label = format!("{kind}-cert");
        store_certificate(
            &session,
            &label,
            b"cert-id",
            certificate_with(spki_of(&session, public, kind)),
        );
        let key = Pkcs11X509Key::open(&uri(&token, &label, ObjectType::Cert), None).unwrap();
        assert!(key.certificate_der().is_some());
        verify(&session, public, kind, &key.sign(MESSAGE).unwrap());
        session
            .destroy_object(
                session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::CERTIFICATE),
                        Attribute::Label(label.clone().into_bytes()),
                    ])
                    .unwrap()[0],
            )
            .unwrap();
    }
    // A certificate of a key the token does not hold: named as such.
    let foreign = TestToken::new("x509-foreign");
    let foreign_session = foreign.user_session();
    let foreign_public = keypair(&foreign_session, "elsewhere", b"e", Some(P256), true);
    let spki = spki_of(&foreign_session, foreign_public, "p256");
    store_certificate(&session, "orphan", b"orphan-id", certificate_with(spki));
    let err = Pkcs11X509Key::open(&uri(&token, "orphan", ObjectType::Cert), None).unwrap_err();
    assert!(
        matches!(err, backend_pkcs11::Error::KeyNotFound { .. })
            && err
                .to_string()
                .contains("nor one whose public key is the certificate's"),
        "{err}"
    );
}

#[test]
fn a_uri_naming_no_token_picks_the_one_holding_the_certificate() {
    // Many tokens share the test directory: a URI with no token= names the one holding a
    // certificate of this label, and says which ones when several do.
    let token = TestToken::new("x509-holder");
    let session = token.user_session();
    let public = keypair(&session, "held", b"h1", Some(P256), true);
    let label = format!("held-{}", token.label);
    store_certificate(
        &session,
        &label,
        b"h1",
        certificate_with(spki_of(&session, public, "p256")),
    );
    let mut no_token = uri(&token, &label, ObjectType::Cert);
    no_token.token = None;
    let key = Pkcs11X509Key::open(&no_token, None).unwrap();
    verify(&session, public, "p256", &key.sign(MESSAGE).unwrap());

    let twin = TestToken::new("x509-twin");
    let twin_session = twin.user_session();
    let twin_public = keypair(&twin_session, "held", b"h1", Some(P256), true);
    let spki = spki_of(&twin_session, twin_public, "p256");
    store_certificate(&twin_session, &label, b"h1", certificate_with(spki));
    let err = Pkcs11X509Key::open(&no_token, None).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, backend_pkcs11::Error::AmbiguousToken { .. })
            && message.contains(&format!("'{}'", token.label))
            && message.contains(&format!("'{}'", twin.label))
            && message.contains("token="),
        "{message}"
    );
}

#[test]
fn an_ec_key_that_always_authenticates_is_refused_at_open_where_the_token_lacks_ecdsa_sha256() {
    let token = TestToken::new("x509-always-ec");
    let session = token.user_session();
    let template = |private: bool| {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Label(b"always-ec".to_vec()),
            Attribute::Id(b"ae".to_vec()),
        ];
        if private {
            t.extend([
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
                Attribute::AlwaysAuthenticate(true),
            ]);
        } else {
            t.extend([Attribute::Verify(true), Attribute::EcParams(P256.to_vec())]);
        }
        t
    };
    let (_, private) = session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &template(false), &template(true))
        .unwrap();
    let digest = Sha256::digest(MESSAGE);
    // SoftHSM enforces the login, and CKM_ECDSA is single-part: with cryptoki 0.12's calls the
    // login can precede neither C_SignInit (nothing to log in for yet) nor a C_Sign (its
    // Session::sign starts with a C_SignInit of its own, refused while one is active).
    assert!(session.sign(&Mechanism::Ecdsa, private, &digest).is_err());
    let pin = secrecy::SecretString::from(test_support::softhsm::USER_PIN);
    let early = session.login(cryptoki::session::UserType::ContextSpecific, Some(&pin));
    assert!(early.is_err(), "{early:?}");
    session.sign_init(&Mechanism::Ecdsa, private).unwrap();
    session
        .login(cryptoki::session::UserType::ContextSpecific, Some(&pin))
        .unwrap();
    assert!(session.sign(&Mechanism::Ecdsa, private, &digest).is_err());
    let mechanisms = token.ctx.get_mechanism_list(token.slot()).unwrap();
    assert!(!mechanisms.contains(&cryptoki::mechanism::MechanismType::ECDSA_SHA256));

    // So keyhold says so when the key opens, not at the first signature.
    let err =
        Pkcs11X509Key::open(&uri(&token, "always-ec", ObjectType::Private), None).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, backend_pkcs11::Error::KeyUnsuitable { .. })
            && message.contains("CKA_ALWAYS_AUTHENTICATE")
            && message.contains("CKM_ECDSA_SHA256"),
        "{message}"
    );
}
