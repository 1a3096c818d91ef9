//! The check both KMS clients make on a configured endpoint before anything is sent to it:
//! an import's `Encrypt` carries `"AWS4"+secret`, so plain http may go to loopback only,
//! unless the caller allows it.

/// Refuses an endpoint that is not a URL, or plain http to another machine unless
/// `allow_insecure_http`; the reason names the fix.
pub(crate) fn check_endpoint(url: &str, allow_insecure_http: bool) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    sigv4_core::transport::check_scheme(&uri, allow_insecure_http)
}
