//! What a signature hands back ([`SigningOutput`]: the three steps, and what goes on the
//! request), and how it goes on an `http::Request`: the headers of a header signature, or
//! the query parameters of a presigned URL.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::canonical::CanonicalRequest;
use crate::encoding::percent_encode_into;
use crate::names;
use crate::signer::SignError;
use crate::stages::{Signature, StringToSign, credential_parts};

/// Everything one signature produced: the three steps, and what goes on the request.
#[derive(Clone)]
pub struct SigningOutput {
    pub(crate) canonical_request: CanonicalRequest,
    pub(crate) string_to_sign: StringToSign,
    pub(crate) signature: Signature,
    /// The access key id, or for IAM Roles Anywhere the certificate's serial number.
    pub(crate) credential_id: Arc<str>,
    pub(crate) session_token: Option<SessionToken>,
    pub(crate) location: Location,
}

/// Where the signature went, with what that place needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Location {
    Headers { content_sha256: bool },
    Query { expires_secs: u64 },
}

/// A session token, shared between a signer and its outputs; zeroized when the last goes.
#[derive(Clone)]
pub(crate) struct SessionToken(pub(crate) Arc<Zeroizing<String>>);

impl SessionToken {
    pub(crate) fn new(token: String) -> Self {
        Self(Arc::new(Zeroizing::new(token)))
    }
}

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
    fn new(name: &'static str, value: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
            sensitive: false,
        }
    }

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
            .field("canonical_request", &self.canonical_request)
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &self.signature)
            .field("credential_id", &self.credential_id)
            .field("session_token", &self.session_token)
            .field("location", &self.location)
            .finish()
    }
}

impl SigningOutput {
    /// Step one.
    pub fn canonical_request(&self) -> &CanonicalRequest {
        &self.canonical_request
    }

    /// Step two.
    pub fn string_to_sign(&self) -> &StringToSign {
        &self.string_to_sign
    }

    /// Step three.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Who signed: the access key id, or an X.509 certificate's serial number in decimal.
    pub fn access_key_id(&self) -> &str {
        &self.credential_id
    }

    /// `Credential=` of the `Authorization` header: `id/yyyymmdd/region/service/aws4_request`.
    pub fn credential(&self) -> String {
        credential_parts(&self.credential_id, self.string_to_sign.scope()).concat()
    }

    /// Whether this is a presigned-URL signature.
    pub fn is_presigned(&self) -> bool {
        matches!(self.location, Location::Query { .. })
    }

    /// The `Authorization` header value (`None` for a presigned URL):
    /// `ALGORITHM Credential=ID/SCOPE, SignedHeaders=NAMES, Signature=HEX`.
    pub fn authorization(&self) -> Option<String> {
        let Location::Headers { .. } = self.location else {
            return None;
        };
        let algorithm = self.string_to_sign.algorithm().as_str();
        let credential = credential_parts(&self.credential_id, self.string_to_sign.scope());
        let signed_headers = self.canonical_request.signed_headers();
        let head = [algorithm, " Credential="];
        let tail = [", SignedHeaders=", signed_headers, ", Signature="];
        let parts = || head.iter().chain(&credential).chain(&tail);
        let length = parts().map(|p| p.len()).sum::<usize>() + 2 * self.signature.as_bytes().len();
        let mut out = String::with_capacity(length);
        parts().for_each(|part| out.push_str(part));
        self.signature.push_hex(&mut out);
        Some(out)
    }

    /// Headers to set (header signing) or query parameters to append (presigning), in the
    /// order they are added.
    pub fn additions(&self) -> Vec<Addition> {
        let date = self.string_to_sign.amz_date().as_str();
        let mut out = Vec::with_capacity(7);
        let token_name = match self.location {
            Location::Headers { content_sha256 } => {
                out.push(Addition::new(names::X_AMZ_DATE, date));
                let authorization = self.authorization().expect("a header signature");
                out.push(Addition::new(names::AUTHORIZATION, authorization));
                if content_sha256 {
                    let hash = self.canonical_request.payload_hash();
                    out.push(Addition::new(names::X_AMZ_CONTENT_SHA256, hash));
                }
                names::X_AMZ_SECURITY_TOKEN
            }
            Location::Query { expires_secs } => {
                use names::query;
                let algorithm = self.string_to_sign.algorithm().as_str();
                out.push(Addition::new(query::ALGORITHM, algorithm));
                out.push(Addition::new(query::CREDENTIAL, self.credential()));
                out.push(Addition::new(query::DATE, date));
                out.push(Addition::new(query::EXPIRES, expires_secs.to_string()));
                let signed = self.canonical_request.signed_headers();
                out.push(Addition::new(query::SIGNED_HEADERS, signed));
                out.push(Addition::new(query::SIGNATURE, self.signature.to_string()));
                query::SECURITY_TOKEN
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

/// The original URI with the presigning parameters appended (its own query untouched).
pub(crate) fn presigned_uri(
    uri: &http::Uri,
    output: &SigningOutput,
) -> Result<http::Uri, SignError> {
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
pub(crate) fn apply_headers(
    headers: &mut http::HeaderMap,
    output: &SigningOutput,
) -> Result<(), SignError> {
    use http::{HeaderName, HeaderValue};
    const X_AMZ_DATE: HeaderName = HeaderName::from_static(names::X_AMZ_DATE);
    const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static(names::X_AMZ_SECURITY_TOKEN);
    const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static(names::X_AMZ_CONTENT_SHA256);
    let Location::Headers { content_sha256 } = output.location else {
        return Ok(());
    };
    let value = |text: &str, name: &'static str| {
        HeaderValue::from_str(text).map_err(|_| SignError::InvalidHeaderValue(name))
    };
    let date = output.string_to_sign.amz_date().as_str();
    headers.insert(X_AMZ_DATE, value(date, names::X_AMZ_DATE)?);
    let authorization = output.authorization().expect("a header signature");
    let authorization = HeaderValue::try_from(authorization)
        .map_err(|_| SignError::InvalidHeaderValue(names::AUTHORIZATION))?;
    headers.insert(http::header::AUTHORIZATION, authorization);
    if content_sha256 {
        let hash = output.canonical_request.payload_hash();
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            value(hash, names::X_AMZ_CONTENT_SHA256)?,
        );
    }
    if let Some(token) = &output.session_token {
        let mut token =
            HeaderValue::from_str(token.0.as_str()).map_err(|_| SignError::InvalidSessionToken)?;
        token.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN, token);
    }
    Ok(())
}
