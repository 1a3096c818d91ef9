//! The names SigV4 itself uses, each spelled once: headers it adds or signs, the query
//! parameters of a presigned URL, the algorithms, and the scope's terminator. Header names
//! are lowercase (as they are signed); query parameter names are as AWS sends them.

/// The signing time, `yyyymmddThhmmssZ`.
pub const X_AMZ_DATE: &str = "x-amz-date";
/// The session token of temporary credentials.
pub const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
/// The payload hash, which S3 wants as a header too.
pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The host, always signed.
pub const HOST: &str = "host";
/// Where a header signature goes.
pub const AUTHORIZATION: &str = "authorization";
/// IAM Roles Anywhere: the signing certificate, base64 DER.
pub const X_AMZ_X509: &str = "x-amz-x509";
/// IAM Roles Anywhere: the intermediate certificates, base64 DER, comma-separated.
pub const X_AMZ_X509_CHAIN: &str = "x-amz-x509-chain";

/// Presigned URL query parameters.
pub mod query {
    /// The algorithm.
    pub const ALGORITHM: &str = "X-Amz-Algorithm";
    /// `access key id/scope`.
    pub const CREDENTIAL: &str = "X-Amz-Credential";
    /// The signing time.
    pub const DATE: &str = "X-Amz-Date";
    /// Validity in seconds.
    pub const EXPIRES: &str = "X-Amz-Expires";
    /// The signed header names.
    pub const SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
    /// The signature.
    pub const SIGNATURE: &str = "X-Amz-Signature";
    /// The session token.
    pub const SECURITY_TOKEN: &str = "X-Amz-Security-Token";
}

/// The last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";
/// What the secret access key is prefixed with to make the first HMAC key.
pub const SECRET_PREFIX: &str = "AWS4";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string: the payload hash of every request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
