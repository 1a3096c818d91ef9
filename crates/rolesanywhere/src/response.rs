//! The reply to `CreateSession`: `{"credentialSet":[{"credentials":{"accessKeyId",
//! "secretAccessKey","sessionToken","expiration"}, ...}], ...}` with HTTP 201, or an error
//! whose type is in `X-Amzn-ErrorType` and whose text is the JSON `message`.
//!
//! The secret and the token go from the parser straight into [`SecretString`]s. Parse
//! failures name the fault, never the text.

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ServiceError, ServiceErrorKind, printable};

/// Temporary credentials for the role. `Debug` shows the access key id and expiry only.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    credential_set: Vec<CredentialSetEntry>,
}

#[derive(Deserialize)]
struct CredentialSetEntry {
    credentials: Credentials,
}

/// A string read straight into a [`SecretString`] (no intermediate `String` left behind
/// when the JSON has no escapes, which credentials never need).
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = SecretString;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
            if v.is_empty() {
                return Err(E::custom("an empty secret"));
            }
            Ok(SecretString::from(v))
        }
    }
    d.deserialize_str(Visitor)
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    OffsetDateTime::parse(&text, &Rfc3339)
        .map_err(|_| serde::de::Error::custom("an expiration that is not an RFC 3339 time"))
}

/// The credentials of a 2xx reply, or what is wrong with it (never its text).
pub(crate) fn credentials(body: &[u8]) -> Result<Credentials, String> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| {
        // serde_json's messages quote unknown field names and types, never values; keep
        // its category and position only.
        format!(
            "it is not the CreateSession JSON ({:?} at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let mut set = reply.credential_set.into_iter();
    let first = set
        .next()
        .ok_or_else(|| "its credentialSet is empty".to_owned())?;
    if first.credentials.access_key_id.is_empty() {
        return Err("its accessKeyId is empty".into());
    }
    Ok(first.credentials)
}

/// The service error of a non-2xx reply, when it is one.
pub(crate) fn service_error(
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
    request_id: Option<String>,
) -> Option<ServiceError> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let message = serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.message);
    if error_type.is_none() && message.is_none() && status < 500 && status != 429 {
        return None;
    }
    Some(ServiceError {
        kind: ServiceErrorKind::from_type(error_type.unwrap_or_default(), status),
        status,
        message: message.as_deref().map(printable).unwrap_or_default(),
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const REPLY: &str = r#"{"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/deploy/1","assumedRoleId":"AROA:1"},"credentials":{"accessKeyId":"ASIAEXAMPLE","expiration":"2026-12-04T17:00:00Z","secretAccessKey":"c2VjcmV0","sessionToken":"dG9rZW4="},"packedPolicySize":0,"roleArn":"arn:aws:iam::111122223333:role/deploy","sourceIdentity":"CN=x"}],"subjectArn":"arn:aws:rolesanywhere:us-east-1:111122223333:subject/s"}"#;

    #[test]
    fn the_documented_reply_parses() {
        let c = credentials(REPLY.as_bytes()).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key.expose_secret(), "c2VjcmV0");
        assert_eq!(c.session_token.expose_secret(), "dG9rZW4=");
        assert_eq!(
            c.expiration,
            time::macros::datetime!(2026-12-04 17:00:00 UTC)
        );
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn hostile_replies_are_errors_that_quote_nothing() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"credentialSet":[]}"#,
            r#"{"credentialSet":[{"credentials":{"accessKeyId":"","secretAccessKey":"s3cr3t","sessionToken":"t","expiration":"2026-12-04T17:00:00Z"}}]}"#,
            r#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t","expiration":"soon"}}]}"#,
            r#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"","sessionToken":"t","expiration":"2026-12-04T17:00:00Z"}}]}"#,
            r#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":7,"sessionToken":"t","expiration":"2026-12-04T17:00:00Z"}}]}"#,
        ] {
            let err = credentials(body.as_bytes()).unwrap_err();
            assert!(!err.contains("s3cr3t"), "{err}");
        }
        let deep = "[".repeat(100_000);
        assert!(credentials(deep.as_bytes()).is_err());
    }

    #[test]
    fn error_replies_keep_type_and_message() {
        let e = service_error(
            403,
            Some("AccessDeniedException"),
            br#"{"message":"Untrusted signing certificate"}"#,
            Some("r-1".into()),
        )
        .unwrap();
        assert_eq!(e.kind, ServiceErrorKind::AccessDenied);
        assert_eq!(
            e.to_string(),
            "AccessDeniedException (HTTP 403): Untrusted signing certificate [request id r-1]"
        );
        assert!(service_error(404, None, b"<html>", None).is_none());
        assert_eq!(
            service_error(503, None, b"", None).unwrap().kind,
            ServiceErrorKind::ServiceFailure
        );
    }

    /// The reply parsers' fuzz target (see `test-support`'s `fuzz`): the corpus in
    /// `testdata/fuzz/createsession-reply`, then mutations. No reply may panic, and a parse
    /// failure never quotes the body.
    #[test]
    fn fuzz_createsession_replies() {
        let dictionary: &[&[u8]] = &[
            br#"{"credentialSet":["#,
            br#""credentials":{"#,
            br#""secretAccessKey":"s3cr3t""#,
            br#""expiration":"2026-12-04T17:00:00Z""#,
            b"\\u0000",
            b"]}",
        ];
        let parsed = test_support::fuzz::run(
            "createsession-reply",
            0x5eed_00a3,
            test_support::fuzz::runs(20_000),
            dictionary,
            |body| {
                let _ = service_error(403, Some("AccessDeniedException"), body, None);
                match credentials(body) {
                    Ok(c) => !c.access_key_id.is_empty(),
                    Err(why) => {
                        assert!(!why.contains("s3cr3t"), "{why}");
                        false
                    }
                }
            },
        );
        assert!(parsed >= 1, "only {parsed} replies parsed");
    }
}
