//! Import on a real SoftHSM token: the attributes the key gets, the access key id beside it,
//! refusing to overwrite, and replacing when asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use backend_pkcs11::{
    ACCESS_KEY_ID_APPLICATION, Error, ImportOptions, OpenOptions, Pkcs11RootKey, import_key,
};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN, root_secret};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, SoftwareRootKey};

// SoftHSM refuses HMAC-SHA256 keys under 32 bytes; real secrets are 40 characters.
const OLD_SECRET: &str = "old/secret/old/secret/old/secret/old/secr";
const NEW_SECRET: &str = "new/secret/new/secret/new/secret/new/secr";

/// The hex check value of `secret`'s key: HMAC-SHA256("AWS4" + secret, "keyhold key check
/// value"), first eight bytes.
fn key_check(secret: &str) -> String {
    use hmac::Mac as _;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(format!("AWS4{secret}").as_bytes()).unwrap();
    mac.update(b"keyhold key check value");
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn date() -> DateStamp {
    DateStamp::from_date(time::macros::date!(2015 - 08 - 30))
}

#[test]
fn imported_key_has_exactly_the_attributes_asked_for() {
    let _serial = common::serial();
    let token = TestToken::new("attrs");
    let mut uri = token.uri("aws-prod");
    uri.id = Some(vec![0x01, 0xab]);
    import_key(
        &uri,
        &root_secret(SUITE_SECRET),
        SUITE_ACCESS_KEY_ID,
        ImportOptions::new(),
    )
    .unwrap();

    let session = token.user_session();
    let keys = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let wanted = [
        AttributeType::KeyType,
        AttributeType::Token,
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::Sign,
        AttributeType::Verify,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Wrap,
        AttributeType::Unwrap,
        AttributeType::Derive,
        AttributeType::Modifiable,
        AttributeType::Copyable,
        AttributeType::Label,
        AttributeType::Id,
    ];
    let attrs = session.get_attributes(keys[0], &wanted).unwrap();
    let expected = vec![
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Label(b"aws-prod".to_vec()),
        Attribute::Id(vec![0x01, 0xab]),
    ];
    assert_eq!(attrs, expected);
    // The token itself refuses to switch a usage on, or to copy the key with other
    // attributes: the classic route to a secret key's value.
    for usage in [
        Attribute::Derive(true),
        Attribute::Encrypt(true),
        Attribute::Wrap(true),
        Attribute::Extractable(true),
        Attribute::Sensitive(false),
    ] {
        let refused = session.update_attributes(keys[0], std::slice::from_ref(&usage));
        assert!(refused.is_err(), "the token let {usage:?} through");
    }
    assert!(
        session
            .copy_object(keys[0], &[Attribute::Derive(true)])
            .is_err()
    );
    let after = session.get_attributes(keys[0], &wanted).unwrap();
    assert_eq!(after, expected);

    // The access key id sits beside it, where the docs say.
    let data = session
        .find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(b"aws-prod".to_vec()),
        ])
        .unwrap();
    assert_eq!(data.len(), 1);
    let attrs = session
        .get_attributes(
            data[0],
            &[
                AttributeType::Application,
                AttributeType::Value,
                AttributeType::Private,
                AttributeType::Token,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::Application(ACCESS_KEY_ID_APPLICATION.as_bytes().to_vec()),
            // The access key id, the check value of the key it belongs to (eight bytes of
            // the key's HMAC of a fixed message that is no date), and its generation.
            Attribute::Value(
                format!(
                    "{SUITE_ACCESS_KEY_ID};check={};generation=1",
                    key_check(SUITE_SECRET)
                )
                .into_bytes()
            ),
            Attribute::Private(true),
            Attribute::Token(true),
        ]
    );
}

