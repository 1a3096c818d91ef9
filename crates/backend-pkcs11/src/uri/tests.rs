//! URI tests: the examples of RFC 7512 section 3, the grammar's edges, and round trips.

use secrecy::ExposeSecret;

use super::*;

fn parse(text: &str) -> Pkcs11Uri {
    match Pkcs11Uri::parse(text) {
        Ok(uri) => uri,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn reject(text: &str) -> String {
    match Pkcs11Uri::parse(text) {
        Ok(uri) => panic!("{text} parsed as {uri:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn rfc_empty_uri_matches_everything() {
    let uri = parse("pkcs11:");
    assert!(uri.token.is_none() && uri.object.is_none() && uri.module_path.is_none());
    assert_eq!(uri.to_string(), "pkcs11:");
}

#[test]
fn rfc_object_and_type() {
    let uri = parse("pkcs11:object=my-pubkey;type=public");
    assert_eq!(uri.object.as_deref(), Some("my-pubkey"));
    assert_eq!(uri.object_type, Some(ObjectType::Public));

    let uri = parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
    assert_eq!(uri.object_type, Some(ObjectType::Private));
    assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token"));
}

#[test]
fn rfc_token_with_binary_id_and_empty_serial() {
    let uri = parse(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
         manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;\
         id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
    );
    assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
    assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(uri.model.as_deref(), Some("1.0"));
    assert_eq!(uri.object.as_deref(), Some("my-certificate"));
    assert_eq!(uri.object_type, Some(ObjectType::Cert));
    assert_eq!(
        uri.id.as_deref(),
        Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
    );
    // An empty value is a value: it matches only an empty field.
    assert_eq!(uri.serial.as_deref(), Some(""));
    assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token_pin"));
}

#[test]
fn rfc_line_wrapped_example_parses_like_the_one_line_form() {
    let wrapped = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;
            manufacturer=Snake%20Oil,%20Inc.;
            model=1.0;
            object=my-certificate;
            type=cert;
            id=%69%95%3E%5C%F4%BD%EC%91;
            serial=
            ?pin-source=file:/etc/token_pin";
    let one_line = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin";
    assert_eq!(parse(wrapped).to_string(), parse(one_line).to_string());
}

#[test]
fn rfc_module_name_and_module_path() {
    let uri = parse("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
    assert_eq!(uri.module_name.as_deref(), Some("mypkcs11"));
    let uri = parse("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1");
    assert_eq!(uri.module_path.as_deref(), Some("/mnt/libmypkcs11.so.1"));
}

#[test]
fn rfc_pin_value_is_kept_secret() {
    let uri = parse(
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
    );
    assert_eq!(uri.token.as_deref(), Some("Software PKCS#11 softtoken"));
    let pin = uri.pin_value.as_ref().map(|p| p.expose_secret().to_owned());
    assert_eq!(pin.as_deref(), Some("the-pin"));
    for shown in [uri.to_string(), format!("{uri:?}")] {
        assert!(!shown.contains("the-pin"), "{shown}");
    }
    assert!(format!("{uri:?}").contains("redacted"));
}

#[test]
fn rfc_slot_and_library_attributes() {
    let uri = parse("pkcs11:slot-description=Sun%20Metaslot");
    assert_eq!(uri.slot_description.as_deref(), Some("Sun Metaslot"));

    let uri = parse(
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
    );
    assert_eq!(uri.library_manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(
        uri.library_description.as_deref(),
        Some("Soft Token Library")
    );
    assert_eq!(
        uri.library_version,
        Some(LibraryVersion {
            major: 1,
            minor: 23
        })
    );

    let uri = parse("pkcs11:library-version=3;slot-id=1234;slot-manufacturer=Acme");
    assert_eq!(
        uri.library_version,
        Some(LibraryVersion { major: 3, minor: 0 })
    );
    assert_eq!(uri.slot_id, Some(1234));
    assert_eq!(uri.slot_manufacturer.as_deref(), Some("Acme"));
}

#[test]
fn rfc_percent_escapes_in_either_case_and_utf8() {
    let uri = parse(
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ef%fe",
    );
    assert_eq!(uri.token.as_deref(), Some("My token% created by Joe"));
    assert_eq!(
        uri.id.as_deref(),
        Some(&[1, 2, 3, 0xba, 0xdd, 0xef, 0xfe][..])
    );

    let uri = parse(
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    );
    assert_eq!(uri.token.as_deref(), Some("A name with a substring %;"));

    let uri = parse(
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
    );
    assert_eq!(
        uri.token.as_deref(),
        Some("Name with a small A with acute: á")
    );
}

#[test]
fn rfc_vendor_attributes_are_kept() {
    let uri = parse(
        "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a\
         ?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
    );
    assert_eq!(
        uri.vendor_path,
        vec![("vendor-aaa".into(), "value-a".into())]
    );
    assert_eq!(
        uri.vendor_query,
        vec![("vendor-bbb".into(), "value-b".into())]
    );
    assert_eq!(uri.unsupported_path_attribute(), Some("vendor-aaa"));
}

#[test]
fn reserved_characters_follow_the_grammar() {
    // '&' is literal in the path, '/', '?' and '|' are literal in the query.
    let uri = parse("pkcs11:object=a&b?pin-source=file:/x?y|z");
    assert_eq!(uri.object.as_deref(), Some("a&b"));
    assert_eq!(uri.pin_source.as_deref(), Some("file:/x?y|z"));
    // '/' is not allowed raw in the path, '&' only separates in the query.
    assert!(reject("pkcs11:object=a/b").contains("percent-encoded"));
    assert!(reject("pkcs11:?pin-source=a&b").contains("no '='"));
    assert!(reject("pkcs11:object=a#b").contains("percent-encoded"));
}

#[test]
fn malformed_uris_are_rejected_with_a_reason() {
    assert!(reject("pkcs12:object=x").contains("starts with 'pkcs11:'"));
    assert!(reject("pkcs11:object=x;object=y").contains("more than once"));
    assert!(reject("pkcs11:?module-path=/a&module-path=/b").contains("more than once"));
    assert!(reject("pkcs11:object=x;").contains("empty attribute"));
    assert!(reject("pkcs11:object").contains("no '='"));
    assert!(reject("pkcs11:object=%4").contains("two hex digits"));
    assert!(reject("pkcs11:object=%zz").contains("two hex digits"));
    assert!(reject("pkcs11:object=%FF").contains("not UTF-8"));
    assert!(reject("pkcs11:type=secret").contains("secret-key"));
    assert!(reject("pkcs11:slot-id=").contains("decimal"));
    assert!(reject("pkcs11:slot-id=-1").contains("decimal"));
    assert!(reject("pkcs11:library-version=1.").contains("decimal"));
    assert!(reject("pkcs11:library-version=256").contains("out of range"));
    assert!(reject("pkcs11:ob.ject=x").contains("not a valid attribute name"));
}

#[test]
fn pin_errors_do_not_quote_the_pin() {
    for uri in [
        "pkcs11:?pin-value=se#cret",
        "pkcs11:?pin-value=se%ZZcret",
        "pkcs11:?pin-value=cr%FFet",
    ] {
        let err = reject(uri);
        assert!(err.contains("pin-value") && !err.contains("cret"), "{err}");
    }
}

#[test]
fn scheme_is_case_insensitive() {
    assert_eq!(parse("PKCS11:token=t").token.as_deref(), Some("t"));
}

#[test]
fn display_round_trips_and_encodes_what_it_must() {
    let text = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;serial=;library-version=1.23;\
                slot-id=7;object=a%3Bb&c;id=%01%FF;type=secret-key;x-thing=v\
                ?pin-source=file:/etc/pin&module-path=/usr/lib/softhsm/libsofthsm2.so&x-q=1&x-q=2";
    let uri = parse(text);
    let printed = uri.to_string();
    assert_eq!(
        printed,
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;serial=;library-version=1.23;\
         slot-id=7;object=a%3Bb&c;id=%01%FF;type=secret-key;x-thing=v\
         ?pin-source=file:/etc/pin&module-path=/usr/lib/softhsm/libsofthsm2.so&x-q=1&x-q=2"
    );
    assert_eq!(parse(&printed).to_string(), printed);
}

#[test]
fn display_encodes_non_ascii_and_reserved_bytes() {
    let uri = Pkcs11Uri {
        object: Some("á;/?#% x".into()),
        module_path: Some("/opt/a&b c.so".into()),
        ..Pkcs11Uri::default()
    };
    let printed = uri.to_string();
    assert_eq!(
        printed,
        "pkcs11:object=%C3%A1%3B%2F%3F%23%25%20x?module-path=/opt/a%26b%20c.so"
    );
    let back = parse(&printed);
    assert_eq!(back.object, uri.object);
    assert_eq!(back.module_path, uri.module_path);
}
