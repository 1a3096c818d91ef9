//! [`StsClient`]: builds, signs (on the blocking pool: a device call may block), sends and
//! retries STS Query API calls.
//!
//! Retries: connection failures, HTTP 5xx/429 and throttling codes, up to `max_attempts`
//! attempts with capped exponential backoff and jitter. A `RequestTimeTooSkewed` reply moves
//! the client's clock to the server's `Date` and retries once more. The call timeout covers
//! every attempt and every wait.

use sigv4_core::transport::BodyBuffer;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use sigv4_core::{RootKey, Signer, SigningParams};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::endpoint::{check_region, env_first, parse_endpoint_url, regional_endpoint};
use crate::error::{BoxError, StsError};
use crate::request::{AssumeRole, Form, GetSessionToken};
use crate::response::{self, AssumedRole, CallerIdentity, Credentials, ParseFailure};

/// The longest reply read; STS replies are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// How much later than asked for an `Expiration` may be (clock differences, rounding).
pub const EXPIRATION_SKEW: Duration = Duration::from_secs(300);

/// Defaults of [`StsClientBuilder`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default whole-call timeout (all attempts and waits).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of attempts (the first one and two retries), as in the AWS SDKs.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// An STS client whose requests are signed by a [`RootKey`]. Cheap to clone; share it.
#[derive(Clone)]
pub struct StsClient {
    inner: Arc<Inner>,
}

struct Inner {
    signer: Arc<Signer>,
    http: reqwest::Client,
    endpoint: http::Uri,
    region: String,
    call_timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    /// Seconds to add to the local clock when signing (server time − local time), learned
    /// from a `RequestTimeTooSkewed` reply.
    clock_offset: AtomicI64,
}

impl std::fmt::Debug for StsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClient")
            .field("access_key_id", &self.inner.signer.access_key_id())
            .field("endpoint", &self.inner.endpoint)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

