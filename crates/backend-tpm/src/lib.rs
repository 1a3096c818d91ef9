//! keyhold's TPM 2.0 backend: the SigV4 root key `"AWS4" + secret` as a keyedhash HMAC key
//! inside a TPM, so that only `kDate` ever leaves it.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(feature = "duplicate")]
mod duplicate;
mod error;
mod import;
mod key;
mod keyfile;
mod policy;
mod sessions;
mod signing;
mod signing_keygen;
mod templates;
mod tpm;
mod transport;

#[cfg(feature = "duplicate")]
pub use duplicate::{EkPublic, wrap_for_tpm};
pub use error::{TpmError, TpmStage};
pub use import::{ImportOptions, ImportedKey};
pub use key::{KeyAuth, TpmRootKey};
pub use keyfile::{KeyKind, OWNER_STANDARD_PRIMARY, PolicyCommand, TpmKeyFile};
pub use policy::{PcrSelection, PolicyAuthorizer};
pub use signing::TpmX509Key;
pub use signing_keygen::template as signing_key_template;
pub use templates::{hmac_key as hmac_key_template, storage_primary as storage_primary_template};
pub use tpm::{
    EK_ECCP256_HANDLE, EK_RSA2048_HANDLE, EkAlgorithm, SessionEncryption, Tpm, parse_hex,
};
pub use transport::resolve_tcti;
/// The tss-esapi this crate is built on, for [`PolicyAuthorizer`] implementations.
pub use tss_esapi;
