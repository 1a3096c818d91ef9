//! The STS reply parser's tests: every reply shape, error documents, hostile inputs, and
//! the fuzz target over the corpus in `testdata/fuzz/sts-xml`.

use secrecy::ExposeSecret;

use super::*;

const ASSUME_ROLE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
  <SourceIdentity>Alice</SourceIdentity>
<AssumedRoleUser>
  <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
  <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>
</AssumedRoleUser>
<Credentials>
  <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
  <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
  <SessionToken>
   AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW
  </SessionToken>
  <Expiration>2019-11-09T13:34:41Z</Expiration>
</Credentials>
<PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#;

#[test]
fn parses_the_documented_assume_role_reply() {
    let role = assumed_role(ASSUME_ROLE.as_bytes()).unwrap();
    assert_eq!(role.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
    assert_eq!(
        role.credentials.secret_access_key.expose_secret(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    );
    assert!(
        role.credentials
            .session_token
            .expose_secret()
            .starts_with("AQoDYXdzEPT")
    );
    assert_eq!(
        role.credentials.expiration,
        time::macros::datetime!(2019-11-09 13:34:41 UTC)
    );
    assert_eq!(
        role.assumed_role_user.assumed_role_id,
        "ARO123EXAMPLE123:TestAR"
    );
    assert_eq!(role.packed_policy_size, Some(6));
    assert_eq!(role.source_identity.as_deref(), Some("Alice"));
    let debug = format!("{role:?}");
    assert!(
        !debug.contains("wJalr") && !debug.contains("AQoD"),
        "{debug}"
    );
}

#[test]
fn parses_caller_identity_and_session_token() {
    let id = caller_identity(
        br#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
        <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/Alice</Arn>
        <UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>
        <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
        </GetCallerIdentityResponse>"#,
    )
    .unwrap();
    assert_eq!(
        id,
        CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/Alice".into(),
            user_id: "AIDAEXAMPLE".into(),
        }
    );
    let creds = session_token(
        br#"<GetSessionTokenResponse><GetSessionTokenResult><Credentials>
        <SessionToken>TOKEN</SessionToken><SecretAccessKey>SECRET</SecretAccessKey>
        <Expiration>2011-07-11T19:55:29.611Z</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
        </Credentials></GetSessionTokenResult></GetSessionTokenResponse>"#,
    )
    .unwrap();
    assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
    assert_eq!(creds.expiration.millisecond(), 611);
}

#[test]
fn bad_documents_are_parse_failures_not_panics() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b"{\"json\": true}", "not XML"),
        (b"<html><body>502</body></html>", "found <html>"),
        (
            &ASSUME_ROLE.as_bytes()[..ASSUME_ROLE.len() / 2],
            "malformed or incomplete",
        ),
        (
            b"<AssumeRoleResponse><AssumeRoleResult></AssumeRoleResult></AssumeRoleResponse>",
            "malformed or incomplete",
        ),
    ];
    for (body, expected) in cases {
        let err = assumed_role(body).unwrap_err();
        assert!(err.detail.contains(expected), "{expected}: {err:?}");
    }
    let bad_time = ASSUME_ROLE.replace("2019-11-09T13:34:41Z", "yesterday");
    let err = assumed_role(bad_time.as_bytes()).unwrap_err();
    assert!(err.detail.contains("RFC 3339"), "{err:?}");
}

#[test]
fn error_documents_in_each_shape() {
    let sts = br#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
      <Error><Type>Sender</Type><Code>AccessDenied</Code>
      <Message>User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole &amp; more</Message></Error>
      <RequestId>4c6f2d53-0000</RequestId></ErrorResponse>"#;
    let e = service_error(sts, 403, "AssumeRole").unwrap();
    assert_eq!(e.kind, ServiceErrorKind::AccessDenied);
    assert_eq!(e.error_type.as_deref(), Some("Sender"));
    assert!(
        e.message.ends_with("sts:AssumeRole & more"),
        "{}",
        e.message
    );
    assert_eq!(e.request_id.as_deref(), Some("4c6f2d53-0000"));

    let ec2 = b"<Response><Errors><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></Errors><RequestID>r-1</RequestID></Response>";
    let e = service_error(ec2, 400, "AssumeRole").unwrap();
    assert_eq!(e.kind, ServiceErrorKind::Throttling);
    assert_eq!(e.request_id.as_deref(), Some("r-1"));

    let other = b"<Error><Code>SomethingNew</Code></Error>";
    let e = service_error(other, 400, "AssumeRole").unwrap();
    assert_eq!(e.kind, ServiceErrorKind::Other("SomethingNew".into()));

    assert!(service_error(b"<html>Bad Gateway</html>", 502, "AssumeRole").is_none());
    assert!(service_error(b"<ErrorResponse><Error><Code>Acc", 403, "AssumeRole").is_none());
}

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW";

