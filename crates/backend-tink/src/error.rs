//! The crate's one error type, and how each failure maps onto sigv4-core's coarse
//! [`KeyErrorKind`] at the seam.
//!
//! Messages name what failed and what to do next. No message ever contains key material:
//! KMS replies are quoted (they never echo plaintext), keyset contents are described by key
//! id, type URL and parameters only.

use std::fmt;

use sigv4_core::{KeyError, KeyErrorKind};

/// A boxed underlying cause.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong creating, opening or using a KMS-wrapped Tink keyset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The KMS key URI is malformed.
    #[error("invalid KMS key URI '{uri}': {reason}")]
    InvalidKeyUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it and what it should look like.
        reason: String,
    },

    /// The KMS key URI names a KMS this build was compiled without.
    #[error(
        "KMS key URI '{uri}' needs backend-tink's '{feature}' feature, which this build does not \
         have: rebuild with --features {feature}"
    )]
    KmsNotBuiltIn {
        /// The URI as given.
        uri: String,
        /// The cargo feature that adds it.
        feature: &'static str,
    },

    /// Setting up the KMS client failed (runtime, configuration, credentials chain).
    #[error("could not set up the KMS client for '{uri}': {reason}")]
    KmsSetup {
        /// The KMS key URI.
        uri: String,
        /// What failed.
        reason: String,
        /// The underlying cause, if there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The KMS endpoint configured is refused before anything is sent to it: not a URL, or
    /// plain http to another machine without `allow_insecure_http`.
    #[error("the KMS endpoint for '{uri}' ({from}) is refused: {reason}")]
    KmsEndpointRefused {
        /// The KMS key URI.
        uri: String,
        /// Where the endpoint came from (an option, an environment variable, a profile).
        from: String,
        /// Why it is refused, naming the fix.
        reason: String,
    },

    /// The KMS says the key does not exist (or is not visible to these credentials).
    #[error(
        "KMS key '{uri}' does not exist ({operation}: {code}: {message}): check the key URI, \
         its region and account, and that the key has not been deleted"
    )]
    KmsKeyNotFound {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The key exists but cannot be used now (disabled, pending deletion, wrong key usage).
    #[error(
        "KMS key '{uri}' cannot be used for {operation} ({code}: {message}): enable the key, \
         cancel its deletion, or use a symmetric ENCRYPT_DECRYPT key"
    )]
    KmsKeyUnusable {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The keyset was encrypted under a different KMS key than the one given.
    #[error(
        "the keyset was not encrypted under KMS key '{uri}' ({detail}): open it with the key URI \
         it was created with"
    )]
    WrongKmsKey {
        /// The KMS key URI given.
        uri: String,
        /// What showed it: the service's error, or the key id in its reply.
        detail: String,
    },

    /// The KMS refused the call (permissions, or a ciphertext that belongs to a key these
    /// credentials may not use).
    #[error(
        "KMS refused {operation} with key '{uri}' ({code}: {message}): check that these \
         credentials may use the key, and that the keyset was encrypted under this key"
    )]
    KmsDenied {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The KMS could not decrypt the keyset: the ciphertext is damaged or the associated data
    /// differs from the one it was encrypted with.
    #[error(
        "KMS key '{uri}' could not decrypt the keyset ({code}: {message}): the encryptedKeyset \
         is corrupted, or it was written with different associated data; restore the keyset \
         file from a backup"
    )]
    KeysetCiphertextInvalid {
        /// The KMS key URI.
        uri: String,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The KMS could not be reached or did not answer in time.
    #[error("KMS {operation} with key '{uri}' could not reach the service: {reason}")]
    KmsUnavailable {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// What happened (timeout, connection refused, ...).
        reason: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },

    /// Any other error the KMS returned.
    #[error("KMS {operation} with key '{uri}' failed ({code}: {message})")]
    Kms {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// The service's error code, or the HTTP status when there is none.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The KMS answered, but the answer fails a check (missing field, checksum, key name).
    #[error("KMS {operation} with key '{uri}' returned an unusable reply: {reason}")]
    KmsReply {
        /// The KMS key URI.
        uri: String,
        /// `Encrypt` or `Decrypt`.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A caller-supplied master key (any other `tink_core::Aead`) failed.
    #[error("master key '{name}' failed to {operation} the keyset: {message}")]
    MasterKey {
        /// The name the master key was given.
        name: String,
        /// `encrypt` or `decrypt`.
        operation: &'static str,
        /// Tink's error, as text (Tink errors carry no structured cause).
        message: String,
    },

    /// The input is not an encrypted Tink JSON keyset.
    #[error(
        "not an encrypted Tink JSON keyset ({reason}): expected an object with a base64 \
         'encryptedKeyset' and a 'keysetInfo', as written by Tink or tinkey"
    )]
    KeysetJson {
        /// What the parser said.
        reason: String,
    },

    /// The keyset decrypted, but what came out is not a Tink keyset.
    #[error(
        "the keyset decrypted under '{uri}' but is not a Tink keyset protobuf: the file was not \
         written by Tink, or the master key is not the one it was written with"
    )]
    KeysetDecode {
        /// The master key URI or name.
        uri: String,
    },

    /// The keyset names no usable primary key.
    #[error("the keyset's primary key {primary_key_id} {reason}")]
    NoPrimaryKey {
        /// The keyset's `primaryKeyId`.
        primary_key_id: u32,
        /// What is wrong ("is not in the keyset", "is DISABLED").
        reason: String,
    },

    /// The primary key is not an HMAC key.
    #[error(
        "the keyset's primary key {key_id} is a {type_url}, not an HMAC key: keyhold needs a \
         keyset with an HMAC-SHA256 key (32-byte tag, RAW prefix) holding \"AWS4\" + the secret \
         access key; create one with keyhold"
    )]
    NotHmac {
        /// The primary key id.
        key_id: u32,
        /// The key's type URL.
        type_url: String,
    },

    /// The primary HMAC key has parameters SigV4 cannot use.
    #[error(
        "the keyset's primary HMAC key {key_id} is unsuitable for SigV4: {reason}; keyhold needs \
         HMAC-SHA256 with a 32-byte tag and RAW output prefix, holding \"AWS4\" + the secret \
         access key"
    )]
    UnsuitableHmacKey {
        /// The primary key id.
        key_id: u32,
        /// Which parameter is wrong (never the key value).
        reason: String,
    },

    /// Tink itself failed (building the MAC primitive, computing the MAC).
    #[error("Tink failed to {step}: {message}")]
    Tink {
        /// What keyhold was doing.
        step: TinkStep,
        /// Tink's error, as text.
        message: String,
    },

    /// After creating a keyset, decrypting it again did not give the secret back.
    #[error(
        "the keyset written under '{uri}' did not read back to the same key; it was not returned"
    )]
    CreateCheckFailed {
        /// The master key URI or name.
        uri: String,
    },

    /// Reading or writing a keyset file failed.
    #[error("could not {operation} keyset file {}", path.display())]
    Io {
        /// `read` or `write`.
        operation: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The coarse kind sigv4-core's callers decide on.
    pub fn kind(&self) -> KeyErrorKind {
        match self {
            Self::InvalidKeyUri { .. } | Self::KmsNotBuiltIn { .. } => KeyErrorKind::NotFound,
            Self::KmsSetup { .. } | Self::KmsUnavailable { .. } => KeyErrorKind::Unavailable,
            Self::KmsEndpointRefused { .. } => KeyErrorKind::Unsuitable,
            Self::KmsKeyNotFound { .. } | Self::Io { .. } => KeyErrorKind::NotFound,
            Self::KmsDenied { .. } | Self::WrongKmsKey { .. } => KeyErrorKind::Denied,
            Self::KmsKeyUnusable { .. }
            | Self::NoPrimaryKey { .. }
            | Self::NotHmac { .. }
            | Self::UnsuitableHmacKey { .. }
            | Self::KeysetJson { .. }
            | Self::KeysetDecode { .. }
            | Self::KeysetCiphertextInvalid { .. } => KeyErrorKind::Unsuitable,
            Self::Kms { .. }
            | Self::KmsReply { .. }
            | Self::MasterKey { .. }
            | Self::Tink { .. }
            | Self::CreateCheckFailed { .. } => KeyErrorKind::Device,
        }
    }

    /// A Tink failure during `step`.
    pub(crate) fn tink(step: TinkStep, error: &tink_core::TinkError) -> Self {
        Self::Tink {
            step,
            message: error.to_string(),
        }
    }
}

