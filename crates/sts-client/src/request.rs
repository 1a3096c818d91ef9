//! The requests: what each STS action takes, and its `application/x-www-form-urlencoded` body
//! as the STS Query API documents it (`Action`, `Version=2011-06-15`, then the parameters,
//! lists as `Name.member.N`).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::StsError;

/// The STS API version every request names.
pub(crate) const API_VERSION: &str = "2011-06-15";

/// A form body under construction. Zeroized on drop: it may hold an MFA code.
pub(crate) struct Form {
    body: Zeroizing<String>,
}

impl Form {
    pub(crate) fn new(action: &str) -> Self {
        let mut form = Self {
            body: Zeroizing::new(String::with_capacity(256)),
        };
        form.push("Action", action);
        form.push("Version", API_VERSION);
        form
    }

    pub(crate) fn push(&mut self, name: &str, value: &str) {
        if !self.body.is_empty() {
            self.body.push('&');
        }
        encode_into(&mut self.body, name);
        self.body.push('=');
        encode_into(&mut self.body, value);
    }

    pub(crate) fn into_body(self) -> Zeroizing<String> {
        self.body
    }
}

/// Form-encodes a name or value: RFC 3986's unreserved characters as they are, space as `+`,
/// everything else percent-encoded. This is byte for byte what botocore sends, which matters
/// to servers (moto) that re-encode the parsed form to check the signature.
fn encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// A duration as whole seconds within STS's range for an action.
fn duration_secs(
    action: &str,
    duration: Duration,
    range: std::ops::RangeInclusive<u64>,
) -> Result<String, StsError> {
    let secs = duration.as_secs();
    if duration.subsec_nanos() != 0 || !range.contains(&secs) {
        return Err(StsError::Config(format!(
            "{action} duration must be whole seconds from {} to {}; got {duration:?}",
            range.start(),
            range.end()
        )));
    }
    Ok(secs.to_string())
}

/// An MFA device serial number (or ARN) and the current code from it.
#[derive(Clone)]
pub(crate) struct Mfa {
    serial: String,
    code: SecretString,
}

impl Mfa {
    fn push(&self, form: &mut Form) {
        form.push("SerialNumber", &self.serial);
        form.push("TokenCode", self.code.expose_secret());
    }
}

impl fmt::Debug for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("serial", &self.serial)
            .field("code", &"** redacted **")
            .finish()
    }
}

/// Parameters of `GetSessionToken`: temporary credentials for the calling IAM user.
///
/// ```
/// use std::time::Duration;
/// let request = sts_client::GetSessionToken::new()
///     .duration(Duration::from_secs(3600))
///     .mfa("arn:aws:iam::123456789012:mfa/user", "123456");
/// # let _ = request;
/// ```
#[derive(Clone, Debug, Default)]
pub struct GetSessionToken {
    duration: Option<Duration>,
    mfa: Option<Mfa>,
}

impl GetSessionToken {
    /// A request with STS's defaults (12 hours, no MFA).
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the credentials last: 900 s to 129600 s (36 h), whole seconds.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Authenticates with an MFA device: its serial number or ARN, and the current code.
    pub fn mfa(mut self, serial_number: impl Into<String>, token_code: impl Into<String>) -> Self {
        self.mfa = Some(Mfa {
            serial: serial_number.into(),
            code: SecretString::from(token_code.into()),
        });
        self
    }

    /// How long the credentials may last: the duration asked for, else STS's default
    /// (12 hours).
    pub(crate) fn lifetime(&self) -> Duration {
        self.duration.unwrap_or(Duration::from_secs(43_200))
    }

    pub(crate) fn form(&self) -> Result<Form, StsError> {
        let mut form = Form::new("GetSessionToken");
        if let Some(d) = self.duration {
            form.push(
                "DurationSeconds",
                &duration_secs("GetSessionToken", d, 900..=129_600)?,
            );
        }
        if let Some(mfa) = &self.mfa {
            mfa.push(&mut form);
        }
        Ok(form)
    }
}

/// Parameters of `AssumeRole`: temporary credentials for a role.
///
/// ```
/// use std::time::Duration;
/// let request = sts_client::AssumeRole::new("arn:aws:iam::123456789012:role/deploy", "ci-run-42")
///     .duration(Duration::from_secs(900))
///     .external_id("partner-id")
///     .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#)
///     .policy_arns(["arn:aws:iam::aws:policy/ReadOnlyAccess"])
///     .tag("project", "keyhold")
///     .transitive_tag_keys(["project"])
///     .source_identity("alice");
/// # let _ = request;
/// ```
#[derive(Clone, Debug)]
pub struct AssumeRole {
    role_arn: String,
    session_name: String,
    duration: Option<Duration>,
    external_id: Option<String>,
    policy: Option<String>,
    policy_arns: Vec<String>,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    source_identity: Option<String>,
    mfa: Option<Mfa>,
}

