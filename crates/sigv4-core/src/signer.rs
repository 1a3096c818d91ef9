//! The signer: canonical request, string to sign, key chain and signature, applied to an
//! `http::Request` as an `Authorization` header or as a presigned URL.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cache::{CachePolicy, DerivedKeyCache, SigningKey};
use crate::canonical::{
    CanonicalError, CanonicalLayout, CanonicalRequest, Placement, SignableRequest, names,
    size_hint, write_canonical_request,
};
use crate::encoding::{amz_date, hex32, percent_encode_into};
use crate::hmac256::{BLOCK, HmacKey, bytes32, bytes32_mut, sha256};
use crate::key::{DateStamp, KeyError, RootKey};
use crate::settings::SigningSettings;

/// The payload hash of a request whose body is not signed (S3 presigned URLs, streaming).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SHA-256 of the empty string: the payload hash of every request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The longest validity AWS accepts for a presigned URL: seven days.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// What stands for the body in the canonical request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// Hash these bytes (SHA-256).
    Bytes(&'a [u8]),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// A hash computed elsewhere (64 lowercase hex digits), or another SigV4 literal such as
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    Precomputed(&'a str),
}

/// Region, service and time of one signature.
#[derive(Clone, Debug)]
pub struct SigningParams<'a> {
    region: &'a str,
    service: &'a str,
    time: Option<time::OffsetDateTime>,
    payload: Option<Payload<'a>>,
}

impl<'a> SigningParams<'a> {
    /// Signs for `region` and `service` (the SigV4 signing name, e.g. `sts`, `s3`) now.
    pub fn new(region: &'a str, service: &'a str) -> Self {
        Self {
            region,
            service,
            time: None,
            payload: None,
        }
    }

    /// Signs as of `time` instead of now.
    pub fn at(mut self, time: time::OffsetDateTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Uses this payload instead of hashing the request body.
    pub fn with_payload(mut self, payload: Payload<'a>) -> Self {
        self.payload = Some(payload);
        self
    }

    /// The signing time: the one given to [`at`](Self::at), else now.
    pub fn time(&self) -> time::OffsetDateTime {
        self.time.unwrap_or_else(time::OffsetDateTime::now_utc)
    }

    fn amz_date(&self) -> Result<[u8; 16], SignError> {
        let time = self.time();
        amz_date(time).ok_or(SignError::InvalidTime(time))
    }
}

/// Step two of SigV4, borrowed from a [`SigningOutput`]. `Display` is exactly the signed
/// text: `AWS4-HMAC-SHA256\n` + date + `\n` + scope + `\n` + canonical request hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StringToSign<'o> {
    text: &'o [u8],
}

/// Writing and reading the string to sign, whose fixed-length start puts the date and the
/// scope at known offsets.
mod string_to_sign {
    use super::{DateStamp, names};

    /// Where the 16-byte `X-Amz-Date` value starts (after the algorithm and its newline).
    pub(super) const DATE_AT: usize = names::ALGORITHM.len() + 1;
    /// Where the scope starts (after the date and its newline).
    pub(super) const SCOPE_AT: usize = DATE_AT + 17;
    /// The hash line: a newline and 64 hex digits.
    pub(super) const HASH_LINE: usize = 65;

    pub(super) struct Scope<'a> {
        pub(super) date: &'a DateStamp,
        pub(super) region: &'a str,
        pub(super) service: &'a str,
    }

    /// Appends `yyyymmdd/region/service/aws4_request`.
    pub(super) fn write_scope(out: &mut Vec<u8>, scope: &Scope<'_>) {
        out.extend_from_slice(scope.date.as_bytes());
        write_scope_rest(out, scope);
    }

    /// The scope after its date: `/region/service/aws4_request`.
    fn write_scope_rest(out: &mut Vec<u8>, scope: &Scope<'_>) {
        out.push(b'/');
        out.extend_from_slice(scope.region.as_bytes());
        out.push(b'/');
        out.extend_from_slice(scope.service.as_bytes());
        out.extend_from_slice(b"/aws4_request");
    }

    /// Appends the string to sign up to its last line, the canonical request's hash, which
    /// the caller appends (as hex) once known. Every piece but the region and service has a
    /// length known at compile time, so those appends are inlined moves, not `memcpy` calls.
    pub(super) fn write_head(out: &mut Vec<u8>, amz_date: &[u8; 16], scope: &Scope<'_>) {
        out.extend_from_slice(names::ALGORITHM.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(amz_date);
        out.push(b'\n');
        out.extend_from_slice(scope.date.as_bytes());
        write_scope_rest(out, scope);
        out.push(b'\n');
    }
}

