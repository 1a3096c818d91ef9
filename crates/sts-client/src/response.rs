//! The replies: STS's XML documents parsed (quick-xml with serde) into typed results, and
//! error documents scanned into [`ServiceError`]s.
//!
//! Secrets (secret access key, session token) go straight from the parser into
//! [`SecretString`]s; the intermediate `String` is zeroized. Parse failures never quote the
//! body, which may hold credentials: they name the kind of fault and its byte offset only.
//!
//! Before serde sees a reply, [`check_shape`] walks it once and refuses what no STS reply
//! holds: a DTD (`<!DOCTYPE`), more than [`MAX_DEPTH`] nested elements, more than
//! [`MAX_ELEMENTS`] elements, or an element with more than [`MAX_ATTRIBUTES`] attributes.
//! Malformed input of any size then fails in time linear in its length.

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
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map_err(|_| serde::de::Error::custom("Expiration is not an RFC 3339 time"))
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

/// The deepest element nesting accepted (STS replies nest four deep).
pub(crate) const MAX_DEPTH: usize = 16;
/// The most elements accepted in one reply (STS replies have about twenty).
pub(crate) const MAX_ELEMENTS: usize = 1024;
/// The most attributes accepted on one element (STS sends one, `xmlns`).
pub(crate) const MAX_ATTRIBUTES: usize = 16;

/// A reply body that is not the document expected. `detail` never quotes the body.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    pub(crate) detail: String,
}

impl ParseFailure {
    fn new(detail: impl Into<String>) -> Self {
        ParseFailure {
            detail: detail.into(),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], root: &str) -> Result<T, ParseFailure> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ParseFailure::new(format!(
            "the body is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(ParseFailure::new("the body is empty"));
    }
    match check_shape(body)? {
        Some(found) if found == root => {}
        Some(other) => {
            return Err(ParseFailure::new(format!(
                "expected an XML <{root}> document, found <{}>",
                printable_name(&other)
            )));
        }
        None => {
            return Err(ParseFailure::new(format!(
                "expected an XML <{root}> document; the body is not XML"
            )));
        }
    }
    quick_xml::de::from_str(text).map_err(|e| {
        ParseFailure::new(format!(
            "the <{root}> document is malformed or incomplete ({})",
            describe(&e)
        ))
    })
}

/// What kind of fault a deserializer error is, without any text from the document (serde's
/// and quick-xml's messages quote values and names, and a corrupted byte can turn a secret
/// into a name).
fn describe(error: &quick_xml::DeError) -> &'static str {
    use quick_xml::DeError as E;
    match error {
        E::InvalidXml(_) => "XML syntax error",
        E::UnexpectedEof => "the document ends early",
        E::Custom(m) if m.starts_with("missing field") => "a required element is missing",
        E::Custom(m) if m.starts_with("duplicate field") => "an element appears twice",
        E::Custom(m) if m.starts_with("Expiration") => "Expiration is not an RFC 3339 time",
        E::Custom(_) => "an element has the wrong type or value",
        _ => "unexpected content",
    }
}

/// An element name for a message: at most 64 characters, printable ASCII only.
fn printable_name(name: &str) -> String {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_owned()
    } else {
        "an element with an unusual name".to_owned()
    }
}

/// Walks the whole document once. Returns the root element's name (`None` when the body
/// is not XML before its first element), or a failure for a DTD, too deep or too many
/// elements, too many attributes, or an XML syntax error (by byte offset).
fn check_shape(body: &[u8]) -> Result<Option<String>, ParseFailure> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let (mut root, mut depth, mut elements) = (None, 0usize, 0usize);
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            // Not XML at all before the first element: let the caller say so.
            Err(_) if root.is_none() => return Ok(None),
            Err(_) => {
                return Err(ParseFailure::new(format!(
                    "the document is malformed or incomplete (XML syntax error at byte {})",
                    reader.error_position()
                )));
            }
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(ParseFailure::new(format!(
                        "the reply has more than {MAX_ELEMENTS} elements"
                    )));
                }
                let mut attributes = e.attributes();
                attributes.with_checks(false);
                if attributes.take(MAX_ATTRIBUTES + 1).count() > MAX_ATTRIBUTES {
                    return Err(ParseFailure::new(format!(
                        "an element has more than {MAX_ATTRIBUTES} attributes"
                    )));
                }
                if root.is_none() {
                    root = Some(e.local_name().as_ref().to_owned());
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(ParseFailure::new(format!(
                            "elements are nested more than {MAX_DEPTH} deep"
                        )));
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => {
                return Err(ParseFailure::new(
                    "the reply has a DTD (<!DOCTYPE>), which no STS reply has",
                ));
            }
            Event::Text(ref t) if root.is_none() && !t.trim().is_empty() => {
                return Ok(None);
            }
            Event::Eof => return Ok(root),
            _ => {}
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
    check_shape(body).ok()??;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    // Text arrives in pieces: plain text, CDATA and entity references (`&amp;`).
    let mut text = String::new();
    let (mut code, mut message, mut error_type, mut request_id) = (None, None, None, None);
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                path.push(e.local_name().as_ref().to_owned());
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t),
            Ok(Event::CData(t)) => text.push_str(&t),
            Ok(Event::GeneralRef(r)) => match r.resolve_char_ref().ok()? {
                Some(c) => text.push(c),
                None => text.push_str(quick_xml::escape::resolve_xml_entity(&r)?),
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
mod tests;
