#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Pure SigV4 and the [`RootKey`] seam (always present).
pub use sigv4_core as sigv4;
pub use sigv4_core::{
    DateKey, DateStamp, KeyError, KeyErrorKind, RootKey, RootSecret, SignError, Signer,
    SigningParams, SoftwareRootKey,
};

/// The PKCS#11 backend (feature `pkcs11`): the secret as a non-extractable HMAC key in a token.
#[cfg(feature = "pkcs11")]
pub use backend_pkcs11 as pkcs11;

/// The TPM 2.0 backend (feature `tpm`): the secret as a keyedhash HMAC key in a TPM.
#[cfg(feature = "tpm")]
pub use backend_tpm as tpm;

/// The Tink backend (feature `tink`): the secret in a KMS-wrapped Tink keyset.
#[cfg(feature = "tink")]
pub use backend_tink as tink;
/// The Vault / OpenBao backend (feature `vault`): the secret as a non-exportable transit HMAC
/// key.
#[cfg(feature = "vault")]
pub use backend_vault as vault;

/// STS calls signed by the device key (feature `sts`).
#[cfg(feature = "sts")]
pub use sts_client as sts;

/// Credentials provider and direct-signing auth scheme for the AWS SDK for Rust (feature `sdk`).
#[cfg(feature = "sdk")]
pub use sdk_credentials as sdk;

/// IAM Roles Anywhere: temporary credentials from an X.509 certificate and its private key.
#[cfg(feature = "rolesanywhere")]
pub use rolesanywhere;
