//! The canonical request's own checks: header names and values, redaction.

use std::time::Duration;

use crate::{Payload, SignatureLocation, Signer, SigningParams, SoftwareRootKey};

const TOKEN: &str = "SESSIONtoken/with+odd=chars";

/// A name given to `header` that HTTP does not allow fails the signature, named; an
/// `http::HeaderMap` cannot hold one.
#[test]
fn an_invalid_header_name_is_refused_with_its_name() {
    let signer = Signer::new("AKIDEXAMPLE", SoftwareRootKey::from_secret_access_key("x"));
    let params = SigningParams::new("us-east-1", "s3");
    for bad in ["bad name", "", "colon:", "caf\u{e9}"] {
        let request = crate::SignableRequest::new("GET", "/")
            .header("host", b"example.com")
            .header(bad, b"v")
            .header("x-later", b"w");
        let err = signer
            .sign_signable(
                &request,
                Payload::Unsigned,
                &params,
                SignatureLocation::Headers,
            )
            .expect_err(bad);
        assert!(
            matches!(&err, crate::SignError::InvalidHeaderName(name) if name == bad),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn debug_output_hides_the_session_token_and_customer_keys() {
    let mut map = http::HeaderMap::new();
    map.insert(
        "x-amz-security-token",
        http::HeaderValue::from_static("SESSIONsecret"),
    );
    map.insert(
        "x-amz-server-side-encryption-customer-key",
        http::HeaderValue::from_static("CUSTOMERsecret"),
    );
    map.insert("x-amz-meta-note", http::HeaderValue::from_static("visible"));
    let (method, uri) = (http::Method::GET, http::Uri::from_static("https://h/k"));
    let from_map = crate::SignableRequest::from_http_parts(&method, &uri, &map);
    let listed = crate::SignableRequest::new("GET", "/k")
        .header("X-Amz-Security-Token", b"SESSIONsecret")
        .header("x-amz-meta-note", b"visible");
    for request in [from_map, listed] {
        let debug = format!("{request:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(
            debug.contains("visible") && debug.contains("** redacted **"),
            "{debug}"
        );
    }
}

#[test]
fn header_values_lose_outer_spaces_and_runs_of_spaces_but_keep_tabs() {
    for (value, trimmed) in [
        ("", ""),
        ("   ", ""),
        ("a", "a"),
        ("  a  ", "a"),
        ("a  b   c", "a b c"),
        (" value 1 of  twelve ", "value 1 of twelve"),
        ("\ta \t b\t", "\ta \t b\t"),
    ] {
        let mut out = Vec::new();
        super::write_trimmed(&mut out, value.as_bytes());
        assert_eq!(out, trimmed.as_bytes(), "{value:?}");
    }
}

/// Where a session token lies is kept through the query's sort and in the headers:
/// `redacted` hides exactly it, and the rest is the canonical request byte for byte.
#[test]
fn redacted_hides_exactly_the_session_token_wherever_it_lies() {
    let signer = Signer::new("AKIDEXAMPLE", SoftwareRootKey::from_secret_access_key("x"))
        .with_session_token(TOKEN);
    let params =
        SigningParams::new("us-east-1", "s3").at(time::macros::datetime!(2015-08-30 12:36 UTC));
    let request = crate::SignableRequest::new("GET", "/key?z=last&a=first&X-Amz-Z=1")
        .header("host", b"example.com")
        .header(
            "x-amz-server-side-encryption-customer-key",
            b"  customer key ",
        );
    for (location, token_as_signed) in [
        (SignatureLocation::Headers, TOKEN.to_owned()),
        (
            SignatureLocation::QueryParams {
                expires_in: Duration::from_secs(60),
            },
            TOKEN
                .replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D"),
        ),
    ] {
        let out = signer
            .sign_signable(&request, Payload::Unsigned, &params, location)
            .expect("sign");
        let text = out.canonical_request().to_string();
        let redacted = out.canonical_request().redacted().to_string();
        assert!(text.contains(&token_as_signed), "{text}");
        assert!(text.contains("customer key"), "{text}");
        let expected = text
            .replace(&token_as_signed, "** redacted **")
            .replace("customer key", "** redacted **");
        assert_eq!(redacted, expected, "{location:?}");
        assert!(!format!("{:?}", out.canonical_request()).contains("SESSION"));
    }
}
