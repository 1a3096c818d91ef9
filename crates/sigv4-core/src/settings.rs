//! How a request is signed: path encoding, normalization, session token, excluded headers.

use std::borrow::Cow;

/// How the canonical path is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathEncoding {
    /// Percent-encode the (already encoded) wire path again: every AWS service but S3.
    Double,
    /// Use the wire path as it is: S3.
    Single,
}

/// What to do with a session token (temporary credentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionTokenMode {
    /// Add `X-Amz-Security-Token` and sign it (the default; what AWS SDKs do).
    Signed,
    /// Add it to the request after signing, outside the signature (some services, such as
    /// IoT's presigned WebSocket URLs, require this).
    AppendedOnly,
}

/// Signing options. [`SigningSettings::default`] is right for every service but S3;
/// [`SigningSettings::s3`] is right for S3.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningSettings {
    /// Path encoding (double by default, single for S3).
    pub path_encoding: PathEncoding,
    /// Remove `.`/`..` and empty path segments before signing (on by default, off for S3).
    pub normalize_path: bool,
    /// Whether a session token is signed or only added.
    pub session_token: SessionTokenMode,
    /// Add an `x-amz-content-sha256` header with the payload hash (and sign it). S3 requires it.
    pub content_sha256_header: bool,
    /// Lowercase names of headers never signed, because proxies change them or the signature
    /// itself goes there. Default: `authorization`, `user-agent`, `x-amzn-trace-id`,
    /// `transfer-encoding`.
    pub excluded_headers: Vec<Cow<'static, str>>,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            path_encoding: PathEncoding::Double,
            normalize_path: true,
            session_token: SessionTokenMode::Signed,
            content_sha256_header: false,
            excluded_headers: vec![
                Cow::Borrowed("authorization"),
                Cow::Borrowed("user-agent"),
                Cow::Borrowed("x-amzn-trace-id"),
                Cow::Borrowed("transfer-encoding"),
            ],
        }
    }
}

impl SigningSettings {
    /// The settings S3 needs: single path encoding, no normalization, `x-amz-content-sha256`.
    pub fn s3() -> Self {
        Self {
            path_encoding: PathEncoding::Single,
            normalize_path: false,
            content_sha256_header: true,
            ..Self::default()
        }
    }
}