/// What keyhold asked of Tink when it failed, typed so that callers can tell a keyset Tink
/// cannot read from a key that cannot compute an HMAC. (Tink's errors are text, and not
/// `Sync`, so the message is kept as text.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TinkStep {
    /// Reading the decrypted keyset into a keyset handle.
    LoadKeyset,
    /// Building the MAC primitive from the handle.
    BuildPrimitive,
    /// Computing HMAC-SHA256 (kDate).
    ComputeHmac,
}

impl fmt::Display for TinkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LoadKeyset => "load the keyset",
            Self::BuildPrimitive => "build the HMAC primitive",
            Self::ComputeHmac => "compute HMAC-SHA256",
        })
    }
}

impl From<Error> for KeyError {
    fn from(error: Error) -> Self {
        KeyError::with_source(
            error.kind(),
            "the Tink keyset could not compute kDate",
            error,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do_and_convert_at_the_seam() {
        let err = Error::NotHmac {
            key_id: 7,
            type_url: "type.googleapis.com/google.crypto.tink.AesGcmKey".into(),
        };
        let text = err.to_string();
        assert!(text.contains("AesGcmKey") && text.contains("create one with keyhold"));
        let key_error = KeyError::from(err);
        assert_eq!(key_error.kind(), KeyErrorKind::Unsuitable);
        assert!(std::error::Error::source(&key_error).is_some());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
