//! Each way of pointing at the wrong thing gets its own clear error: wrong or missing PIN,
//! missing token, missing module, ambiguous URI, a key that cannot sign, a key that can be
//! read out, a key without its access key id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::softhsm as common;

use backend_pkcs11::uri::ObjectType;
use backend_pkcs11::{Error, OpenOptions, Pkcs11RootKey, Pkcs11Uri};
use common::{SUITE_ACCESS_KEY_ID, SUITE_SECRET, TestToken, USER_PIN, module_path};
use cryptoki::object::Attribute;
use secrecy::SecretString;
use sigv4_core::{DateStamp, RootKey, SoftwareRootKey};

fn open_err(uri: &Pkcs11Uri) -> Error {
    open_err_with(uri, OpenOptions::new())
}

fn open_err_with(uri: &Pkcs11Uri, options: OpenOptions) -> Error {
    match Pkcs11RootKey::open_with(uri, options) {
        Ok(key) => panic!("{uri} opened {key:?}"),
        Err(e) => e,
    }
}

/// A secret key holding the suite's secret, made directly (see [`common::raw_key`]).
fn raw_key(token: &TestToken, label: &str, id: u8, extra: &[Attribute]) {
    common::raw_key(token, label, &[id], SUITE_SECRET, extra);
}

#[test]
fn wrong_pin() {
    let _serial = common::serial();
    let token = TestToken::new("wrongpin");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let err = open_err(&token.uri_with_pin("aws", Some("not-the-pin")));
    assert!(matches!(err, Error::PinIncorrect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "PIN incorrect for token '{}' (CKR_PIN_INCORRECT)",
            token.label
        )),
        "{text}"
    );
    assert!(!text.contains("not-the-pin") && !format!("{err:?}").contains("not-the-pin"));
    let key_error = sigv4_core::KeyError::from(err);
    assert_eq!(key_error.kind(), sigv4_core::KeyErrorKind::Denied);

    // The right PIN as an option wins over the URI's wrong one.
    Pkcs11RootKey::open_with(
        &token.uri_with_pin("aws", Some("not-the-pin")),
        OpenOptions::new().pin(SecretString::from(USER_PIN)),
    )
    .unwrap();
}

#[test]
fn no_pin_at_all() {
    let _serial = common::serial();
    let token = TestToken::new("nopin");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let err = open_err(&token.uri_with_pin("aws", None));
    assert!(matches!(err, Error::PinRequired { .. }), "{err:?}");
    assert!(err.to_string().contains("pin-source"), "{err}");
}

