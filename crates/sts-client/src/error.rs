//! The one error type of the crate, [`StsError`], and the typed STS service error inside it.
//!
//! Every message says which STS call failed and, where we can tell, what to do next. No
//! message ever contains a secret: the reply bodies that could hold credentials are never
//! quoted, only their HTTP status, content type and the parser's complaint.

use std::fmt;
use std::time::Duration;

/// What an STS error code means, so callers can match on it without comparing strings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceErrorKind {
    /// `AccessDenied`: the caller's policies (or the role's trust policy) do not allow this.
    AccessDenied,
    /// `ExpiredToken`: the session token used to sign has expired.
    ExpiredToken,
    /// `InvalidClientTokenId`: the access key id is unknown or inactive.
    InvalidClientTokenId,
    /// `SignatureDoesNotMatch`: the signature was made with a different secret.
    SignatureDoesNotMatch,
    /// `IncompleteSignature` / `MissingAuthenticationToken`: the request was not fully signed.
    IncompleteSignature,
    /// `RegionDisabledException`: STS is not activated in this region for the account.
    RegionDisabled,
    /// `MalformedPolicyDocument`: the inline policy or a policy ARN is invalid.
    MalformedPolicyDocument,
    /// `PackedPolicyTooLarge`: session policies and tags together are too large.
    PackedPolicyTooLarge,
    /// `Throttling` and its relatives: too many requests; retried automatically.
    Throttling,
    /// `RequestTimeTooSkewed` (and `RequestExpired`): the local clock is off.
    RequestTimeTooSkewed,
    /// `ValidationError` / `InvalidParameterValue`: a parameter is out of range or malformed.
    InvalidParameter,
    /// `InvalidIdentityToken`, `IDPRejectedClaim`, `IDPCommunicationError`: federation failed.
    IdentityProvider,
    /// `InternalFailure` / `ServiceUnavailable`: STS failed; retried automatically.
    ServiceFailure,
    /// Any other code, as STS sent it.
    Other(String),
}

impl ServiceErrorKind {
    /// The kind for an STS error code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "AccessDenied" | "AccessDeniedException" => Self::AccessDenied,
            "ExpiredToken" | "ExpiredTokenException" => Self::ExpiredToken,
            "InvalidClientTokenId" => Self::InvalidClientTokenId,
            "SignatureDoesNotMatch" => Self::SignatureDoesNotMatch,
            "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException" => Self::IncompleteSignature,
            "RegionDisabledException" => Self::RegionDisabled,
            "MalformedPolicyDocument" | "MalformedPolicyDocumentException" => {
                Self::MalformedPolicyDocument
            }
            "PackedPolicyTooLarge" | "PackedPolicyTooLargeException" => Self::PackedPolicyTooLarge,
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "PriorRequestNotComplete" => Self::Throttling,
            "RequestTimeTooSkewed" | "RequestExpired" | "RequestInTheFuture" => {
                Self::RequestTimeTooSkewed
            }
            "ValidationError"
            | "InvalidParameterValue"
            | "InvalidParameterCombination"
            | "MissingParameter"
            | "InvalidAction" => Self::InvalidParameter,
            "InvalidIdentityToken"
            | "IDPRejectedClaim"
            | "IDPCommunicationError"
            | "InvalidAuthorizationMessageException" => Self::IdentityProvider,
            "InternalFailure" | "InternalError" | "ServiceUnavailable" => Self::ServiceFailure,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether a request that failed this way may succeed if sent again unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttling | Self::ServiceFailure)
    }

    /// What the user should do about it.
    fn hint(&self) -> &'static str {
        match self {
            Self::AccessDenied => {
                "check the identity's IAM policies, and for AssumeRole the role's trust policy and ARN"
            }
            Self::ExpiredToken => "the signing credentials have expired: get new ones",
            Self::InvalidClientTokenId => {
                "the access key id is not known to AWS in this partition, or is inactive: check it and the region"
            }
            Self::SignatureDoesNotMatch => {
                "the key in the device does not belong to this access key id: check that the right secret was imported"
            }
            Self::IncompleteSignature => {
                "the request was not signed completely; this is a bug in keyhold"
            }
            Self::RegionDisabled => {
                "activate STS for this region in the account's IAM settings, or use another region"
            }
            Self::MalformedPolicyDocument => "fix the session policy document or policy ARNs",
            Self::PackedPolicyTooLarge => "use a shorter session policy or fewer session tags",
            Self::Throttling => "slow down, or try again in a while",
            Self::RequestTimeTooSkewed => "set the local clock right (for example with NTP)",
            Self::InvalidParameter => "check the request's parameters (durations, names, ARNs)",
            Self::IdentityProvider => "check the identity provider's configuration",
            Self::ServiceFailure => "STS had an internal failure; try again later",
            Self::Other(_) => "see the message from STS",
        }
    }
}

