//! [`RolesAnywhereClient`]: signs `CreateSession` (on the blocking pool: a device call may
//! block), sends it, retries what may succeed on a retry, and checks what comes back.
//!
//! The endpoint rules are STS's: `https`, or `http` to loopback only unless allowed; no
//! redirect is followed (it would re-send the signed request elsewhere and trust the
//! answer); the override comes from the caller, then `AWS_ENDPOINT_URL_ROLESANYWHERE`, then
//! `AWS_ENDPOINT_URL`.

use sigv4_core::transport::BodyBuffer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sigv4_core::{SigningParams, X509Signer};
use time::OffsetDateTime;

use crate::error::{BoxError, RolesAnywhereError};
use crate::request::CreateSession;
use crate::response::{self, Credentials};

/// The longest reply read; a CreateSession reply is a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// How much later than asked for an `expiration` may be (clock differences, rounding).
const EXPIRATION_SKEW: Duration = Duration::from_secs(300);

/// The service's signing name.
const SERVICE: &str = "rolesanywhere";

/// The regional endpoint: `https://rolesanywhere.{region}.{partition's DNS suffix}`.
///
/// ```
/// use rolesanywhere::regional_endpoint;
/// assert_eq!(regional_endpoint("eu-west-1"), "https://rolesanywhere.eu-west-1.amazonaws.com");
/// assert_eq!(regional_endpoint("cn-north-1"), "https://rolesanywhere.cn-north-1.amazonaws.com.cn");
/// ```
pub fn regional_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{SERVICE}.{region}.{suffix}")
}

/// A Roles Anywhere client that signs with one certificate and its key. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RolesAnywhereClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    signer: Arc<X509Signer>,
    http: reqwest::Client,
    /// `.../sessions`.
    sessions: http::Uri,
    region: String,
    call_timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

/// Configures a [`RolesAnywhereClient`]; see [`RolesAnywhereClient::builder`].
#[derive(Debug)]
pub struct RolesAnywhereClientBuilder {
    signer: X509Signer,
    region: Option<String>,
    endpoint_url: Option<String>,
    env_endpoint_url: Option<(String, &'static str)>,
    allow_insecure_http: bool,
    connect_timeout: Duration,
    call_timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl RolesAnywhereClientBuilder {
    /// The region (the trust anchor's): picks the endpoint and is the signing region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends to this URL instead of the regional endpoint (a local endpoint, a proxy).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Reads `AWS_ENDPOINT_URL_ROLESANYWHERE` (else `AWS_ENDPOINT_URL`); a URL set with
    /// [`endpoint_url`](Self::endpoint_url) wins.
    pub fn from_env(mut self) -> Self {
        self.env_endpoint_url = ["AWS_ENDPOINT_URL_ROLESANYWHERE", "AWS_ENDPOINT_URL"]
            .into_iter()
            .find_map(|name| {
                let value = std::env::var(name).ok()?.trim().to_owned();
                (!value.is_empty()).then_some((value, name))
            });
        self
    }

    /// Allows `http://` to other machines (the reply holds credentials).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long one call may take, retries and waits included. Default 30 s.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Attempts per call (at least 1). Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait between attempts: `base × 2^(retry−1)`, capped at `max`, between half and
    /// all of it. Default 200 ms and 20 s.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Builds the client; fails on a missing region or an unusable endpoint.
    pub fn build(self) -> Result<RolesAnywhereClient, RolesAnywhereError> {
        let config = RolesAnywhereError::Config;
        let region = self.region.ok_or_else(|| {
            config(
                "no region: set the trust anchor's region, the one in its ARN, with .region() \
                 (keyhold: --region, else the --trust-anchor-arn's)"
                    .into(),
            )
        })?;
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(config(format!(
                "{region:?} is not an AWS region name (--region)"
            )));
        }
        if self.max_attempts == 0 {
            return Err(config("max_attempts must be at least 1".into()));
        }
        let (url, from) = match (self.endpoint_url, self.env_endpoint_url) {
            (Some(url), _) => (url, "--endpoint-url".to_owned()),
            (None, Some((url, var))) => (url, format!("{var} in the environment")),
            (None, None) => (
                regional_endpoint(&region),
                format!("the default for {region}"),
            ),
        };
        let sessions = sessions_uri(&url)
            .map_err(|why| config(format!("Roles Anywhere endpoint {url:?} ({from}) {why}")))?;
        sigv4_core::transport::check_scheme(&sessions, self.allow_insecure_http)
            .map_err(|why| config(format!("Roles Anywhere endpoint ({from}): {why}")))?;
        tracing::info!(endpoint = %sessions, from = %from, "Roles Anywhere endpoint");
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyhold-rolesanywhere/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(format!("could not set up the HTTP client: {e}")))?;
        Ok(RolesAnywhereClient {
            inner: Arc::new(Inner {
                signer: Arc::new(self.signer),
                http,
                sessions,
                region,
                call_timeout: self.call_timeout,
                max_attempts: self.max_attempts,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
            }),
        })
    }
}

