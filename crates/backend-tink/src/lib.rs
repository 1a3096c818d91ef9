#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`create_keyset`]: wrap `"AWS4" + secret` into a KMS-encrypted Tink JSON keyset.
//! - [`TinkRootKey`]: sigv4-core's [`RootKey`](sigv4_core::RootKey) on such a keyset.
//! - [`MasterKey`]: the KMS key (or any `tink_core::Aead`) that encrypts the keyset.
//! - `AwsKmsAead` (feature `aws-kms`) and `GcpKmsAead` (feature `gcp-kms`): our own
//!   `tink_core::Aead` implementations over the official AWS and Google Cloud SDKs.
#![forbid(unsafe_code)]

#[cfg(feature = "aws-kms")]
mod aws;
#[cfg(any(feature = "aws-kms", feature = "gcp-kms"))]
mod endpoint;
mod error;
#[cfg(feature = "gcp-kms")]
mod gcp;
mod key;
mod keyset;
mod master_key;
#[cfg(any(feature = "aws-kms", feature = "gcp-kms"))]
mod runtime;

#[cfg(feature = "aws-kms")]
pub use aws::{AwsKmsAead, AwsKmsOptions};
pub use error::{Error, TinkStep};
#[cfg(feature = "gcp-kms")]
pub use gcp::{GcpKmsAead, GcpKmsOptions};
#[cfg(feature = "insecure-cleartext-keyset")]
pub use key::insecure_cleartext_keyset;
pub use key::{TinkRootKey, create_keyset, create_keyset_with_associated_data};
pub use keyset::HMAC_KEY_TYPE_URL;
pub use master_key::MasterKey;