/// Every parser of a reply, run on `body`: none may panic, and no failure may quote the
/// secret or the token. Whether one of them accepted it.
fn parse_all_without_leaking(body: &[u8]) -> bool {
    let details = [
        assumed_role(body).err().map(|e| e.detail),
        session_token(body).err().map(|e| e.detail),
        caller_identity(body).err().map(|e| e.detail),
    ];
    let accepted = details.iter().any(Option::is_none);
    for detail in details.into_iter().flatten() {
        for secret in [SECRET, TOKEN, &SECRET[..12], &TOKEN[..12]] {
            assert!(!detail.contains(secret), "{detail}");
        }
    }
    if let Some(e) = service_error(body, 400, "AssumeRole") {
        let _ = e.to_string();
    }
    accepted
}

#[test]
fn a_dtd_anywhere_is_refused_without_a_panic() {
    // quick-xml 0.38 hit an unreachable!() on text, a DTD, then text inside an element.
    for body in [
        "<AssumeRoleResponse><AssumeRoleResult>x<!DOCTYPE y>z</AssumeRoleResult></AssumeRoleResponse>",
        "<!DOCTYPE AssumeRoleResponse [<!ENTITY e \"x\">]><AssumeRoleResponse/>",
        "<ErrorResponse><Error><Code>A<!DOCTYPE y>B</Code></Error></ErrorResponse>",
    ] {
        let err = assumed_role(body.as_bytes()).unwrap_err();
        assert!(err.detail.contains("DTD"), "{err:?}");
        assert!(service_error(body.as_bytes(), 400, "AssumeRole").is_none());
    }
}

#[test]
fn absurd_shapes_fail_fast() {
    // ~80k attributes on one element, under the 1 MiB body cap: 11 s of CPU in
    // quick-xml 0.38's duplicate check; here refused at the 17th attribute.
    let mut many = String::from("<AssumeRoleResponse");
    for i in 0..80_000 {
        many.push_str(&format!(" a{i}=\"\""));
    }
    many.push_str("/>");
    let deep = format!("<AssumeRoleResponse>{}", "<a>".repeat(10_000));
    let wide = format!(
        "<AssumeRoleResponse>{}</AssumeRoleResponse>",
        "<a/>".repeat(50_000)
    );
    for (body, expected) in [(many, "attributes"), (deep, "nested"), (wide, "elements")] {
        let started = std::time::Instant::now();
        let err = assumed_role(body.as_bytes()).unwrap_err();
        assert!(err.detail.contains(expected), "{err:?}");
        assert!(service_error(body.as_bytes(), 400, "AssumeRole").is_none());
        // Generous for a debug build on a loaded machine; quadratic work takes seconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}

#[test]
fn no_single_byte_corruption_quotes_a_secret() {
    // One corrupted byte once turned the secret into an element name that a parse
    // error quoted. Every position, with bytes that break structure in different ways.
    let body = ASSUME_ROLE.as_bytes();
    for position in 0..body.len() {
        for byte in [b'<', b'>', b'/', b'"', b'&', b' ', b'x', 0xff] {
            let mut corrupted = body.to_vec();
            corrupted[position] = byte;
            parse_all_without_leaking(&corrupted);
        }
    }
}

/// Pieces of XML that stress a parser: markup declarations, entities, CDATA, odd names.
const FRAGMENTS: &[&str] = &[
    "<!DOCTYPE x>",
    "<!DOCTYPE x [<!ENTITY a \"b\">]>",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&#x0;",
    "&#1114112;",
    "&unknown;",
    "&",
    "<?xml version=\"1.0\"?>",
    "<?pi x?>",
    "<!--",
    "-->",
    "</",
    "/>",
    "<a b=\"1\" b=\"2\">",
    "<Credentials>",
    "</Credentials>",
    "<Expiration>",
    "9999-12-31T23:59:59Z",
    "\u{0}",
    "\u{feff}",
    "xmlns:a=\"x\"",
    "<a:b>",
    "</a:b>",
    "\r\n",
];

/// The STS replies' fuzz target (see `test-support`'s `fuzz`): every reply of the corpus
/// in `testdata/fuzz/sts-xml`, then 1,500 mutations for each seed of
/// `testdata/sts-client/parser-seeds.txt`. No reply may panic or quote a secret.
#[test]
fn fuzz_sts_replies() {
    let seeds = include_str!("../../../../testdata/sts-client/parser-seeds.txt");
    let dictionary: Vec<&[u8]> = FRAGMENTS.iter().map(|f| f.as_bytes()).collect();
    let mut seeds_run = 0;
    for seed in seeds
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let seed: u64 = seed.parse().expect("a seed is a u64");
        let runs = test_support::fuzz::runs(1500);
        test_support::fuzz::run(
            "sts-xml",
            seed,
            runs,
            &dictionary,
            parse_all_without_leaking,
        );
        seeds_run += 1;
    }
    assert!(seeds_run >= 8, "the seeds file lost seeds: {seeds_run}");
}