/// Configures an [`StsClient`]; see [`StsClient::builder`].
pub struct StsClientBuilder {
    access_key_id: String,
    root_key: Arc<dyn RootKey>,
    region: Option<String>,
    endpoint_url: Option<String>,
    env_region: Option<String>,
    env_endpoint_url: Option<(String, &'static str)>,
    connect_timeout: Duration,
    call_timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    allow_insecure_http: bool,
}

impl std::fmt::Debug for StsClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClientBuilder")
            .field("access_key_id", &self.access_key_id)
            .field("root_key", &self.root_key)
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl StsClientBuilder {
    /// The region (`us-east-1`): picks the regional endpoint and is the signing region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends to this URL instead of the regional endpoint (a VPC endpoint, a local test
    /// server). The region is still needed, for the signature.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Reads `AWS_REGION` (else `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL_STS` (else
    /// `AWS_ENDPOINT_URL`). Values set with [`region`](Self::region) and
    /// [`endpoint_url`](Self::endpoint_url) win over these.
    pub fn from_env(mut self) -> Self {
        self.env_region = env_first(&["AWS_REGION", "AWS_DEFAULT_REGION"]).map(|(r, _)| r);
        self.env_endpoint_url = env_first(&["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]);
        self
    }

    /// Allows `http://` endpoints on other machines. Without it, plain http is refused
    /// except to loopback addresses (see [`sigv4_core::transport`]): STS replies carry
    /// credentials.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long to wait for a TCP (and TLS) connection. Default 3 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long one call may take in all, retries and waits included. Default 30 s.
    pub fn call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }

    /// How many attempts a call makes before giving up on a retryable failure (at least 1).
    /// Default 3.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// The backoff between attempts: `base × 2^(retry−1)`, capped at `max`, with jitter
    /// (the wait is between half and all of it). Default 200 ms and 20 s.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Builds the client. Fails if there is no region or the endpoint URL is not usable.
    pub fn build(self) -> Result<StsClient, StsError> {
        let region = self.region.or(self.env_region).ok_or_else(|| {
            StsError::Config(
                "no region: call .region(..), or set AWS_REGION or AWS_DEFAULT_REGION".into(),
            )
        })?;
        check_region(&region)?;
        if self.max_attempts == 0 {
            return Err(StsError::Config("max_attempts must be at least 1".into()));
        }
        if self.access_key_id.trim().is_empty() {
            return Err(StsError::Config("the access key id is empty".into()));
        }
        let (url, from) = match (self.endpoint_url, self.env_endpoint_url) {
            (Some(url), _) => (url, "set by the caller".to_owned()),
            (None, Some((url, var))) => (url, format!("from {var} in the environment")),
            (None, None) => (
                regional_endpoint(&region),
                format!("the default for {region}"),
            ),
        };
        let endpoint = parse_endpoint_url(&url)?;
        sigv4_core::transport::check_scheme(&endpoint, self.allow_insecure_http)
            .map_err(|why| StsError::Config(format!("STS endpoint {from}: {why}")))?;
        tracing::info!(%endpoint, from = %from, "STS endpoint");
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            // A redirect would re-send the signed body (ExternalId included) to another host
            // and trust its answer as STS's: a 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyhold-sts-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StsError::Config(format!("could not set up the HTTP client: {e}")))?;
        Ok(StsClient {
            inner: Arc::new(Inner {
                signer: Arc::new(Signer::from_arc(self.access_key_id, self.root_key)),
                http,
                endpoint,
                region,
                call_timeout: self.call_timeout,
                max_attempts: self.max_attempts,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
                clock_offset: AtomicI64::new(0),
            }),
        })
    }
}

impl StsClient {
    /// A builder for a client that signs as `access_key_id`, whose secret `root_key` holds.
    pub fn builder(
        access_key_id: impl Into<String>,
        root_key: Arc<dyn RootKey>,
    ) -> StsClientBuilder {
        StsClientBuilder {
            access_key_id: access_key_id.into(),
            root_key,
            region: None,
            endpoint_url: None,
            env_region: None,
            env_endpoint_url: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(20),
            allow_insecure_http: false,
        }
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        self.inner.endpoint.to_string()
    }

    /// The access key id requests are signed as.
    pub fn access_key_id(&self) -> &str {
        self.inner.signer.access_key_id()
    }

    /// The signer (its `root_key_calls` counts device calls).
    pub fn signer(&self) -> &Arc<Signer> {
        &self.inner.signer
    }

    /// The clock correction in use, in seconds (server − local), after a
    /// `RequestTimeTooSkewed` reply; 0 until then.
    pub fn clock_offset_secs(&self) -> i64 {
        self.inner.clock_offset.load(Ordering::Relaxed)
    }

    /// `GetCallerIdentity`: who the key belongs to. Needs no IAM permission.
    pub async fn get_caller_identity(&self) -> Result<CallerIdentity, StsError> {
        self.call(
            "GetCallerIdentity",
            Form::new("GetCallerIdentity"),
            response::caller_identity,
        )
        .await
    }

    /// `GetSessionToken`: temporary credentials for the IAM user the key belongs to.
    pub async fn get_session_token(
        &self,
        request: GetSessionToken,
    ) -> Result<Credentials, StsError> {
        let form = request.form()?;
        let credentials = self
            .call("GetSessionToken", form, response::session_token)
            .await?;
        self.check_expiration("GetSessionToken", &credentials, request.lifetime())?;
        Ok(credentials)
    }

    /// `AssumeRole`: temporary credentials for a role the key's identity may assume.
    pub async fn assume_role(&self, request: AssumeRole) -> Result<AssumedRole, StsError> {
        let form = request.form()?;
        let role = self
            .call("AssumeRole", form, response::assumed_role)
            .await?;
        self.check_expiration("AssumeRole", &role.credentials, request.lifetime())?;
        Ok(role)
    }

    /// Refuses credentials that expire in the past or later than asked for (plus
    /// [`EXPIRATION_SKEW`]): a reply no STS sends, which callers would cache wrongly.
    fn check_expiration(
        &self,
        action: &'static str,
        credentials: &Credentials,
        lifetime: Duration,
    ) -> Result<(), StsError> {
        let offset = time::Duration::seconds(self.clock_offset_secs());
        let now = OffsetDateTime::now_utc() + offset;
        let expiration = credentials.expiration;
        let latest = now + lifetime + EXPIRATION_SKEW;
        let reason = if expiration <= now {
            "is in the past"
        } else if expiration > latest {
            "is later than the duration asked for"
        } else {
            return Ok(());
        };
        Err(StsError::Expiration {
            action,
            expiration,
            reason,
        })
    }

    async fn call<T>(
        &self,
        action: &'static str,
        form: Form,
        parse: fn(&[u8]) -> Result<T, ParseFailure>,
    ) -> Result<T, StsError> {
        let body = form.into_body();
        let attempts = AtomicU32::new(0);
        let timeout = self.inner.call_timeout;
        match tokio::time::timeout(timeout, self.attempts(action, &body, parse, &attempts)).await {
            Ok(result) => result,
            Err(_) => Err(StsError::Timeout {
                action,
                timeout,
                attempts: attempts.load(Ordering::Relaxed),
            }),
        }
    }

    async fn attempts<T>(
        &self,
        action: &'static str,
        body: &Zeroizing<String>,
        parse: fn(&[u8]) -> Result<T, ParseFailure>,
        attempts: &AtomicU32,
    ) -> Result<T, StsError> {
        let inner = &*self.inner;
        let mut retries = 0u32;
        let mut skew_corrected = false;
        loop {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            let can_retry = retries + 1 < inner.max_attempts;
            let request = self.signed_request(action, body).await?;
            let mut response = match inner.http.execute(request).await {
                Ok(response) => response,
                Err(e) if can_retry => {
                    tracing::debug!(action, attempt, error = %e, "STS request failed; retrying");
                    retries += 1;
                    tokio::time::sleep(self.backoff(retries)).await;
                    continue;
                }
                Err(e) => {
                    return Err(StsError::Transport {
                        action,
                        endpoint: inner.endpoint.to_string(),
                        attempts: attempt,
                        source: Box::new(e),
                    });
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let parse_error = |detail: String, source: Option<BoxError>| StsError::Parse {
                action,
                status,
                content_type: content_type.clone(),
                detail,
                source,
            };
            let mut body = BodyBuffer::new(MAX_BODY);
            let reply = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        body.push(&chunk)
                            .map_err(|e| parse_error(e.to_string(), None))?;
                    }
                    Ok(None) => break body.finish(),
                    Err(e) => return Err(parse_error(body.cut_off().to_string(), Some(e.into()))),
                }
            };
            tracing::debug!(action, attempt, status, "STS replied");
            if (200..300).contains(&status) {
                return parse(&reply).map_err(|failure| {
                    let detail = if content_type.contains("xml") || content_type == "none" {
                        failure.detail
                    } else {
                        format!("content type is not XML, and {}", failure.detail)
                    };
                    parse_error(detail, None)
                });
            }
            if (300..400).contains(&status) {
                return Err(parse_error(
                    format!(
                        "HTTP {status} is a redirect, which keyhold never follows (it would \
                         re-send the signed request elsewhere); set the STS endpoint URL to \
                         the one that answers"
                    ),
                    None,
                ));
            }
            let retryable_status = status >= 500 || status == 429;
            let Some(mut error) = response::service_error(&reply, status, action) else {
                if retryable_status && can_retry {
                    retries += 1;
                    tokio::time::sleep(self.backoff(retries)).await;
                    continue;
                }
                return Err(parse_error(
                    format!("HTTP {status}, and the body is not an STS error document"),
                    None,
                ));
            };
            if error.request_id.is_none() {
                error.request_id = headers
                    .get("x-amzn-requestid")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
            }
            if error.kind == crate::ServiceErrorKind::RequestTimeTooSkewed
                && !skew_corrected
                && let Some(server_now) = headers
                    .get(http::header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_http_date)
            {
                let offset = (server_now - OffsetDateTime::now_utc()).whole_seconds();
                tracing::warn!(action, offset, "clock skew reported by STS; correcting");
                inner.clock_offset.store(offset, Ordering::Relaxed);
                skew_corrected = true;
                continue;
            }
            if (error.kind.is_retryable() || retryable_status) && can_retry {
                tracing::debug!(action, attempt, code = %error.code, "retryable STS error");
                retries += 1;
                tokio::time::sleep(self.backoff(retries)).await;
                continue;
            }
            return Err(StsError::Service(Box::new(error)));
        }
    }

    /// The POST request for `body`, signed on the blocking pool (the device may block).
    async fn signed_request(
        &self,
        action: &'static str,
        body: &Zeroizing<String>,
    ) -> Result<reqwest::Request, StsError> {
        let inner = &*self.inner;
        let mut request = http::Request::post(inner.endpoint.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body.as_bytes().to_vec())
            .map_err(|e| StsError::Config(format!("could not build the request: {e}")))?;
        let offset = time::Duration::seconds(inner.clock_offset.load(Ordering::Relaxed));
        let now = OffsetDateTime::now_utc() + offset;
        let signer = Arc::clone(&inner.signer);
        let region = inner.region.clone();
        let signed = tokio::task::spawn_blocking(move || {
            signer
                .sign_request(&mut request, &SigningParams::new(&region, "sts").at(now))
                .map(|_| request)
        })
        .await;
        let request = match signed {
            Ok(result) => result.map_err(|source| StsError::Signing { action, source })?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                return Err(StsError::Config(
                    "the async runtime shut down while the request was being signed".into(),
                ));
            }
        };
        reqwest::Request::try_from(request.map(reqwest::Body::from))
            .map_err(|e| StsError::Config(format!("could not build the request: {e}")))
    }

