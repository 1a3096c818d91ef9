//! The signer: the three steps of SigV4 in order ([`CanonicalRequest`], [`StringToSign`],
//! [`Signature`]), and where the result goes on an `http::Request` (an `Authorization`
//! header, or a presigned URL's query).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::{CachePolicy, DerivedKeyCache, SigningKey, SigningPads};
use crate::canonical::{CanonicalError, CanonicalRequest, Placement, SignableRequest};
use crate::encoding::hex32;
use crate::hmac256::{HmacKey, Wiped};
use crate::key::{DateStamp, KeyError, RootKey};
use crate::locked::Locked;
use crate::names;
use crate::output::SigningOutput;
use crate::output::{Location, SessionToken, apply_headers, presigned_uri};
use crate::settings::SigningSettings;
use crate::stages::{Algorithm, AmzDate, Scope, Signature, StringToSign};

/// The payload hash of a request whose body is not signed (S3 presigned URLs, streaming).
pub const UNSIGNED_PAYLOAD: &str = names::UNSIGNED_PAYLOAD;

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

impl<'a> Payload<'a> {
    /// The canonical request's last line.
    fn hash(&self) -> Result<PayloadHash<'a>, SignError> {
        Ok(match *self {
            Payload::Bytes([]) => PayloadHash::Text(names::EMPTY_SHA256),
            Payload::Bytes(bytes) => PayloadHash::Hex(hex32(&Sha256::digest(bytes).into())),
            Payload::Unsigned => PayloadHash::Text(names::UNSIGNED_PAYLOAD),
            Payload::Precomputed(hash) => {
                if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SignError::InvalidPayloadHash);
                }
                PayloadHash::Text(hash)
            }
        })
    }
}

/// The canonical request's last line, where it is: computed here, or a literal.
enum PayloadHash<'a> {
    Hex([u8; 64]),
    Text(&'a str),
}

impl PayloadHash<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            PayloadHash::Hex(hex) => hex,
            PayloadHash::Text(text) => text.as_bytes(),
        }
    }
}

