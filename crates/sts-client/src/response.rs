//! The replies: STS's XML documents parsed (quick-xml with serde) into typed results, and
//! error documents scanned into [`ServiceError`]s.
//!
//! Secrets (secret access key, session token) go straight from the parser into
//! [`SecretString`]s; the intermediate `String` is zeroized. Parse failures never quote the
//! body, which may hold credentials.

use std::fmt;

use quick_xml::events::Event;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroize;

use crate::error::{ServiceError, ServiceErrorKind};

/// Who the signing key belongs to: the reply to `GetCallerIdentity`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallerIdentity {
    /// The 12-digit account id.
    pub account: String,
    /// The ARN of the IAM user or assumed role.
    pub arn: String,
    /// The unique id of the identity (`AIDA...` for a user, `AROA...:session` for a role).
    pub user_id: String,
}

/// Temporary credentials. `Debug` prints the access key id and expiry only; the secret and
/// token are [`SecretString`]s, zeroized on drop.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    /// The temporary access key id (`ASIA...`).
    pub access_key_id: String,
    /// The temporary secret access key.
    #[serde(deserialize_with = "secret")]
    pub secret_access_key: SecretString,
    /// The session token that goes with them.
    #[serde(deserialize_with = "secret")]
    pub session_token: SecretString,
    /// When they stop working.
    #[serde(deserialize_with = "timestamp")]
    pub expiration: OffsetDateTime,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// The assumed-role user of an `AssumeRole` reply.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumedRoleUser {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// `AROA...:SESSION`.
    pub assumed_role_id: String,
}

/// The reply to `AssumeRole`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumedRole {
    /// The role's temporary credentials.
    pub credentials: Credentials,
    /// Who they belong to.
    pub assumed_role_user: AssumedRoleUser,
    /// How full the packed session policies and tags are, as a percentage of the limit.
    #[serde(default)]
    pub packed_policy_size: Option<u32>,
    /// The source identity set on the session, if any.
    #[serde(default)]
    pub source_identity: Option<String>,
}

/// Moves a string into a [`SecretString`], zeroizing the intermediate copy.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    let mut text = String::deserialize(d)?;
    let boxed: Box<str> = text.trim().into();
    text.zeroize();
    Ok(SecretString::from(boxed))
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = String::deserialize(d)?;
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
        serde::de::Error::custom(format!(
            "Expiration {:?} is not an RFC 3339 time: {e}",
            text.trim()
        ))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCallerIdentityResponse {
    get_caller_identity_result: CallerIdentity,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSessionTokenResponse {
    get_session_token_result: GetSessionTokenResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSessionTokenResult {
    credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    assume_role_result: AssumedRole,
}

/// A reply body that is not the document expected.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    pub(crate) detail: String,
    pub(crate) source: Option<quick_xml::DeError>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], root: &str) -> Result<T, ParseFailure> {
    let text = std::str::from_utf8(body).map_err(|e| ParseFailure {
        detail: format!("the body is not UTF-8 text ({e})"),
        source: None,
    })?;
    if text.trim().is_empty() {
        return Err(ParseFailure {
            detail: "the body is empty".into(),
            source: None,
        });
    }
    let found = root_element(body);
    if found.as_deref() != Some(root) {
        return Err(ParseFailure {
            detail: match found {
                Some(other) => format!("expected an XML <{root}> document, found <{other}>"),
                None => format!("expected an XML <{root}> document; the body is not XML"),
            },
            source: None,
        });
    }
    quick_xml::de::from_str(text).map_err(|e| ParseFailure {
        detail: format!("the <{root}> document is malformed or incomplete"),
        source: Some(e),
    })
}

/// The name of the document's root element, if it has one before anything else.
fn root_element(body: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Ok(Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_)) => {}
            Ok(Event::Text(t)) if t.iter().all(u8::is_ascii_whitespace) => {}
            Ok(_) | Err(_) => return None,
        }
        buf.clear();
    }
}

pub(crate) fn caller_identity(body: &[u8]) -> Result<CallerIdentity, ParseFailure> {
    parse::<GetCallerIdentityResponse>(body, "GetCallerIdentityResponse")
        .map(|r| r.get_caller_identity_result)
}

pub(crate) fn session_token(body: &[u8]) -> Result<Credentials, ParseFailure> {
    parse::<GetSessionTokenResponse>(body, "GetSessionTokenResponse")
        .map(|r| r.get_session_token_result.credentials)
}

pub(crate) fn assumed_role(body: &[u8]) -> Result<AssumedRole, ParseFailure> {
    parse::<AssumeRoleResponse>(body, "AssumeRoleResponse").map(|r| r.assume_role_result)
}

/// Scans an error document for its code, message, type and request id. Accepts STS's
/// `<ErrorResponse><Error>..</Error><RequestId>`, the EC2-style
/// `<Response><Errors><Error>..</Error></Errors><RequestID>` and a bare `<Error>`.
/// Returns `None` when the body has no `<Error><Code>`.
pub(crate) fn service_error(
    body: &[u8],
    status: u16,
    action: &'static str,
) -> Option<ServiceError> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    // Text arrives in pieces: plain text, CDATA and entity references (`&amp;`).
    let mut text = String::new();
    let (mut code, mut message, mut error_type, mut request_id) = (None, None, None, None);
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t.decode().ok()?),
            Ok(Event::CData(t)) => text.push_str(&t.decode().ok()?),
            Ok(Event::GeneralRef(r)) => match r.resolve_char_ref().ok()? {
                Some(c) => text.push(c),
                None => text.push_str(quick_xml::escape::resolve_xml_entity(&r.decode().ok()?)?),
            },
            Ok(Event::End(_)) => {
                let in_error = path.iter().rev().nth(1).is_some_and(|p| p == "Error");
                let value = Some(text.trim().to_owned());
                match path.last().map(String::as_str) {
                    Some("Code") if in_error => code = value,
                    Some("Message") if in_error => message = value,
                    Some("Type") if in_error => error_type = value,
                    Some("RequestId" | "RequestID") => request_id = value,
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            // A document cut off inside an element is not an error document we can trust.
            Ok(Event::Eof) if path.is_empty() => break,
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
        buf.clear();
    }
    let code = code?;
    Some(ServiceError {
        kind: ServiceErrorKind::from_code(&code),
        code,
        message: message.unwrap_or_default(),
        request_id,
        error_type,
        status,
        action,
    })
}

#[cfg(test)]
mod tests {
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
        assert!(err.source.unwrap().to_string().contains("RFC 3339"));
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
}
