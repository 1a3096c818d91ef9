#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod auth;
mod provider;

pub use auth::{DeviceIdentity, DeviceSigV4AuthScheme, DeviceSignError, SCHEME_ID};
pub use provider::{DEFAULT_REFRESH_AHEAD, StsCredentialsProvider, to_sdk_credentials};
pub use sts_client;