#[test]
fn the_returned_uri_alone_opens_the_key_and_it_computes_kdate() {
    let _serial = common::serial();
    let token = TestToken::new("roundtrip");
    let key_uri = token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    assert!(key_uri.pin_value.is_none(), "{key_uri:?}");
    let shown = key_uri.to_string();
    assert!(
        shown.contains("type=secret-key") && shown.contains("object=aws"),
        "{shown}"
    );

    let key = Pkcs11RootKey::open_with(
        &key_uri,
        OpenOptions::new().pin(SecretString::from(USER_PIN)),
    )
    .unwrap();
    assert_eq!(key.access_key_id(), SUITE_ACCESS_KEY_ID);
    let reference = SoftwareRootKey::from_secret_access_key(SUITE_SECRET);
    assert_eq!(
        key.date_key(&date()).unwrap().as_bytes(),
        reference.date_key(&date()).unwrap().as_bytes()
    );
    // The key's own URI opens it again.
    let again = Pkcs11RootKey::open_with(
        key.uri(),
        OpenOptions::new().pin(SecretString::from(USER_PIN)),
    )
    .unwrap();
    assert_eq!(again.access_key_id(), SUITE_ACCESS_KEY_ID);
}

#[test]
fn import_refuses_an_existing_label_or_id_unless_replacing() {
    let _serial = common::serial();
    let token = TestToken::new("dup");
    let mut first = token.uri("aws");
    first.id = Some(vec![7]);
    import_key(
        &first,
        &root_secret(OLD_SECRET),
        "AKIAOLD",
        ImportOptions::new(),
    )
    .unwrap();

    // Same label, other id.
    let mut same_label = token.uri("aws");
    same_label.id = Some(vec![8]);
    let err = import_key(
        &same_label,
        &root_secret(NEW_SECRET),
        "AKIANEW",
        ImportOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("a secret key 'aws' (id 07)") && text.contains("replace"),
        "{text}"
    );

    // Other label, same id.
    let mut same_id = token.uri("other");
    same_id.id = Some(vec![7]);
    let err = import_key(
        &same_id,
        &root_secret(NEW_SECRET),
        "AKIANEW",
        ImportOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    // Nothing was created by the refusals.
    let session = token.user_session();
    assert_eq!(session.find_objects(&[]).unwrap().len(), 2);

    // Replacing swaps key and access key id.
    import_key(
        &first,
        &root_secret(NEW_SECRET),
        "AKIANEW",
        ImportOptions::new().replace(),
    )
    .unwrap();
    assert_eq!(session.find_objects(&[]).unwrap().len(), 2);
    let key = Pkcs11RootKey::open(&first).unwrap();
    assert_eq!(key.access_key_id(), "AKIANEW");
    let reference = SoftwareRootKey::from_secret_access_key(NEW_SECRET);
    assert_eq!(
        key.date_key(&date()).unwrap().as_bytes(),
        reference.date_key(&date()).unwrap().as_bytes()
    );
}

#[test]
fn replace_never_deletes_objects_that_are_not_keyholds() {
    let _serial = common::serial();
    let token = TestToken::new("norepl");
    let session = token.user_session();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"aws".to_vec()),
            Attribute::Application(b"someone else".to_vec()),
            Attribute::Value(b"precious".to_vec()),
        ])
        .unwrap();
    let err = import_key(
        &token.uri("aws"),
        &root_secret("s"),
        "AKIA",
        ImportOptions::new().replace(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ReplaceRefused { .. }), "{err}");
    assert_eq!(session.find_objects(&[]).unwrap().len(), 1);
}

#[test]
fn import_rejects_bad_requests_before_touching_the_token() {
    let _serial = common::serial();
    let token = TestToken::new("badreq");
    let cases = [
        (token.uri(""), "AKIA", "object=LABEL"),
        (token.uri("k"), "AKIA EXAMPLE", "access key id"),
        (token.uri("k"), "", "access key id"),
        (token.uri("k"), SUITE_SECRET, "is it the secret access key?"),
    ];
    for (uri, akid, needle) in cases {
        let err = import_key(&uri, &root_secret("s"), akid, ImportOptions::new()).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!format!("{err} {err:?}").contains(SUITE_SECRET), "{err}");
    }
    let mut typed = token.uri("k");
    typed.object_type = Some(backend_pkcs11::uri::ObjectType::Private);
    let err = import_key(&typed, &root_secret("s"), "AKIA", ImportOptions::new()).unwrap_err();
    assert!(err.to_string().contains("secret-key"), "{err}");
    let err = import_key(
        &token.uri("k"),
        &root_secret(""),
        "AKIA",
        ImportOptions::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(token.user_session().find_objects(&[]).unwrap().is_empty());
}