/// `url` (scheme and host, maybe a base path) with `/sessions` appended.
fn sessions_uri(url: &str) -> Result<http::Uri, &'static str> {
    let uri: http::Uri = url.trim().parse().map_err(|_| "is not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with https:// (or http:// for loopback)");
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    if uri.query().is_some() {
        return Err("must not have a query");
    }
    let base = uri.path().trim_end_matches('/');
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or_default();
    format!("{scheme}://{authority}{base}/sessions")
        .parse()
        .map_err(|_| "is not a URL")
}

impl RolesAnywhereClient {
    /// A builder for a client signing with `signer`.
    pub fn builder(signer: X509Signer) -> RolesAnywhereClientBuilder {
        RolesAnywhereClientBuilder {
            signer,
            region: None,
            endpoint_url: None,
            env_endpoint_url: None,
            allow_insecure_http: false,
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(20),
        }
    }

    /// Where `CreateSession` goes.
    pub fn endpoint(&self) -> String {
        self.inner.sessions.to_string()
    }

    /// The signer (certificate and key).
    pub fn signer(&self) -> &X509Signer {
        &self.inner.signer
    }

    /// `CreateSession`: temporary credentials for the request's role.
    pub async fn create_session(
        &self,
        request: &CreateSession,
    ) -> Result<Credentials, RolesAnywhereError> {
        request.check()?;
        let attempts = AtomicU32::new(0);
        let timeout = self.inner.call_timeout;
        let credentials = tokio::time::timeout(timeout, self.attempts(request, &attempts))
            .await
            .map_err(|_| RolesAnywhereError::Timeout {
                timeout,
                attempts: attempts.load(Ordering::Relaxed),
            })??;
        check_expiration(&credentials, request.lifetime())?;
        Ok(credentials)
    }