/// An error reply from STS: its code, message and request id.
#[derive(Clone, Debug)]
pub struct ServiceError {
    /// The code mapped to a kind.
    pub kind: ServiceErrorKind,
    /// The code exactly as STS sent it.
    pub code: String,
    /// STS's message.
    pub message: String,
    /// The request id (for AWS support), from the body or the `x-amzn-RequestId` header.
    pub request_id: Option<String>,
    /// `Sender` or `Receiver`, when STS says.
    pub error_type: Option<String>,
    /// The HTTP status of the reply.
    pub status: u16,
    /// The STS action that failed (`AssumeRole`, ...).
    pub action: &'static str,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "STS {} failed with {} (HTTP {}): {}",
            self.action, self.code, self.status, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        write!(f, "; {}", self.kind.hint())
    }
}

/// A boxed error cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an STS call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StsError {
    /// STS answered with an error document.
    #[error("{0}")]
    Service(Box<ServiceError>),
    /// STS could not be reached (connection refused, reset, DNS, TLS), after every attempt.
    #[error(
        "could not reach STS at {endpoint} for {action} after {attempts} attempt(s) (check the endpoint URL, the network and any proxy)"
    )]
    Transport {
        /// The STS action.
        action: &'static str,
        /// The URL that was tried.
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport failure.
        #[source]
        source: BoxError,
    },
    /// The whole call (all attempts) took longer than the call timeout.
    #[error(
        "STS {action} did not finish within the call timeout of {timeout:?} ({attempts} attempt(s)); check the network and that the endpoint is STS"
    )]
    Timeout {
        /// The STS action.
        action: &'static str,
        /// The call timeout.
        timeout: Duration,
        /// Attempts started before the time ran out.
        attempts: u32,
    },
    /// The reply could not be read as the STS document it should be.
    #[error(
        "could not read the reply to STS {action} (HTTP {status}, content-type {content_type}): {detail}; is the endpoint really STS?"
    )]
    Parse {
        /// The STS action.
        action: &'static str,
        /// The HTTP status of the reply.
        status: u16,
        /// Its `Content-Type`, or `none`.
        content_type: String,
        /// What was wrong with it.
        detail: String,
        /// The parser's or body reader's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The reply's credentials expire in the past, or later than the duration asked for.
    #[error(
        "the reply to STS {action} has credentials whose Expiration {expiration} {reason}; is the endpoint really STS, and the local clock right?"
    )]
    Expiration {
        /// The STS action.
        action: &'static str,
        /// The expiry the reply gave.
        expiration: time::OffsetDateTime,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The device (or software key) could not sign the request.
    #[error("could not sign the STS {action} request")]
    Signing {
        /// The STS action.
        action: &'static str,
        /// The signer's error (the device's error is its source).
        #[source]
        source: sigv4_core::SignError,
    },
    /// The client or a request is configured wrongly.
    #[error("invalid STS configuration: {0}")]
    Config(String),
}

impl StsError {
    /// The STS error code (`AccessDenied`, ...), for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The STS request id, for service errors that carried one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Service(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// The typed service error, if STS answered with one.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The kind of service error, if STS answered with one.
    pub fn kind(&self) -> Option<&ServiceErrorKind> {
        self.service_error().map(|e| &e.kind)
    }

    /// Whether retrying the whole call later may help (throttling, 5xx, network, timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Service(e) => e.kind.is_retryable() || e.status >= 500,
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Signing { source, .. } => matches!(
                source,
                sigv4_core::SignError::Key(k)
                    if k.kind() == sigv4_core::KeyErrorKind::Unavailable
            ),
            Self::Parse { .. } | Self::Expiration { .. } | Self::Config(_) => false,
        }
    }
}
