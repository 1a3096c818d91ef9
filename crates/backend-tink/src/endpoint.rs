//! The check both KMS clients make on a configured endpoint before anything is sent to it:
//! an import's `Encrypt` carries `"AWS4"+secret`, so plain http may go to loopback only,
//! unless the caller allows it.

use crate::Error;

/// Where an endpoint given in the client's options came from.
pub(crate) const CALLER: &str = "set by the caller";

/// Refuses `url` (for the key `key_uri`, configured in `from`) when it is not a URL, or is
/// plain http to another machine and `allow_insecure_http` is off; the reason names the
/// fix.
pub(crate) fn check_endpoint(
    key_uri: &str,
    url: &str,
    from: &str,
    allow_insecure_http: bool,
) -> Result<(), Error> {
    let checked = match url.parse::<http::Uri>() {
        Ok(uri) => sigv4_core::transport::check_scheme(&uri, allow_insecure_http),
        Err(e) => Err(format!("{url:?} is not a URL ({e})")),
    };
    checked.map_err(|reason| Error::KmsEndpointRefused {
        uri: key_uri.to_owned(),
        from: from.to_owned(),
        reason,
    })
}