    async fn attempts(
        &self,
        request: &CreateSession,
        attempts: &AtomicU32,
    ) -> Result<Credentials, RolesAnywhereError> {
        let inner = &*self.inner;
        let mut retries = 0;
        loop {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            let can_retry = attempt < inner.max_attempts;
            let signed = self.signed_request(request).await?;
            let mut response = match inner.http.execute(signed).await {
                Ok(response) => response,
                Err(e) if can_retry => {
                    tracing::debug!(attempt, error = %e, "CreateSession failed to send; retrying");
                    retries += 1;
                    tokio::time::sleep(self.backoff(retries)).await;
                    continue;
                }
                Err(e) => {
                    return Err(RolesAnywhereError::Transport {
                        endpoint: inner.sessions.to_string(),
                        attempts: attempt,
                        source: Box::new(e) as BoxError,
                    });
                }
            };
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = header("content-type").unwrap_or_else(|| "none".into());
            let error_type = header("x-amzn-errortype");
            let request_id = header("x-amzn-requestid");
            let reply = |detail: String| RolesAnywhereError::Reply {
                status,
                content_type: content_type.clone(),
                detail,
            };
            let mut buffer = BodyBuffer::new(MAX_BODY);
            let body = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => buffer.push(&chunk).map_err(|e| reply(e.to_string()))?,
                    Ok(None) => break buffer.finish(),
                    Err(_) => return Err(reply(buffer.cut_off().to_string())),
                }
            };
            tracing::debug!(attempt, status, "Roles Anywhere replied");
            if (200..300).contains(&status) {
                return response::credentials(&body).map_err(reply);
            }
            if (300..400).contains(&status) {
                return Err(reply(format!(
                    "HTTP {status} is a redirect, which keyhold never follows (it would re-send \
                     the signed request elsewhere); set the endpoint URL to the one that answers"
                )));
            }
            let error = response::service_error(status, error_type.as_deref(), &body, request_id);
            let retryable = error
                .as_ref()
                .map_or(status >= 500 || status == 429, |e| e.kind.is_retryable());
            if retryable && can_retry {
                retries += 1;
                tokio::time::sleep(self.backoff(retries)).await;
                continue;
            }
            return Err(match error {
                Some(error) => RolesAnywhereError::Service(Box::new(error)),
                None => reply(format!(
                    "HTTP {status}, and the body is not a service error"
                )),
            });
        }
    }

    /// `request` as the HTTP request sent to this client's endpoint, signed at `at`: what
    /// [`create_session`](Self::create_session) sends (with the time of sending). Calls the
    /// device, so it may block.
    pub fn sign_at(
        &self,
        request: &CreateSession,
        at: OffsetDateTime,
    ) -> Result<http::Request<Vec<u8>>, RolesAnywhereError> {
        let inner = &*self.inner;
        let target = format!("{}?{}", inner.sessions, request.query());
        let mut http = http::Request::post(target)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(request.body())
            .map_err(|e| RolesAnywhereError::Config(format!("could not build the request: {e}")))?;
        let params = SigningParams::new(&inner.region, SERVICE).at(at);
        inner
            .signer
            .sign_request(&mut http, &params)
            .map_err(RolesAnywhereError::Signing)?;
        Ok(http)
    }

    /// `request`, signed now on the blocking pool (the device may block).
    async fn signed_request(
        &self,
        request: &CreateSession,
    ) -> Result<reqwest::Request, RolesAnywhereError> {
        let client = self.clone();
        let request = request.clone();
        let signed = tokio::task::spawn_blocking(move || {
            client.sign_at(&request, OffsetDateTime::now_utc())
        })
        .await;
        let request = match signed {
            Ok(result) => result?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                return Err(RolesAnywhereError::Config(
                    "the async runtime shut down while the request was being signed".into(),
                ));
            }
        };
        reqwest::Request::try_from(request.map(reqwest::Body::from))
            .map_err(|e| RolesAnywhereError::Config(format!("could not build the request: {e}")))
    }

    /// The wait before retry number `retry` (1-based): exponential, capped, jittered.
    fn backoff(&self, retry: u32) -> Duration {
        let inner = &*self.inner;
        sigv4_core::transport::retry_backoff(inner.backoff_base, inner.backoff_max, retry)
    }
}

/// Refuses credentials that have expired or outlive what was asked for: no service sends
/// them, and a caller would cache them wrongly.
fn check_expiration(
    credentials: &Credentials,
    lifetime: Duration,
) -> Result<(), RolesAnywhereError> {
    let now = OffsetDateTime::now_utc();
    let detail = if credentials.expiration <= now {
        "its expiration is in the past"
    } else if credentials.expiration > now + lifetime + EXPIRATION_SKEW {
        "its expiration is later than the session duration asked for"
    } else {
        return Ok(());
    };
    Err(RolesAnywhereError::Reply {
        status: 201,
        content_type: "application/json".into(),
        detail: format!("{detail} ({})", credentials.expiration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sessions_path_follows_the_endpoint() {
        for (url, expected) in [
            (
                "https://rolesanywhere.us-east-1.amazonaws.com",
                "https://rolesanywhere.us-east-1.amazonaws.com/sessions",
            ),
            ("http://127.0.0.1:8443/", "http://127.0.0.1:8443/sessions"),
            (
                "https://proxy.example.com/ra/",
                "https://proxy.example.com/ra/sessions",
            ),
        ] {
            assert_eq!(sessions_uri(url).unwrap().to_string(), expected);
        }
        for bad in ["rolesanywhere.example.com", "ftp://x", "https://x/?a=b"] {
            assert!(sessions_uri(bad).is_err(), "{bad}");
        }
    }
}
