//! The imported secret cannot be read back: not through C_GetAttributeValue, not wrapped
//! under any wrapping key, and not by `pkcs11-tool --read-object`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use std::process::Command;

use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN, module_path};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;

fn imported_key(token: &TestToken, session: &Session) -> ObjectHandle {
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"aws".to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    keys[0]
}

#[test]
fn get_attribute_value_returns_no_value() {
    let _serial = common::serial();
    let token = TestToken::new("getattr");
    let session = token.user_session();
    let key = imported_key(&token, &session);

    // cryptoki 0.12 answers Ok and leaves the sensitive attribute out of the result.
    let attrs = session
        .get_attributes(key, &[AttributeType::Value, AttributeType::Label])
        .unwrap();
    assert_eq!(attrs, vec![Attribute::Label(b"aws".to_vec())]);
    // The token itself says why.
    let info = session
        .get_attribute_info(key, &[AttributeType::Value])
        .unwrap();
    assert!(matches!(info[..], [AttributeInfo::Sensitive]), "{info:?}");
    // And the flags cannot be turned back: the key is not modifiable at all (and PKCS#11
    // lets sensitive only go on, extractable only off).
    for attr in [Attribute::Sensitive(false), Attribute::Extractable(true)] {
        let err = session.update_attributes(key, &[attr]).unwrap_err();
        assert!(
            matches!(
                err,
                CkError::Pkcs11(RvError::AttributeReadOnly | RvError::ActionProhibited, _)
            ),
            "{err:?}"
        );
    }
}

#[test]
fn no_wrapping_key_can_wrap_it() {
    let _serial = common::serial();
    let token = TestToken::new("wrap");
    let session = token.user_session();
    let key = imported_key(&token, &session);

    let wrapping = |mechanism: &Mechanism| {
        session
            .generate_key(mechanism, &[Attribute::Token(false), Attribute::Wrap(true)])
            .unwrap()
    };
    let aes = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    let des = wrapping(&Mechanism::DesKeyGen);
    let des3 = wrapping(&Mechanism::Des3KeyGen);
    let (rsa, _private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::Wrap(true),
            ],
            &[Attribute::Token(false)],
        )
        .unwrap();
    // SoftHSM wraps with OAEP over SHA-1 only.
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    );
    let attempts = [
        (aes, Mechanism::AesKeyWrap),
        (aes, Mechanism::AesKeyWrapPad),
        (aes, Mechanism::AesCbc([0; 16])),
        (aes, Mechanism::AesCbcPad([0; 16])),
        (aes, Mechanism::AesEcb),
        (des, Mechanism::DesCbc([0; 8])),
        (des, Mechanism::DesCbcPad([0; 8])),
        (des, Mechanism::DesEcb),
        (des3, Mechanism::Des3Cbc([0; 8])),
        (des3, Mechanism::Des3CbcPad([0; 8])),
        (des3, Mechanism::Des3Ecb),
        (rsa, Mechanism::RsaPkcs),
        (rsa, Mechanism::RsaPkcsOaep(oaep)),
    ];
    // Every mechanism the token offers for wrapping is among the attempts.
    let slot = token.slot();
    let offered: Vec<MechanismType> = token
        .ctx
        .get_mechanism_list(slot)
        .unwrap()
        .into_iter()
        .filter(|m| token.ctx.get_mechanism_info(slot, *m).unwrap().wrap())
        .collect();
    for mechanism in &offered {
        assert!(
            attempts
                .iter()
                .any(|(_, m)| m.mechanism_type() == *mechanism),
            "the token wraps with {mechanism}, which this test does not try"
        );
    }
    for (wrapping_key, mechanism) in attempts {
        let err = session
            .wrap_key(&mechanism, wrapping_key, key)
            .expect_err("the key must not be wrappable");
        // Where the token wraps with this mechanism at all, it refuses because of the key.
        let because_of_the_key = matches!(err, CkError::Pkcs11(RvError::KeyUnextractable, _));
        assert!(
            because_of_the_key || !offered.contains(&mechanism.mechanism_type()),
            "{mechanism:?}: {err:?}"
        );
    }
    // The same wrapping key does wrap an extractable key, so the refusals above are the key's.
    let extractable = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Extractable(true),
            Attribute::Value(vec![7; 32]),
        ])
        .unwrap();
    session
        .wrap_key(&Mechanism::AesKeyWrapPad, aes, extractable)
        .unwrap();
}

#[test]
fn pkcs11_tool_cannot_read_it() {
    let _serial = common::serial();
    let token = TestToken::new("p11tool");
    let session = token.user_session();
    imported_key(&token, &session);

    // The PIN reaches pkcs11-tool through its environment (OpenSC's `env:` form), not argv.
    let run = |object_type: &str| {
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(module_path())
            .args([
                "--token-label",
                &token.label,
                "--login",
                "--pin",
                "env:KEYHOLD_TEST_PIN",
            ])
            .args(["--read-object", "--type", object_type, "--label", "aws"])
            .env("KEYHOLD_TEST_PIN", USER_PIN)
            .output()
            .expect("pkcs11-tool runs (Debian package opensc)")
    };
    let out = run("secrkey");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pkcs11-tool read the key: {out:?}");
    assert!(
        out.stdout.is_empty(),
        "pkcs11-tool printed {:?}",
        out.stdout
    );
    assert!(stderr.contains("CKR_ATTRIBUTE_SENSITIVE"), "{stderr}");
    // The same command reads the (non-secret) access key id next to it: the PIN worked.
    let out = run("data");
    assert!(out.status.success(), "{out:?}");
    let record = String::from_utf8(out.stdout).unwrap();
    assert!(
        record.starts_with(&format!("{SUITE_ACCESS_KEY_ID};check=")),
        "{record}"
    );
}
