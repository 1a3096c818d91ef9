//! Which endpoints a keyhold client may talk to in clear text.
//!
//! Every client in keyhold (STS, KMS, `sign --send`) sends signed requests whose replies may
//! be credentials, and the Tink import sends the secret itself to KMS for wrapping. Over
//! `http://` anyone on the path reads and rewrites them. So `http://` is allowed only to a
//! loopback address (a local test server, a sidecar), unless the caller opts in with a flag
//! named for the danger (`--allow-insecure-http`).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

/// Whether `host` (as in a URL: `localhost`, `127.0.0.1`, `[::1]`) is this machine.
///
/// ```
/// use sigv4_core::transport::is_loopback_host;
/// assert!(is_loopback_host("127.0.0.1") && is_loopback_host("127.9.9.9"));
/// assert!(is_loopback_host("[::1]") && is_loopback_host("localhost"));
/// assert!(!is_loopback_host("10.0.0.1") && !is_loopback_host("localhost.evil.com"));
/// ```
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the scheme of an endpoint URL: `https` anywhere, `http` to loopback or when
/// `allow_insecure_http`. The error says why and names the flag.
///
/// ```
/// use sigv4_core::transport::check_scheme;
/// let uri: http::Uri = "http://sts.example.com".parse().unwrap();
/// assert!(check_scheme(&uri, false).unwrap_err().contains("--allow-insecure-http"));
/// assert!(check_scheme(&uri, true).is_ok());
/// assert!(check_scheme(&"http://127.0.0.1:5000".parse().unwrap(), false).is_ok());
/// assert!(check_scheme(&"https://sts.example.com".parse().unwrap(), false).is_ok());
/// ```
pub fn check_scheme(uri: &http::Uri, allow_insecure_http: bool) -> Result<(), String> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_insecure_http || uri.host().is_some_and(is_loopback_host) => Ok(()),
        Some("http") => Err(format!(
            "{uri} is plain http to another machine: credentials would cross the network \
             in clear text; use https, or pass --allow-insecure-http if the network is yours"
        )),
        _ => Err(format!(
            "{uri} must start with https:// (or http:// for loopback)"
        )),
    }
}

/// The wait before retry number `retry` (1-based) of a keyhold client: `base × 2^(retry−1)`,
/// capped at `max`, then "equal jitter" (half the cap, plus a random part of the other
/// half), so that clients that failed together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use sigv4_core::transport::retry_backoff;
/// let (base, max) = (Duration::from_millis(100), Duration::from_millis(350));
/// for (retry, cap) in [(1, 100), (2, 200), (3, 350), (40, 350)] {
///     let wait = retry_backoff(base, max, retry);
///     let cap = Duration::from_millis(cap);
///     assert!(wait >= cap / 2 && wait <= cap);
/// }
/// ```
pub fn retry_backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let cap = base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(max);
    let random = std::collections::hash_map::RandomState::new().hash_one(retry);
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    cap / 2 + cap.mul_f64(fraction / 2.0)
}

/// Why a reply body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit arrived.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed before the end (the caller holds why).
    #[error("the body was cut off after {0} bytes (connection closed before the end)")]
    CutOff(usize),
}

/// A reply body as it arrives, chunk by chunk, at most `limit` bytes, in memory that is
/// zeroized when dropped: a reply may hold credentials, and a hostile server may send
/// without end. Each client's loop over its own HTTP library's chunks feeds it.
pub struct BodyBuffer {
    limit: usize,
    bytes: zeroize::Zeroizing<Vec<u8>>,
}

impl BodyBuffer {
    /// An empty body that takes at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: zeroize::Zeroizing::new(Vec::with_capacity(4096)),
        }
    }

    /// Adds the next chunk, or fails if the body would pass the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if self.bytes.len() + chunk.len() > self.limit {
            return Err(BodyError::TooLarge(self.limit));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The error for a connection that failed now.
    pub fn cut_off(&self) -> BodyError {
        BodyError::CutOff(self.bytes.len())
    }

    /// The whole body.
    pub fn finish(self) -> zeroize::Zeroizing<Vec<u8>> {
        self.bytes
    }
}