impl<'o> StringToSign<'o> {
    fn scope_bytes(&self) -> &'o [u8] {
        &self.text[string_to_sign::SCOPE_AT..self.text.len() - string_to_sign::HASH_LINE]
    }

    fn amz_date(&self) -> &'o [u8] {
        &self.text[string_to_sign::DATE_AT..string_to_sign::DATE_AT + 16]
    }

    /// The exact bytes that are signed.
    pub fn as_bytes(&self) -> &'o [u8] {
        self.text
    }

    /// The credential scope, `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> &'o str {
        // Built from a date, region and service that are all `&str`.
        std::str::from_utf8(self.scope_bytes()).unwrap_or_default()
    }
}

impl fmt::Display for StringToSign<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every part is ASCII: a fixed literal, digits, the scope, hex.
        f.write_str(&String::from_utf8_lossy(self.text))
    }
}

impl fmt::Debug for StringToSign<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StringToSign({:?})", self.to_string())
    }
}

/// Step three of SigV4: 32 bytes, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl Signature {
    /// The raw signature.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&hex32(&self.0)))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// Everything one signature produced: the three stages, and what goes on the request.
#[derive(Clone)]
pub struct SigningOutput {
    /// The canonical request, the string to sign, then the access key id: one allocation.
    text: Vec<u8>,
    /// Where the string to sign starts in `text`.
    string_to_sign_at: usize,
    /// Where the access key id starts in `text`.
    access_key_id_at: usize,
    canonical_layout: CanonicalLayout,
    signature: Signature,
    session_token: Option<SessionToken>,
    kind: OutputKind,
}

#[derive(Clone, Copy, Debug)]
enum OutputKind {
    Headers { content_sha256: bool },
    Presigned { expires_secs: u64 },
}

/// A session token, shared between a signer and its outputs; zeroized when the last goes.
#[derive(Clone)]
struct SessionToken(Arc<Zeroizing<String>>);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// A header (or, presigned, a query parameter) the signature adds to the request.
#[derive(Clone)]
pub struct Addition {
    name: &'static str,
    value: String,
    sensitive: bool,
}

impl Addition {
    /// Header or query parameter name.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Its value (unencoded). The session token is one of these: keep it out of logs.
    pub fn value(&self) -> &str {
        &self.value
    }
    /// Whether the value is a credential (the session token).
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }
}

impl fmt::Debug for Addition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.sensitive {
            "** redacted **"
        } else {
            &self.value
        };
        write!(f, "{}: {value}", self.name)
    }
}

impl fmt::Debug for SigningOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningOutput")
            .field("canonical_request", &self.canonical_request())
            .field("string_to_sign", &self.string_to_sign())
            .field("signature", &self.signature)
            .field("access_key_id", &self.access_key_id())
            .field("session_token", &self.session_token)
            .field("kind", &self.kind)
            .finish()
    }
}