#[test]
fn pin_from_a_pin_source_file() {
    let _serial = common::serial();
    let token = TestToken::new("pinfile");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let file = std::env::temp_dir().join(format!("keyhold-pin-{}", token.label));
    std::fs::write(&file, format!("{USER_PIN}\n")).unwrap();
    let mut uri = token.uri_with_pin("aws", None);
    uri.pin_source = Some(format!("file:{}", file.display()));
    let key = Pkcs11RootKey::open(&uri).unwrap();
    assert_eq!(key.uri().pin_source, uri.pin_source);
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn missing_token() {
    let _serial = common::serial();
    let token = TestToken::new("present");
    let mut uri = token.uri("aws");
    uri.token = Some("no-such-token".into());
    let err = open_err(&uri);
    assert!(matches!(err, Error::TokenNotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("pkcs11:token=no-such-token"), "{text}");
    assert!(
        text.contains(&format!("'{}'", token.label)),
        "lists the tokens present: {text}"
    );
}

#[test]
fn missing_module() {
    let mut uri =
        Pkcs11Uri::parse("pkcs11:token=t;object=aws?module-path=/nonexistent/libnothing.so")
            .unwrap();
    let err = open_err(&uri);
    assert!(matches!(err, Error::ModuleMissing { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/libnothing.so"),
        "{err}"
    );

    // A file that is not a PKCS#11 library.
    uri.module_path = Some("/etc/hostname".into());
    let err = open_err(&uri);
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err:?}");

    uri.module_path = Some("libsofthsm2.so".into());
    let err = open_err(&uri);
    assert!(err.to_string().contains("absolute path"), "{err}");

    uri.module_path = None;
    uri.module_name = Some("no-such-module".into());
    let err = open_err(&uri);
    assert!(matches!(err, Error::ModuleNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-module.module"), "{err}");
}

#[test]
fn module_by_name_and_no_module() {
    let _serial = common::serial();
    let token = TestToken::new("modname");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let mut uri = token.uri("aws");
    uri.module_path = None;
    // Debian's softhsm2 installs p11-kit's softhsm2.module; found like p11-kit finds it.
    uri.module_name = Some("softhsm2".into());
    let key = Pkcs11RootKey::open(&uri).unwrap();
    assert_eq!(key.access_key_id(), SUITE_ACCESS_KEY_ID);

    // No module at all: p11-kit's proxy if installed (which loads SoftHSM via its config),
    // else an error that says what to install.
    uri.module_name = None;
    match Pkcs11RootKey::open(&uri) {
        Ok(key) => assert_eq!(key.access_key_id(), SUITE_ACCESS_KEY_ID),
        Err(Error::NoModule { searched }) => {
            assert!(searched.contains("p11-kit-proxy.so"), "{searched}");
            assert!(!std::path::Path::new("/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so").exists());
        }
        Err(e) => panic!("{e}"),
    }
    let _ = module_path();
}

#[test]
fn ambiguous_key_and_ambiguous_token() {
    let _serial = common::serial();
    let token = TestToken::new("ambiguous");
    raw_key(&token, "twin", 1, &[Attribute::Sign(true)]);
    raw_key(&token, "twin", 2, &[Attribute::Sign(true)]);
    let err = open_err(&token.uri("twin"));
    assert!(
        matches!(err, Error::AmbiguousKey { count: 2, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'twin' (id 01)") && text.contains("'twin' (id 02)") && text.contains("id="),
        "{text}"
    );
    // Saying which one settles it.
    let mut one = token.uri("twin");
    one.id = Some(vec![2]);
    let key = Pkcs11RootKey::open_with(
        &one,
        OpenOptions::new()
            .access_key_id(SUITE_ACCESS_KEY_ID)
            .insecure_allow_extractable_key(),
    )
    .unwrap();
    assert_eq!(key.uri().id.as_deref(), Some(&[2u8][..]));

    // Two tokens and a URI that does not say which.
    let _other = TestToken::new("ambiguous2");
    let mut any_token = token.uri("twin");
    any_token.token = None;
    let err = open_err(&any_token);
    assert!(matches!(err, Error::AmbiguousToken { .. }), "{err:?}");
    assert!(err.to_string().contains("token="), "{err}");
}

#[test]
fn key_that_cannot_sign() {
    let _serial = common::serial();
    let token = TestToken::new("nosign");
    raw_key(
        &token,
        "verify-only",
        1,
        &[
            Attribute::Sign(false),
            Attribute::Verify(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ],
    );
    let err = open_err_with(
        &token.uri("verify-only"),
        OpenOptions::new().access_key_id(SUITE_ACCESS_KEY_ID),
    );
    assert!(matches!(err, Error::KeyUnsuitable { .. }), "{err:?}");
    assert!(err.to_string().contains("CKA_SIGN is false"), "{err}");
}

#[test]
fn extractable_or_non_sensitive_key() {
    let _serial = common::serial();
    let token = TestToken::new("extractable");
    raw_key(
        &token,
        "extractable",
        1,
        &[
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
        ],
    );
    raw_key(
        &token,
        "readable",
        2,
        &[
            Attribute::Sign(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(false),
        ],
    );
    let options = || OpenOptions::new().access_key_id(SUITE_ACCESS_KEY_ID);
    for (label, attribute) in [
        ("extractable", "CKA_EXTRACTABLE"),
        ("readable", "CKA_SENSITIVE"),
    ] {
        let err = open_err_with(&token.uri(label), options());
        assert!(matches!(err, Error::KeyExtractable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(attribute) && text.contains("insecure_allow_extractable_key"),
            "{text}"
        );
    }
    // Keys whose value can be moved into another key or a ciphertext are refused too.
    for (n, (usage, attribute)) in [
        (Attribute::Derive(true), "CKA_DERIVE"),
        (Attribute::Encrypt(true), "CKA_ENCRYPT"),
        (Attribute::Decrypt(true), "CKA_DECRYPT"),
        (Attribute::Wrap(true), "CKA_WRAP"),
        (Attribute::Unwrap(true), "CKA_UNWRAP"),
    ]
    .into_iter()
    .enumerate()
    {
        let label = format!("usage{n}");
        raw_key(
            &token,
            &label,
            10 + n as u8,
            &[
                Attribute::Sign(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                usage,
            ],
        );
        let err = open_err_with(&token.uri(&label), options());
        assert!(matches!(err, Error::KeyExtractable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("{attribute} is true")),
            "{err}"
        );
    }
    // The opt-out, named for the danger, lets it sign.
    let key = Pkcs11RootKey::open_with(
        &token.uri("extractable"),
        options().insecure_allow_extractable_key(),
    )
    .unwrap();
    let date = DateStamp::from_date(time::macros::date!(2015 - 08 - 30));
    assert_eq!(
        key.date_key(&date).unwrap().as_bytes(),
        SoftwareRootKey::from_secret_access_key(SUITE_SECRET)
            .date_key(&date)
            .unwrap()
            .as_bytes()
    );
}

#[test]
fn key_without_access_key_id() {
    let _serial = common::serial();
    let token = TestToken::new("noakid");
    raw_key(
        &token,
        "bare",
        1,
        &[
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ],
    );
    let err = open_err(&token.uri("bare"));
    assert!(matches!(err, Error::AccessKeyIdMissing { .. }), "{err:?}");
    assert!(
        err.to_string().contains("keyhold aws-access-key-id"),
        "{err}"
    );
}

#[test]
fn uri_that_cannot_name_a_keyhold_key() {
    let _serial = common::serial();
    let token = TestToken::new("badtype");
    token.import("aws", SUITE_SECRET, SUITE_ACCESS_KEY_ID);
    let mut uri = token.uri("aws");
    uri.object_type = Some(ObjectType::Private);
    let err = open_err(&uri);
    assert!(err.to_string().contains("type=secret-key"), "{err}");

    let mut uri = token.uri("aws");
    uri.vendor_path.push(("x-vendor".into(), "1".into()));
    let err = open_err(&uri);
    assert!(err.to_string().contains("'x-vendor'"), "{err}");

    let mut uri = token.uri("nothing-here");
    uri.id = Some(vec![9]);
    let err = open_err(&uri);
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("object=nothing-here;id=%09;type=secret-key"),
        "{err}"
    );
}

/// What the backend logs while `f` runs, as text.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_modifiable_or_copyable_key_opens_with_a_warning_naming_the_repair() {
    let _serial = common::serial();
    let token = TestToken::new("changeable");
    let base = [
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    raw_key(
        &token,
        "modifiable",
        1,
        &[&base[..], &[Attribute::Modifiable(true)]].concat(),
    );
    raw_key(
        &token,
        "fixed",
        2,
        &[
            &base[..],
            &[Attribute::Modifiable(false), Attribute::Copyable(false)],
        ]
        .concat(),
    );
    let options = || OpenOptions::new().access_key_id(SUITE_ACCESS_KEY_ID);
    let log = logged(|| {
        Pkcs11RootKey::open_with(&token.uri("modifiable"), options()).expect("opens");
    });
    assert!(
        log.contains("CKA_MODIFIABLE") && log.contains("keyhold import --replace"),
        "{log}"
    );
    let log = logged(|| {
        Pkcs11RootKey::open_with(&token.uri("fixed"), options()).expect("opens");
    });
    assert!(!log.contains("modifiable or copyable"), "{log}");
}