impl AssumeRole {
    /// Assumes `role_arn` with the session name `session_name` (2–64 characters of
    /// letters, digits and `+=,.@-_`; it appears in CloudTrail and the role's ARN).
    pub fn new(role_arn: impl Into<String>, session_name: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            session_name: session_name.into(),
            duration: None,
            external_id: None,
            policy: None,
            policy_arns: Vec::new(),
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            mfa: None,
        }
    }

    /// How long the credentials may last: the duration asked for, else STS's default
    /// (one hour).
    pub(crate) fn lifetime(&self) -> Duration {
        self.duration.unwrap_or(Duration::from_secs(3600))
    }

    /// The role ARN.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// The session name.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// How long the credentials last: 900 s to 43200 s (12 h, and at most the role's maximum
    /// session duration), whole seconds.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// The external id the role's trust policy requires (third-party access).
    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// An inline session policy (JSON) that narrows the role's permissions.
    pub fn policy(mut self, policy_json: impl Into<String>) -> Self {
        self.policy = Some(policy_json.into());
        self
    }

    /// Managed policies (by ARN) that narrow the role's permissions, appended to any given.
    pub fn policy_arns<I, S>(mut self, arns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy_arns.extend(arns.into_iter().map(Into::into));
        self
    }

    /// Adds a session tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Session tag keys that carry over to roles assumed from this session.
    pub fn transitive_tag_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.transitive_tag_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }

    /// The source identity recorded with the session (and in CloudTrail).
    pub fn source_identity(mut self, source_identity: impl Into<String>) -> Self {
        self.source_identity = Some(source_identity.into());
        self
    }

    /// Authenticates with an MFA device: its serial number or ARN, and the current code.
    pub fn mfa(mut self, serial_number: impl Into<String>, token_code: impl Into<String>) -> Self {
        self.mfa = Some(Mfa {
            serial: serial_number.into(),
            code: SecretString::from(token_code.into()),
        });
        self
    }

    pub(crate) fn form(&self) -> Result<Form, StsError> {
        let name = &self.session_name;
        let valid_name = (2..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b));
        if !valid_name {
            return Err(StsError::Config(format!(
                "AssumeRole session name {name:?} must be 2 to 64 characters of letters, digits and +=,.@-_"
            )));
        }
        if self.role_arn.is_empty() {
            return Err(StsError::Config("AssumeRole needs a role ARN".into()));
        }
        let mut form = Form::new("AssumeRole");
        form.push("RoleArn", &self.role_arn);
        form.push("RoleSessionName", name);
        if let Some(d) = self.duration {
            form.push(
                "DurationSeconds",
                &duration_secs("AssumeRole", d, 900..=43_200)?,
            );
        }
        if let Some(id) = &self.external_id {
            form.push("ExternalId", id);
        }
        if let Some(policy) = &self.policy {
            form.push("Policy", policy);
        }
        for (n, arn) in self.policy_arns.iter().enumerate() {
            form.push(&format!("PolicyArns.member.{}.arn", n + 1), arn);
        }
        for (n, (key, value)) in self.tags.iter().enumerate() {
            form.push(&format!("Tags.member.{}.Key", n + 1), key);
            form.push(&format!("Tags.member.{}.Value", n + 1), value);
        }
        for (n, key) in self.transitive_tag_keys.iter().enumerate() {
            form.push(&format!("TransitiveTagKeys.member.{}", n + 1), key);
        }
        if let Some(source) = &self.source_identity {
            form.push("SourceIdentity", source);
        }
        if let Some(mfa) = &self.mfa {
            mfa.push(&mut form);
        }
        Ok(form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(form: Form) -> String {
        form.into_body().to_string()
    }

    #[test]
    fn assume_role_body_lists_every_parameter_as_documented() {
        let request = AssumeRole::new("arn:aws:iam::123456789012:role/r", "s@1")
            .duration(Duration::from_secs(900))
            .external_id("ext id")
            .policy(r#"{"a":1}"#)
            .policy_arns(["arn:p1", "arn:p2"])
            .tag("k1", "v 1")
            .tag("k2", "v2")
            .transitive_tag_keys(["k1"])
            .source_identity("alice")
            .mfa("arn:mfa", "123456");
        assert_eq!(
            body(request.form().unwrap()),
            "Action=AssumeRole&Version=2011-06-15\
             &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s%401\
             &DurationSeconds=900&ExternalId=ext+id&Policy=%7B%22a%22%3A1%7D\
             &PolicyArns.member.1.arn=arn%3Ap1&PolicyArns.member.2.arn=arn%3Ap2\
             &Tags.member.1.Key=k1&Tags.member.1.Value=v+1\
             &Tags.member.2.Key=k2&Tags.member.2.Value=v2\
             &TransitiveTagKeys.member.1=k1&SourceIdentity=alice\
             &SerialNumber=arn%3Amfa&TokenCode=123456"
        );
    }

    #[test]
    fn get_session_token_body() {
        assert_eq!(
            body(GetSessionToken::new().form().unwrap()),
            "Action=GetSessionToken&Version=2011-06-15"
        );
        let request = GetSessionToken::new()
            .duration(Duration::from_secs(3600))
            .mfa("SERIAL", "000111");
        assert_eq!(
            body(request.form().unwrap()),
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600&SerialNumber=SERIAL&TokenCode=000111"
        );
    }

    #[test]
    fn out_of_range_durations_and_bad_session_names_are_refused() {
        for d in [Duration::from_secs(899), Duration::from_millis(1_000_500)] {
            let err = GetSessionToken::new().duration(d).form().err().unwrap();
            assert!(err.to_string().contains("900 to 129600"), "{err}");
        }
        let err = AssumeRole::new("arn", "a")
            .form()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("2 to 64"), "{err}");
        let err = AssumeRole::new("arn", "has space")
            .form()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("session name"), "{err}");
    }

    #[test]
    fn mfa_code_is_not_in_debug() {
        let text = format!("{:?}", GetSessionToken::new().mfa("SERIAL", "987654"));
        assert!(
            text.contains("SERIAL") && !text.contains("987654"),
            "{text}"
        );
    }
}