#[test]
fn an_import_that_fails_part_way_leaves_nothing_behind() {
    let _serial = common::serial();
    // SoftHSM creates a 14-byte HMAC key and the access key id object, then refuses to sign
    // with the key (CKR_KEY_SIZE_RANGE): the import's check fails after both objects exist.
    let token = TestToken::new("partway");
    let err = import_key(
        &token.uri("short"),
        &root_secret("too-short!"),
        "AKIASHORT",
        ImportOptions::new(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("checking the import") && text.contains("CKR_KEY_SIZE_RANGE"),
        "{text}"
    );
    assert!(token.user_session().find_objects(&[]).unwrap().is_empty());
}

/// A second key with `label` and `id` holding `secret`, as an import killed after its
/// first write leaves it (no record points at it).
fn twin_key(token: &TestToken, label: &str, id: &[u8], secret: &str) {
    common::raw_key(
        token,
        label,
        id,
        secret,
        &[
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ],
    );
}

fn kdate(key: &Pkcs11RootKey) -> [u8; 32] {
    *key.date_key(&date()).unwrap().as_bytes()
}

fn software_kdate(secret: &str) -> [u8; 32] {
    *SoftwareRootKey::from_secret_access_key(secret)
        .date_key(&date())
        .unwrap()
        .as_bytes()
}

#[test]
fn an_interrupted_replace_leaves_a_key_that_opens_and_replace_cleans_up() {
    let _serial = common::serial();
    let token = TestToken::new("leftover");
    let mut uri = token.uri("aws");
    uri.id = Some(vec![3]);
    import_key(
        &uri,
        &root_secret(OLD_SECRET),
        "AKIAOLD",
        ImportOptions::new(),
    )
    .unwrap();
    // Killed after the new key was written, before the record was switched: the record
    // still names the old key, which is used; the new one is a leftover.
    twin_key(&token, "aws", &[3], NEW_SECRET);
    let key = Pkcs11RootKey::open(&uri).unwrap();
    assert_eq!(key.access_key_id(), "AKIAOLD");
    assert_eq!(kdate(&key), software_kdate(OLD_SECRET));
    drop(key);

    // Replace leaves one key and one record.
    import_key(
        &uri,
        &root_secret(NEW_SECRET),
        "AKIANEW",
        ImportOptions::new().replace(),
    )
    .unwrap();
    let session = token.user_session();
    assert_eq!(session.find_objects(&[]).unwrap().len(), 2);
    let key = Pkcs11RootKey::open(&uri).unwrap();
    assert_eq!(key.access_key_id(), "AKIANEW");
    assert_eq!(kdate(&key), software_kdate(NEW_SECRET));
}

#[test]
fn keys_no_record_names_are_refused_with_the_repair() {
    let _serial = common::serial();
    let token = TestToken::new("unpaired");
    // A first import killed after its key: a key and no record.
    twin_key(&token, "first", &[], NEW_SECRET);
    let err = Pkcs11RootKey::open(&token.uri("first")).unwrap_err();
    assert!(matches!(err, Error::AccessKeyIdMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("--replace"), "{err}");
    // Two such keys: neither is the one a record names.
    twin_key(&token, "first", &[], OLD_SECRET);
    let err = Pkcs11RootKey::open(&token.uri("first")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unpaired {
                keys: 2,
                records: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("keyhold import --replace"),
        "{err}"
    );
    // A record whose check value is no key's (another program changed the key).
    import_key(
        &token.uri("second"),
        &root_secret(OLD_SECRET),
        "AKIAOLD",
        ImportOptions::new(),
    )
    .unwrap();
    let session = token.user_session();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"second".to_vec()),
        ])
        .unwrap();
    session.destroy_object(keys[0]).unwrap();
    twin_key(&token, "second", &[], NEW_SECRET);
    let err = Pkcs11RootKey::open(&token.uri("second")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unpaired {
                keys: 1,
                records: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // The repair works from every one of these states.
    for label in ["first", "second"] {
        import_key(
            &token.uri(label),
            &root_secret(NEW_SECRET),
            "AKIANEW",
            ImportOptions::new().replace(),
        )
        .unwrap();
        let key = Pkcs11RootKey::open(&token.uri(label)).unwrap();
        assert_eq!(kdate(&key), software_kdate(NEW_SECRET));
    }
    assert_eq!(session.find_objects(&[]).unwrap().len(), 4);
}
