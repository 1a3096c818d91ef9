#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod endpoint;
mod error;
mod request;
mod response;

pub use client::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, EXPIRATION_SKEW,
    StsClient, StsClientBuilder,
};
pub use endpoint::{parse_endpoint_url, regional_endpoint};
pub use error::{BoxError, ServiceError, ServiceErrorKind, StsError};
pub use request::{AssumeRole, GetSessionToken};
pub use response::{AssumedRole, AssumedRoleUser, CallerIdentity, Credentials};
