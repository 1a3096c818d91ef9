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

/// `error` and its causes, each once, joined by `: ` (for a log line or a reply's reason).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !text.is_empty() {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = next.source();
    }
    line
}