impl SigningOutput {
    /// Step one.
    pub fn canonical_request(&self) -> CanonicalRequest<'_> {
        CanonicalRequest::new(&self.text[..self.string_to_sign_at], &self.canonical_layout)
    }
    /// Step two.
    pub fn string_to_sign(&self) -> StringToSign<'_> {
        StringToSign {
            text: &self.text[self.string_to_sign_at..self.access_key_id_at],
        }
    }

    /// The access key id the signature was made for.
    pub fn access_key_id(&self) -> &str {
        // Copied from the signer's `String`.
        std::str::from_utf8(&self.text[self.access_key_id_at..]).unwrap_or_default()
    }
    /// Step three.
    pub fn signature(&self) -> Signature {
        self.signature
    }
    /// Whether this is a presigned-URL signature.
    pub fn is_presigned(&self) -> bool {
        matches!(self.kind, OutputKind::Presigned { .. })
    }

    /// The `Authorization` header value (`None` for a presigned URL).
    pub fn authorization(&self) -> Option<String> {
        match self.kind {
            OutputKind::Headers { .. } => String::from_utf8(self.authorization_bytes()).ok(),
            OutputKind::Presigned { .. } => None,
        }
    }

    fn authorization_bytes(&self) -> Vec<u8> {
        const CREDENTIAL: &[u8] = b" Credential=";
        const SIGNED_HEADERS: &[u8] = b", SignedHeaders=";
        const SIGNATURE: &[u8] = b", Signature=";
        let parts = [
            names::ALGORITHM.as_bytes(),
            CREDENTIAL,
            &self.text[self.access_key_id_at..],
            b"/",
            self.string_to_sign().scope_bytes(),
            SIGNED_HEADERS,
            self.canonical_request().signed_headers_bytes(),
            SIGNATURE,
            &hex32(&self.signature.0),
        ];
        // Exactly the length: a Vec with spare capacity costs `Bytes::from` (and so the
        // header value) a second allocation.
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        parts.iter().for_each(|part| out.extend_from_slice(part));
        out
    }

    /// Headers to set (header signing) or query parameters to append (presigning), in the
    /// order they are added.
    pub fn additions(&self) -> Vec<Addition> {
        let add = |name, value: &str| Addition {
            name,
            value: value.to_owned(),
            sensitive: false,
        };
        let date = std::str::from_utf8(self.string_to_sign().amz_date()).unwrap_or_default();
        let mut out = Vec::with_capacity(7);
        let token_name = match self.kind {
            OutputKind::Headers { content_sha256 } => {
                out.push(add(names::X_AMZ_DATE, date));
                out.push(Addition {
                    name: "authorization",
                    value: self.authorization().unwrap_or_default(),
                    sensitive: false,
                });
                if content_sha256 {
                    let hash = self.canonical_request().payload_hash();
                    out.push(add(names::X_AMZ_CONTENT_SHA256, hash));
                }
                names::X_AMZ_SECURITY_TOKEN
            }
            OutputKind::Presigned { expires_secs } => {
                let credential =
                    format!("{}/{}", self.access_key_id(), self.string_to_sign().scope());
                out.push(add("X-Amz-Algorithm", names::ALGORITHM));
                out.push(add("X-Amz-Credential", &credential));
                out.push(add("X-Amz-Date", date));
                out.push(add("X-Amz-Expires", &expires_secs.to_string()));
                out.push(add(
                    "X-Amz-SignedHeaders",
                    self.canonical_request().signed_headers(),
                ));
                out.push(add("X-Amz-Signature", &self.signature.to_string()));
                "X-Amz-Security-Token"
            }
        };
        if let Some(token) = &self.session_token {
            out.push(Addition {
                name: token_name,
                value: token.0.to_string(),
                sensitive: true,
            });
        }
        out
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Neither a `host` header nor an authority in the URI.
    #[error(
        "the request has no host: use an absolute URI (https://host/path) or set a Host header"
    )]
    NoHost,
    /// A header name that HTTP does not allow.
    #[error("header name {0:?} is not a valid HTTP header name")]
    InvalidHeaderName(String),
    /// A presigned-URL validity outside what AWS accepts.
    #[error("presigned URL validity must be 1 to 604800 seconds (7 days); got {0} s")]
    InvalidExpiry(u64),
    /// A precomputed payload hash that can't be placed in a canonical request.
    #[error(
        "precomputed payload hash must be 64 hex digits or a SigV4 literal such as UNSIGNED-PAYLOAD"
    )]
    InvalidPayloadHash,
    /// The session token can't be sent as a header value.
    #[error("the session token contains characters not allowed in an HTTP header")]
    InvalidSessionToken,
    /// The presigned URI could not be built (the original URI was unusual).
    #[error("could not build the presigned URI: {0}")]
    InvalidUri(#[source] http::Error),
    /// A signing time that `X-Amz-Date` cannot express (outside the years 0000 to 9999 UTC).
    #[error("the signing time {0} is outside the years 0000 to 9999 (UTC) that SigV4 can express")]
    InvalidTime(time::OffsetDateTime),
    /// The root key failed to compute `kDate`.
    #[error("{0}")]
    RootKey(#[source] KeyError),
}

impl From<CanonicalError> for SignError {
    fn from(e: CanonicalError) -> Self {
        match e {
            CanonicalError::NoHost => SignError::NoHost,
            CanonicalError::BadHeaderName(name) => SignError::InvalidHeaderName(name),
        }
    }
}

/// Signs requests as one AWS identity: an access key id and the [`RootKey`] holding its
/// secret, with an optional session token.
///
/// Cheap to share: wrap it in an `Arc` and sign from many threads.
pub struct Signer {
    access_key_id: Arc<str>,
    session_token: Option<SessionToken>,
    root_key: Arc<dyn RootKey>,
    settings: SigningSettings,
    cache_policy: CachePolicy,
    cache: Arc<DerivedKeyCache>,
    root_key_calls: AtomicU64,
}

impl Signer {
    /// A signer for `access_key_id` whose secret is held by `root_key`, with default
    /// settings (every service but S3) and a per-scope key cache.
    pub fn new(access_key_id: impl Into<String>, root_key: impl RootKey + 'static) -> Self {
        Self::from_arc(access_key_id, Arc::new(root_key))
    }

    /// As [`new`](Self::new), sharing a root key already behind an `Arc`.
    pub fn from_arc(access_key_id: impl Into<String>, root_key: Arc<dyn RootKey>) -> Self {
        Self {
            access_key_id: Arc::from(access_key_id.into()),
            session_token: None,
            root_key,
            settings: SigningSettings::default(),
            cache_policy: CachePolicy::default(),
            cache: Arc::new(DerivedKeyCache::default()),
            root_key_calls: AtomicU64::new(0),
        }
    }

    /// Adds a session token (temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(SessionToken(Arc::new(Zeroizing::new(token.into()))));
        self
    }

    /// Replaces the signing settings (see [`SigningSettings::s3`]).
    pub fn with_settings(mut self, settings: SigningSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets whether derived keys are cached.
    pub fn with_cache_policy(mut self, policy: CachePolicy) -> Self {
        self.cache_policy = policy;
        self
    }

    /// Shares a derived-key cache with other signers.
    pub fn with_cache(mut self, cache: Arc<DerivedKeyCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The access key id signatures are made for.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The settings in use.
    pub fn settings(&self) -> &SigningSettings {
        &self.settings
    }

    /// How many times this signer has called [`RootKey::date_key`] (the device).
    pub fn root_key_calls(&self) -> u64 {
        self.root_key_calls.load(Ordering::Relaxed)
    }

    /// Derives the signing key for the scope of `params` (its day, region and service)
    /// through the root key, unless the cache already holds it, so that later signatures in
    /// that scope make no device call. For callers that must not block when they sign (an
    /// async runtime's signing hook): call this first where blocking is allowed. With
    /// [`CachePolicy::Off`] there is nothing to keep, and this does nothing.
    pub fn prepare(&self, params: &SigningParams<'_>) -> Result<(), SignError> {
        if self.cache_policy == CachePolicy::Off {
            return Ok(());
        }
        let date = DateStamp::from_amz_date(&params.amz_date()?);
        self.signing_key(&date, params.region, params.service)
            .map(drop)
    }

    /// Signs `request` in place with an `Authorization` header, hashing its body (unless the
    /// params give a payload).
    pub fn sign_request<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        params: &SigningParams<'_>,
    ) -> Result<SigningOutput, SignError> {
        let payload = params
            .payload
            .unwrap_or(Payload::Bytes(request.body().as_ref()));
        let signable =
            SignableRequest::from_http_parts(request.method(), request.uri(), request.headers());
        let output = self.sign_signable(&signable, payload, params, None)?;
        apply_headers(request.headers_mut(), &output)?;
        Ok(output)
    }

    /// Turns `request` into a presigned request (signature in the query), valid for
    /// `expires_in`. Its body is hashed, as for [`Signer::sign_request`], unless the params
    /// give a payload (S3's presigned URLs usually sign [`Payload::Unsigned`]).
    pub fn presign_request<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        params: &SigningParams<'_>,
        expires_in: Duration,
    ) -> Result<SigningOutput, SignError> {
        let payload = params
            .payload
            .unwrap_or(Payload::Bytes(request.body().as_ref()));
        let (method, uri, headers) = (request.method(), request.uri(), request.headers());
        let signable = SignableRequest::from_http_parts(method, uri, headers);
        let output = self.sign_signable(&signable, payload, params, Some(expires_in))?;
        *request.uri_mut() = presigned_uri(request.uri(), &output)?;
        Ok(output)
    }

    /// Signs request parts with an `Authorization` header (for bodies that are not bytes).
    pub fn sign_parts(
        &self,
        parts: &mut http::request::Parts,
        payload: Payload<'_>,
        params: &SigningParams<'_>,
    ) -> Result<SigningOutput, SignError> {
        let output =
            self.sign_signable(&SignableRequest::from_http(parts), payload, params, None)?;
        apply_headers(&mut parts.headers, &output)?;
        Ok(output)
    }

    /// The core: signs a [`SignableRequest`], returning the stages and what to add, without
    /// touching any request. `presign` is the validity of a presigned URL, or `None` for an
    /// `Authorization` header.
    pub fn sign_signable(
        &self,
        request: &SignableRequest<'_>,
        payload: Payload<'_>,
        params: &SigningParams<'_>,
        presign: Option<Duration>,
    ) -> Result<SigningOutput, SignError> {
        let amz_date = params.amz_date()?;
        let date = DateStamp::from_amz_date(&amz_date);
        let body_hash;
        let payload_hash: &str = match payload {
            Payload::Bytes([]) => EMPTY_SHA256,
            Payload::Bytes(bytes) => {
                body_hash = hex32(&Sha256::digest(bytes).into());
                std::str::from_utf8(&body_hash).unwrap_or_default()
            }
            Payload::Unsigned => UNSIGNED_PAYLOAD,
            Payload::Precomputed(hash) => {
                if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SignError::InvalidPayloadHash);
                }
                hash
            }
        };
        let scope = string_to_sign::Scope {
            date: &date,
            region: params.region,
            service: params.service,
        };
        let credential;
        let token = self.session_token.as_ref().map(|t| t.0.as_str());
        let placement = match presign {
            None => Placement::Headers {
                amz_date: &amz_date,
                session_token: token,
                content_sha256: self.settings.content_sha256_header.then_some(payload_hash),
            },
            Some(expires) => {
                let secs = expires.as_secs();
                if secs == 0 || expires > MAX_PRESIGN_EXPIRY || expires.subsec_nanos() != 0 {
                    return Err(SignError::InvalidExpiry(secs));
                }
                let mut text = self.access_key_id.as_bytes().to_vec();
                text.push(b'/');
                string_to_sign::write_scope(&mut text, &scope);
                // An access key id and a scope made of `&str`s.
                credential = String::from_utf8(text).unwrap_or_default();
                Placement::Query {
                    amz_date: &amz_date,
                    credential: &credential,
                    expires_secs: secs,
                    session_token: token,
                }
            }
        };
        let mut text = Vec::with_capacity(size_hint(request));
        let canonical_layout =
            write_canonical_request(&mut text, request, &self.settings, &placement, payload_hash)?;
        let string_to_sign_at = text.len();
        string_to_sign::write_head(&mut text, &amz_date, &scope);
        let key = self.signing_key(&date, params.region, params.service)?;
        // The string to sign's first block(s) do not depend on the canonical request's
        // hash: hashing them just before it lets the CPU run the two SHA-256 chains side by
        // side (each block is a chain of dependent rounds, so alone it idles the unit).
        let mut mac = key.0.begin();
        let known = (text.len() - string_to_sign_at) / BLOCK * BLOCK;
        mac.update(&text[string_to_sign_at..string_to_sign_at + known]);
        let canonical_hash = sha256(&text[..string_to_sign_at]);
        text.extend_from_slice(&hex32(&canonical_hash));
        mac.update(&text[string_to_sign_at + known..]);
        let signature = Signature(mac.finish());
        let access_key_id_at = text.len();
        text.extend_from_slice(self.access_key_id.as_bytes());
        let kind = match presign {
            Some(expires) => OutputKind::Presigned {
                expires_secs: expires.as_secs(),
            },
            None => OutputKind::Headers {
                content_sha256: self.settings.content_sha256_header,
            },
        };
        Ok(SigningOutput {
            text,
            string_to_sign_at,
            access_key_id_at,
            canonical_layout,
            signature,
            session_token: self.session_token.clone(),
            kind,
        })
    }

    /// `kSigning` for a scope: from the cache, or derived through the root key.
    fn signing_key(
        &self,
        date: &DateStamp,
        region: &str,
        service: &str,
    ) -> Result<SigningKey, SignError> {
        let cached = self.cache_policy == CachePolicy::PerScope;
        if cached && let Some(key) = self.cache.get(&self.access_key_id, date, region, service) {
            return Ok(key);
        }
        self.root_key_calls.fetch_add(1, Ordering::Relaxed);
        let k_date = self.root_key.date_key(date).map_err(SignError::RootKey)?;
        // kRegion, kService and kSigning in turn, in one word-stored buffer wiped on drop.
        let mut chained = Zeroizing::new([0u64; 4]);
        HmacKey::new(k_date.as_bytes()).mac_into(&[region.as_bytes()], bytes32_mut(&mut chained));
        drop(k_date);
        for step in [service.as_bytes(), b"aws4_request"] {
            let next = HmacKey::new(bytes32(&chained));
            next.mac_into(&[step], bytes32_mut(&mut chained));
        }
        let key = SigningKey(HmacKey::new(bytes32(&chained)));
        if cached {
            self.cache
                .insert(&self.access_key_id, date, region, service, &key);
        }
        Ok(key)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token)
            .field("root_key", &self.root_key)
            .field("cache_policy", &self.cache_policy)
            .field("root_key_calls", &self.root_key_calls())
            .finish_non_exhaustive()
    }
}