    /// The wait before retry number `retry` (1-based): exponential, capped, jittered.
    fn backoff(&self, retry: u32) -> Duration {
        let inner = &*self.inner;
        sigv4_core::transport::retry_backoff(inner.backoff_base, inner.backoff_max, retry)
    }
}

/// Parses an HTTP `Date` header (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: Duration, max: Duration) -> StsClient {
        let key = Arc::new(sigv4_core::SoftwareRootKey::from_secret_access_key("x"));
        StsClient::builder("AKIDEXAMPLE", key)
            .region("us-east-1")
            .retry_backoff(base, max)
            .build()
            .unwrap()
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(time::macros::datetime!(1994-11-06 08:49:37 UTC))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let c = client(Duration::from_millis(100), Duration::from_millis(350));
        for (retry, cap) in [(1, 100), (2, 200), (3, 350), (10, 350), (40, 350)] {
            let cap = Duration::from_millis(cap);
            let d = c.backoff(retry);
            assert!(d >= cap / 2 && d <= cap, "retry {retry}: {d:?}");
        }
        let waits: std::collections::HashSet<_> = (0..20).map(|_| c.backoff(3)).collect();
        assert!(waits.len() > 1, "no jitter: {waits:?}");
    }

    #[test]
    fn builder_needs_a_region_and_a_usable_endpoint() {
        let key = Arc::new(sigv4_core::SoftwareRootKey::from_secret_access_key("x"));
        let err = StsClient::builder("AKIDEXAMPLE", key.clone())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
        let c = StsClient::builder("AKIDEXAMPLE", key.clone())
            .region("cn-north-1")
            .build()
            .unwrap();
        assert_eq!(c.endpoint(), "https://sts.cn-north-1.amazonaws.com.cn/");
        let err = StsClient::builder("AKIDEXAMPLE", key)
            .region("us-east-1")
            .endpoint_url("localhost:99")
            .build()
            .unwrap_err();
        assert!(matches!(err, StsError::Config(_)), "{err}");
    }
}
