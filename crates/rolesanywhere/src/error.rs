//! [`RolesAnywhereError`], and the service's own error inside it.
//!
//! `Display` names the step that failed; `source()` holds the cause. Reply bodies, which
//! may hold credentials, are never quoted: only a service error's `message`, cut short and
//! stripped of control characters.

use std::fmt;
use std::time::Duration;

/// A boxed cause.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a Roles Anywhere error type means.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceErrorKind {
    /// `AccessDeniedException`: the certificate, its chain, the signature, the profile or
    /// the role's trust policy was not accepted (the message says which).
    AccessDenied,
    /// `ValidationException`: a parameter is malformed or out of range.
    Validation,
    /// `ResourceNotFoundException`: no such trust anchor or profile.
    ResourceNotFound,
    /// `ThrottlingException` or HTTP 429: retried automatically.
    Throttling,
    /// `InternalServerException` or another 5xx: retried automatically.
    ServiceFailure,
    /// Any other type, as the service sent it.
    Other(String),
}

impl ServiceErrorKind {
    /// The kind for an `X-Amzn-ErrorType` value (`AccessDeniedException`, possibly followed
    /// by `:` and a URL) and the HTTP status.
    pub fn from_type(error_type: &str, status: u16) -> Self {
        let name = error_type.split(':').next().unwrap_or_default().trim();
        match name {
            "AccessDeniedException" => Self::AccessDenied,
            "ValidationException" => Self::Validation,
            "ResourceNotFoundException" => Self::ResourceNotFound,
            "ThrottlingException" | "TooManyRequestsException" => Self::Throttling,
            "InternalServerException" | "ServiceUnavailableException" => Self::ServiceFailure,
            "" if status == 429 => Self::Throttling,
            "" if status >= 500 => Self::ServiceFailure,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttling | Self::ServiceFailure)
    }

    fn name(&self) -> &str {
        match self {
            Self::AccessDenied => "AccessDeniedException",
            Self::Validation => "ValidationException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::Throttling => "ThrottlingException",
            Self::ServiceFailure => "InternalServerException",
            Self::Other(name) if name.is_empty() => "an error without a type",
            Self::Other(name) => name,
        }
    }
}

/// An error reply of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// What kind of error.
    pub kind: ServiceErrorKind,
    /// The HTTP status.
    pub status: u16,
    /// The service's `message`, at most 300 characters, without control characters.
    pub message: String,
    /// The request id (`x-amzn-RequestId`), for AWS support.
    pub request_id: Option<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.kind.name(), self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// Why `CreateSession` gave no credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolesAnywhereError {
    /// A setting is unusable: the message names it and the flag to fix it.
    #[error("{0}")]
    Config(String),
    /// The private key could not sign (the device failed, or refused the PIN).
    #[error("could not sign CreateSession with the certificate's private key")]
    Signing(#[source] sigv4_core::SignError),
    /// No reply: connection refused, TLS, DNS.
    #[error("CreateSession could not reach {endpoint} (after {attempts} attempts)")]
    Transport {
        /// Where it was sent.
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// The call took longer than the timeout, retries included.
    #[error("CreateSession took longer than {timeout:?} (after {attempts} attempts)")]
    Timeout {
        /// The call timeout.
        timeout: Duration,
        /// How many attempts were started.
        attempts: u32,
    },
    /// The service refused (the cause says why).
    #[error("IAM Roles Anywhere refused CreateSession")]
    Service(#[source] Box<ServiceError>),
    /// The reply is not one the service sends.
    #[error(
        "CreateSession's reply (HTTP {status}, content type {content_type}) is unusable: {detail}"
    )]
    Reply {
        /// The HTTP status.
        status: u16,
        /// Its content type, or `none`.
        content_type: String,
        /// What is wrong with it (never its text).
        detail: String,
    },
}

/// `text` fit to show: control characters dropped, at most 300 characters.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if text.chars().filter(|c| !c.is_control()).nth(300).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_read_with_or_without_a_url() {
        assert_eq!(
            ServiceErrorKind::from_type("AccessDeniedException:http://internal.amazon.com/x", 403),
            ServiceErrorKind::AccessDenied
        );
        assert_eq!(
            ServiceErrorKind::from_type("", 503),
            ServiceErrorKind::ServiceFailure
        );
        assert!(ServiceErrorKind::from_type("", 429).is_retryable());
        assert!(!ServiceErrorKind::from_type("ValidationException", 400).is_retryable());
    }

    #[test]
    fn messages_are_cut_and_cleaned() {
        assert_eq!(printable("a\u{1b}[31mb\nc"), "a[31mbc");
        let long = printable(&"x".repeat(1000));
        assert_eq!(long.chars().count(), 301);
    }
}
