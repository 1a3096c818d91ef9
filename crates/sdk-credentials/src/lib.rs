#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod auth;
mod provider;
mod source;

pub use auth::{DeviceIdentity, DeviceSigV4AuthScheme, DeviceSignError, SCHEME_ID};
pub use provider::{CredentialsProvider, DEFAULT_REFRESH_AHEAD};
pub use source::{
    CredentialSource, Expiring, Fetch, RolesAnywhereSource, SourceError, StsCall, StsSource,
};
pub use {rolesanywhere, sts_client};

/// `error` and its causes on one line (sigv4-core's joiner, re-exported).
pub use sigv4_core::error_chain;
