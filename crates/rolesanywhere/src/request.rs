//! The `CreateSession` request: its three ARNs as query parameters (as the AWS helper sends
//! them) and a JSON body with the session's duration and, optionally, its name.

use std::time::Duration;

use crate::arn::{ProfileArn, RoleArn, TrustAnchorArn};
use crate::error::RolesAnywhereError;

/// The shortest session `CreateSession` grants (15 minutes).
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// The longest session `CreateSession` grants (12 hours; the profile may allow less).
pub const MAX_DURATION: Duration = Duration::from_secs(43_200);

/// One `CreateSession` call: which trust anchor, profile and role, for how long.
#[derive(Clone, Debug)]
pub struct CreateSession {
    trust_anchor_arn: TrustAnchorArn,
    profile_arn: ProfileArn,
    role_arn: RoleArn,
    duration: Duration,
    role_session_name: Option<String>,
}

impl CreateSession {
    /// A session of one hour for `role_arn`, through `profile_arn`, with a certificate that
    /// chains to `trust_anchor_arn`.
    pub fn new(
        trust_anchor_arn: TrustAnchorArn,
        profile_arn: ProfileArn,
        role_arn: RoleArn,
    ) -> Self {
        Self {
            trust_anchor_arn,
            profile_arn,
            role_arn,
            duration: Duration::from_secs(3600),
            role_session_name: None,
        }
    }

    /// How long the credentials last, [`MIN_DURATION`] to [`MAX_DURATION`] (checked when
    /// the request is sent).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The role session name (2 to 64 of `A-Za-z0-9+=,.@-_`); the profile must allow
    /// custom names. Without one the service names the session after the certificate's
    /// serial number.
    pub fn role_session_name(mut self, name: impl Into<String>) -> Self {
        self.role_session_name = Some(name.into());
        self
    }

    /// The trust anchor (its region is where the request goes).
    pub fn trust_anchor_arn(&self) -> &TrustAnchorArn {
        &self.trust_anchor_arn
    }

    /// The session length asked for.
    pub fn lifetime(&self) -> Duration {
        self.duration
    }

    /// Checks what the service would refuse, so the user hears it before a device call.
    pub fn check(&self) -> Result<(), RolesAnywhereError> {
        if !(MIN_DURATION..=MAX_DURATION).contains(&self.duration) {
            return Err(RolesAnywhereError::Config(format!(
                "a session of {} seconds is outside CreateSession's range of 900 to 43200 \
                 seconds (--session-duration)",
                self.duration.as_secs()
            )));
        }
        if let Some(name) = &self.role_session_name {
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b);
            if !(2..=64).contains(&name.len()) || !name.bytes().all(allowed) {
                return Err(RolesAnywhereError::Config(format!(
                    "role session name {name:?} must be 2 to 64 characters of \
                     A-Z a-z 0-9 + = , . @ - _ (--role-session-name)"
                )));
            }
        }
        if self.profile_arn.region() != self.trust_anchor_arn.region()
            || self.profile_arn.partition() != self.trust_anchor_arn.partition()
        {
            return Err(RolesAnywhereError::Config(format!(
                "the profile ({}) and the trust anchor ({}) are in different regions; \
                 Roles Anywhere resources are regional, so both must be where the session \
                 is asked for",
                self.profile_arn, self.trust_anchor_arn
            )));
        }
        Ok(())
    }

    /// The query string: the three ARNs, percent-encoded.
    pub(crate) fn query(&self) -> String {
        let mut query = String::new();
        for (name, value) in [
            ("profileArn", self.profile_arn.as_str()),
            ("roleArn", self.role_arn.as_str()),
            ("trustAnchorArn", self.trust_anchor_arn.as_str()),
        ] {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    query.push(char::from(b));
                } else {
                    query.push_str(&format!("%{b:02X}"));
                }
            }
        }
        query
    }

    /// The JSON body: `{"durationSeconds":N}`, with `roleSessionName` when set.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut body = serde_json::Map::new();
        body.insert(
            "durationSeconds".into(),
            serde_json::Value::from(self.duration.as_secs()),
        );
        if let Some(name) = &self.role_session_name {
            body.insert(
                "roleSessionName".into(),
                serde_json::Value::from(name.clone()),
            );
        }
        serde_json::to_vec(&body).expect("a map of strings and numbers serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CreateSession {
        CreateSession::new(
            "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/ta-1"
                .parse()
                .unwrap(),
            "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p-1"
                .parse()
                .unwrap(),
            "arn:aws:iam::111122223333:role/path/deploy"
                .parse()
                .unwrap(),
        )
    }

    #[test]
    fn query_and_body_are_what_the_service_reads() {
        let r = request();
        assert_eq!(
            r.query(),
            "profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A111122223333%3Aprofile%2Fp-1\
             &roleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fpath%2Fdeploy\
             &trustAnchorArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A111122223333%3Atrust-anchor%2Fta-1"
        );
        assert_eq!(r.body(), br#"{"durationSeconds":3600}"#);
        let named = r
            .role_session_name("ci-42")
            .duration(Duration::from_secs(900));
        assert_eq!(
            named.body(),
            br#"{"durationSeconds":900,"roleSessionName":"ci-42"}"#
        );
        assert!(named.check().is_ok());
    }

    #[test]
    fn out_of_range_values_name_the_flag() {
        for duration in [899, 43_201] {
            let err = request()
                .duration(Duration::from_secs(duration))
                .check()
                .unwrap_err();
            assert!(err.to_string().contains("--session-duration"), "{err}");
        }
        for name in ["x", "a b", &"n".repeat(65)] {
            let err = request().role_session_name(name).check().unwrap_err();
            assert!(err.to_string().contains("--role-session-name"), "{err}");
        }
        let mut other = request();
        other.profile_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p-1"
            .parse()
            .unwrap();
        assert!(
            other
                .check()
                .unwrap_err()
                .to_string()
                .contains("different regions")
        );
    }
}