/// Where a signature goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureLocation {
    /// An `Authorization` header, with `X-Amz-Date` (and the session token) as headers.
    Headers,
    /// A presigned URL's query parameters, valid for this long (1 s to 7 days).
    QueryParams {
        /// How long the URL is valid.
        expires_in: Duration,
    },
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

    pub(crate) fn region(&self) -> &'a str {
        self.region
    }

    pub(crate) fn service(&self) -> &'a str {
        self.service
    }

    pub(crate) fn amz_date(&self) -> Result<AmzDate, SignError> {
        let time = self.time();
        AmzDate::new(time).ok_or(SignError::InvalidTime(time))
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
    /// A value the signature adds (the `Authorization` header, a certificate) can't be sent
    /// as a header value.
    #[error("the {0} value the signature adds is not a valid HTTP header value")]
    InvalidHeaderValue(&'static str),
    /// The presigned URI could not be built (the original URI was unusual).
    #[error("could not build the presigned URI")]
    InvalidUri(#[source] http::Error),
    /// A signing time that `X-Amz-Date` cannot express (outside the years 0000 to 9999 UTC).
    #[error("the signing time {0} is outside the years 0000 to 9999 (UTC) that SigV4 can express")]
    InvalidTime(time::OffsetDateTime),
    /// The key failed to sign (the root key computing `kDate`, or an X.509 private key).
    #[error("the key could not sign")]
    Key(#[source] KeyError),
    /// X.509 signatures go in an `Authorization` header only.
    #[error("IAM Roles Anywhere signatures go in an Authorization header, not a presigned URL")]
    X509Presign,
}

impl From<CanonicalError> for SignError {
    fn from(e: CanonicalError) -> Self {
        match e {
            CanonicalError::NoHost => SignError::NoHost,
            CanonicalError::BadHeaderName(name) => SignError::InvalidHeaderName(name),
        }
    }
}

/// Steps one and two, the same for every algorithm: the canonical request of `request`
/// and the string to sign over its hash.
pub(crate) struct Unsigned {
    pub(crate) canonical_request: CanonicalRequest,
    pub(crate) string_to_sign: StringToSign,
    location: Location,
}

/// What steps one and two need besides the request.
pub(crate) struct Identity<'i> {
    pub(crate) algorithm: Algorithm,
    pub(crate) credential_id: &'i str,
    pub(crate) session_token: Option<&'i str>,
    pub(crate) settings: &'i SigningSettings,
}

/// Steps one and two for `request` at `amz_date` in `scope` (whose date is `amz_date`'s).
pub(crate) fn canonical_and_string_to_sign(
    request: &SignableRequest<'_>,
    payload: Payload<'_>,
    (amz_date, scope): (AmzDate, Scope),
    location: SignatureLocation,
    identity: &Identity<'_>,
) -> Result<Unsigned, SignError> {
    debug_assert_eq!(&amz_date.date(), scope.date());
    let payload_hash = payload.hash()?;
    let settings = identity.settings;
    let content_sha256 = settings.content_sha256_header;
    let (placement, location) = match location {
        SignatureLocation::Headers => (
            Placement::Headers {
                amz_date: amz_date.as_str(),
                session_token: identity.session_token,
                content_sha256,
            },
            Location::Headers { content_sha256 },
        ),
        SignatureLocation::QueryParams { expires_in } => {
            let expires_secs = expires_in.as_secs();
            if expires_secs == 0
                || expires_in > MAX_PRESIGN_EXPIRY
                || expires_in.subsec_nanos() != 0
            {
                return Err(SignError::InvalidExpiry(expires_secs));
            }
            let placement = Placement::Query {
                algorithm: identity.algorithm.as_str(),
                amz_date: amz_date.as_str(),
                credential: (identity.credential_id, &scope),
                expires_secs,
                session_token: identity.session_token,
            };
            (placement, Location::Query { expires_secs })
        }
    };
    let canonical_request =
        CanonicalRequest::new(request, settings, &placement, payload_hash.as_bytes())?;
    let hash = Sha256::digest(canonical_request.as_bytes());
    let string_to_sign = StringToSign::new(identity.algorithm, amz_date, scope, hash.into());
    Ok(Unsigned {
        canonical_request,
        string_to_sign,
        location,
    })
}

impl Unsigned {
    /// Step three done: the output, with the signature over the string to sign.
    pub(crate) fn signed(
        self,
        signature: Signature,
        credential_id: Arc<str>,
        session_token: Option<SessionToken>,
    ) -> SigningOutput {
        SigningOutput {
            canonical_request: self.canonical_request,
            string_to_sign: self.string_to_sign,
            signature,
            credential_id,
            session_token,
            location: self.location,
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
        self.session_token = Some(SessionToken::new(token.into()));
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
        let date = params.amz_date()?.date();
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
        sign_in_headers(request, params, |signable, payload| {
            self.sign_signable(signable, payload, params, SignatureLocation::Headers)
        })
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
        let location = SignatureLocation::QueryParams { expires_in };
        let output = self.sign_signable(&signable, payload, params, location)?;
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
        let signable = SignableRequest::from_http(parts);
        let output = self.sign_signable(&signable, payload, params, SignatureLocation::Headers)?;
        apply_headers(&mut parts.headers, &output)?;
        Ok(output)
    }

    /// The three steps for a [`SignableRequest`], without touching any request: what to
    /// add is in the output ([`SigningOutput::additions`]).
    pub fn sign_signable(
        &self,
        request: &SignableRequest<'_>,
        payload: Payload<'_>,
        params: &SigningParams<'_>,
        location: SignatureLocation,
    ) -> Result<SigningOutput, SignError> {
        let identity = Identity {
            algorithm: Algorithm::HmacSha256,
            credential_id: &self.access_key_id,
            session_token: self.session_token.as_ref().map(|t| t.0.as_str()),
            settings: &self.settings,
        };
        let amz_date = params.amz_date()?;
        let SigningKey { key, scope } =
            self.signing_key(&amz_date.date(), params.region, params.service)?;
        let when = (amz_date, scope);
        let unsigned = canonical_and_string_to_sign(request, payload, when, location, &identity)?;
        let signature = sign_with(&key, &unsigned.string_to_sign);
        let token = self.session_token.clone();
        Ok(unsigned.signed(signature, self.access_key_id.clone(), token))
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
        let k_date = self.root_key.date_key(date).map_err(SignError::Key)?;
        // kRegion = HMAC(kDate, region), kService = HMAC(kRegion, service),
        // kSigning = HMAC(kService, "aws4_request").
        let mut chained = Wiped::new(*k_date.as_bytes());
        drop(k_date);
        for step in [region, service, names::SCOPE_TERMINATOR] {
            let next = HmacKey::new(&chained[..]);
            next.mac_into(&[step.as_bytes()], &mut chained);
        }
        let pads = HmacKey::new(&chained[..]);
        let key = SigningKey {
            key: match cached {
                true => SigningPads::Kept(Arc::new(Locked::new(pads))),
                false => SigningPads::Once(pads),
            },
            scope: Scope::new(*date, region, service),
        };
        if cached {
            self.cache.insert(&self.access_key_id, &key);
        }
        Ok(key)
    }
}

/// Step three for an access key: HMAC-SHA256 of the string to sign with `kSigning`.
fn sign_with(k_signing: &HmacKey, string_to_sign: &StringToSign) -> Signature {
    let mut mac = k_signing.begin();
    string_to_sign.write_parts(&mut |part| mac.update(part));
    Signature::new(&mac.finish())
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

/// Signs `request` with `sign` (its body hashed unless the params give a payload), then
/// sets the signature's headers on it.
pub(crate) fn sign_in_headers<B: AsRef<[u8]>>(
    request: &mut http::Request<B>,
    params: &SigningParams<'_>,
    sign: impl FnOnce(&SignableRequest<'_>, Payload<'_>) -> Result<SigningOutput, SignError>,
) -> Result<SigningOutput, SignError> {
    let payload = params
        .payload
        .unwrap_or(Payload::Bytes(request.body().as_ref()));
    let signable =
        SignableRequest::from_http_parts(request.method(), request.uri(), request.headers());
    let output = sign(&signable, payload)?;
    apply_headers(request.headers_mut(), &output)?;
    Ok(output)
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
        let hash = crate::encoding::hex32(&Sha256::digest(b"Param1=value1").into());
        let hash = std::str::from_utf8(&hash).unwrap();
        assert!(with_body.ends_with(hash), "{with_body}");
        assert_ne!(with_body, presign(""));
    }
}