/// The original URI with the presigning parameters appended (its own query untouched).
fn presigned_uri(uri: &http::Uri, output: &SigningOutput) -> Result<http::Uri, SignError> {
    let mut target: Vec<u8> = Vec::with_capacity(512);
    target.extend_from_slice(uri.path().as_bytes());
    let mut separator = match uri.query() {
        None => Some(b'?'),
        Some(query) => {
            target.push(b'?');
            target.extend_from_slice(query.as_bytes());
            (!query.is_empty()).then_some(b'&')
        }
    };
    for addition in &output.additions() {
        if let Some(sep) = separator {
            target.push(sep);
        }
        separator = Some(b'&');
        percent_encode_into(&mut target, addition.name.as_bytes(), false);
        target.push(b'=');
        percent_encode_into(&mut target, addition.value.as_bytes(), false);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        http::uri::PathAndQuery::try_from(target).map_err(|e| SignError::InvalidUri(e.into()))?,
    );
    http::Uri::from_parts(parts).map_err(|e| SignError::InvalidUri(e.into()))
}

/// Sets the signature's headers on a request, replacing any of the same name.
fn apply_headers(headers: &mut http::HeaderMap, output: &SigningOutput) -> Result<(), SignError> {
    use http::{HeaderName, HeaderValue};
    const X_AMZ_DATE: HeaderName = HeaderName::from_static(names::X_AMZ_DATE);
    const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static(names::X_AMZ_SECURITY_TOKEN);
    const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static(names::X_AMZ_CONTENT_SHA256);
    let OutputKind::Headers { content_sha256 } = output.kind else {
        return Ok(());
    };
    // Every value is ASCII built here, except the session token, which the caller gave.
    let ascii =
        |bytes: &[u8]| HeaderValue::from_bytes(bytes).map_err(|_| SignError::InvalidPayloadHash);
    headers.insert(X_AMZ_DATE, ascii(output.string_to_sign().amz_date())?);
    let authorization = HeaderValue::try_from(output.authorization_bytes())
        .map_err(|_| SignError::InvalidHeaderName("authorization".into()))?;
    headers.insert(http::header::AUTHORIZATION, authorization);
    if content_sha256 {
        let hash = ascii(output.canonical_request().payload_hash().as_bytes())?;
        headers.insert(X_AMZ_CONTENT_SHA256, hash);
    }
    if let Some(token) = &output.session_token {
        let mut value =
            HeaderValue::from_str(token.0.as_str()).map_err(|_| SignError::InvalidSessionToken)?;
        value.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SoftwareRootKey;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn params() -> SigningParams<'static> {
        let time = time::OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap();
        SigningParams::new("us-east-1", "service").at(time)
    }

    #[test]
    fn prepare_derives_the_scope_key_once_so_signing_calls_no_device() {
        let signer = Signer::new(
            "AKIDEXAMPLE",
            SoftwareRootKey::from_secret_access_key(SECRET),
        );
        signer.prepare(&params()).unwrap();
        signer.prepare(&params()).unwrap();
        assert_eq!(signer.root_key_calls(), 1);
        let mut request = http::Request::get("https://example.amazonaws.com/")
            .body(Vec::<u8>::new())
            .unwrap();
        signer.sign_request(&mut request, &params()).unwrap();
        assert_eq!(signer.root_key_calls(), 1);
    }

    #[test]
    fn prepare_does_nothing_with_the_cache_off() {
        let signer = Signer::new(
            "AKIDEXAMPLE",
            SoftwareRootKey::from_secret_access_key(SECRET),
        )
        .with_cache_policy(CachePolicy::Off);
        signer.prepare(&params()).unwrap();
        assert_eq!(signer.root_key_calls(), 0);
    }

    #[test]
    fn times_sigv4_cannot_write_are_errors_not_panics() {
        let signer = Signer::new("AKIDEXAMPLE", SoftwareRootKey::from_secret_access_key("x"));
        for time in [
            time::macros::datetime!(9999-12-31 23:30 -01:00),
            time::macros::datetime!(-0001-06-01 00:00 UTC),
            time::macros::datetime!(0000-01-01 00:30 +01:00),
        ] {
            let mut request = http::Request::get("https://example.com/").body("").unwrap();
            let params = SigningParams::new("us-east-1", "s3").at(time);
            let err = signer.sign_request(&mut request, &params).unwrap_err();
            assert!(matches!(err, SignError::InvalidTime(_)), "{time}: {err}");
            assert!(signer.prepare(&params).is_err());
        }
        // The last instant that can be written still signs.
        let last = time::macros::datetime!(9999-12-31 23:59:59 UTC);
        let mut request = http::Request::get("https://example.com/").body("").unwrap();
        let out = signer
            .sign_request(
                &mut request,
                &SigningParams::new("us-east-1", "s3").at(last),
            )
            .unwrap();
        assert!(
            out.string_to_sign()
                .to_string()
                .contains("99991231T235959Z")
        );
    }

    #[test]
    fn presigning_hashes_the_body_it_is_given() {
        let signer = Signer::new("AKIDEXAMPLE", SoftwareRootKey::from_secret_access_key("x"));
        let params = SigningParams::new("us-east-1", "service")
            .at(time::macros::datetime!(2015-08-30 12:36 UTC));
        let presign = |body: &'static str| {
            let mut request = http::Request::post("https://example.com/")
                .body(body)
                .unwrap();
            let out = signer
                .presign_request(&mut request, &params, Duration::from_secs(60))
                .unwrap();
            out.canonical_request().to_string()
        };
        let with_body = presign("Param1=value1");
        let hash = crate::encoding::hex32(&crate::hmac256::sha256(b"Param1=value1"));
        let hash = std::str::from_utf8(&hash).unwrap();
        assert!(with_body.ends_with(hash), "{with_body}");
        assert_ne!(with_body, presign(""));
    }
}
