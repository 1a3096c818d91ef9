//! What a signature hands back ([`SigningOutput`]: the three steps, and what goes on the
//! request), and how it goes on an `http::Request`: the headers of a header signature, or
//! the query parameters of a presigned URL.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::canonical::CanonicalRequest;
use crate::encoding::{decimal_into, percent_encode_into};
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
        let text = self.authorization_bytes()?;
        Some(String::from_utf8(text).expect("names, digits and hex are ASCII"))
    }

    /// The `Authorization` header value, written once into a buffer of its length.
    fn authorization_bytes(&self) -> Option<Vec<u8>> {
        let Location::Headers { .. } = self.location else {
            return None;
        };
        let [id, s0, date, s1, region, s2, service, s3, terminator] =
            credential_parts(&self.credential_id, self.string_to_sign.scope());
        let parts = [
            self.string_to_sign.algorithm().as_str(),
            " Credential=",
            id,
            s0,
            date,
            s1,
            region,
            s2,
            service,
            s3,
            terminator,
            ", SignedHeaders=",
            self.canonical_request.signed_headers(),
            ", Signature=",
        ];
        let length =
            parts.iter().map(|p| p.len()).sum::<usize>() + 2 * self.signature.as_bytes().len();
        let mut out = Vec::with_capacity(length);
        parts
            .iter()
            .for_each(|part| out.extend_from_slice(part.as_bytes()));
        self.signature.hex_into(&mut out);
        debug_assert_eq!(out.len(), length);
        Some(out)
    }

    /// Headers to set (header signing) or query parameters to append (presigning), in the
    /// order they are added.
    pub fn additions(&self) -> Vec<Addition> {
        let mut out = Vec::with_capacity(7);
        let mut add = |name, parts: &[&[u8]], sensitive| {
            let value = String::from_utf8(parts.concat()).expect("SigV4's values are UTF-8");
            out.push(Addition {
                name,
                value,
                sensitive,
            });
        };
        match self.location {
            Location::Headers { content_sha256 } => {
                let date = self.string_to_sign.amz_date().as_str();
                add(names::X_AMZ_DATE, &[date.as_bytes()], false);
                let authorization = self.authorization().expect("a header signature");
                add(names::AUTHORIZATION, &[authorization.as_bytes()], false);
                if content_sha256 {
                    let hash = self.canonical_request.payload_hash();
                    add(names::X_AMZ_CONTENT_SHA256, &[hash.as_bytes()], false);
                }
                if let Some(token) = &self.session_token {
                    add(names::X_AMZ_SECURITY_TOKEN, &[token.0.as_bytes()], true);
                }
            }
            Location::Query { expires_secs } => self.query_parameters(expires_secs, &mut add),
        }
        out
    }

    /// A presigned URL's parameters, in the order they are appended: `add(name, value in
    /// parts, whether it is the session token)`.
    fn query_parameters(
        &self,
        expires_secs: u64,
        add: &mut impl FnMut(&'static str, &[&[u8]], bool),
    ) {
        use names::query;
        let mut digits = [0; 20];
        let credential = credential_parts(&self.credential_id, self.string_to_sign.scope());
        let credential = credential.map(str::as_bytes);
        let signed = self.canonical_request.signed_headers().as_bytes();
        let signature = self.signature.hex();
        add(
            query::ALGORITHM,
            &[self.string_to_sign.algorithm().as_str().as_bytes()],
            false,
        );
        add(query::CREDENTIAL, &credential, false);
        add(
            query::DATE,
            &[self.string_to_sign.amz_date().as_str().as_bytes()],
            false,
        );
        add(
            query::EXPIRES,
            &[decimal_into(&mut digits, expires_secs)],
            false,
        );
        add(query::SIGNED_HEADERS, &[signed], false);
        add(query::SIGNATURE, &[&signature], false);
        if let Some(token) = &self.session_token {
            add(query::SECURITY_TOKEN, &[token.0.as_bytes()], true);
        }
    }
}

/// The original URI with the presigning parameters appended (its own query untouched).
pub(crate) fn presigned_uri(
    uri: &http::Uri,
    output: &SigningOutput,
) -> Result<http::Uri, SignError> {
    let Location::Query { .. } = output.location else {
        unreachable!("presigned_uri is called with a presigned signature");
    };
    let (path, query) = (uri.path(), uri.query());
    // Room for the parameters (a token may need three bytes for each of its own); shrunk to
    // the length below.
    let token = output.session_token.as_ref().map_or(0, |t| t.0.len());
    let mut target: Vec<u8> =
        Vec::with_capacity(path.len() + query.map_or(0, str::len) + 512 + 3 * token);
    target.extend_from_slice(path.as_bytes());
    let mut separator = match query {
        None => Some(b'?'),
        Some(query) => {
            target.push(b'?');
            target.extend_from_slice(query.as_bytes());
            (!query.is_empty()).then_some(b'&')
        }
    };
    let mut next_pair = |target: &mut Vec<u8>| {
        if let Some(sep) = separator {
            target.push(sep);
        }
        separator = Some(b'&');
    };
    // The five signed parameters (algorithm, credential, date, expires, signed headers) as the
    // canonical query holds them, already encoded; the signature; then the session token,
    // copied too when it was signed, else encoded here.
    let signed: smallvec::SmallVec<[&[u8]; 6]> =
        output.canonical_request.presigning_pairs().collect();
    let (parameters, signed_token) = signed.split_at(5);
    for pair in parameters {
        next_pair(&mut target);
        target.extend_from_slice(pair);
    }
    next_pair(&mut target);
    target.extend_from_slice(names::query::SIGNATURE.as_bytes());
    target.push(b'=');
    output.signature.hex_into(&mut target);
    match (signed_token.first(), &output.session_token) {
        (Some(token), _) => {
            next_pair(&mut target);
            target.extend_from_slice(token);
        }
        (None, Some(token)) => {
            next_pair(&mut target);
            target.extend_from_slice(names::query::SECURITY_TOKEN.as_bytes());
            target.push(b'=');
            percent_encode_into(&mut target, token.0.as_bytes(), false);
        }
        (None, None) => {}
    }
    // Exactly as long as it is: `Bytes` would make a second allocation for a `Vec` with
    // room to spare (bench row `shape-presigned-with-query`).
    target.shrink_to_fit();
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
    // Room for all of them at once: the map grows (and rehashes) at most once.
    headers.reserve(2 + usize::from(content_sha256) + usize::from(output.session_token.is_some()));
    headers.insert(X_AMZ_DATE, value(date, names::X_AMZ_DATE)?);
    let authorization = output.authorization_bytes().expect("a header signature");
    let mut authorization = HeaderValue::try_from(authorization)
        .map_err(|_| SignError::InvalidHeaderValue(names::AUTHORIZATION))?;
    // Not a secret, but a credential for the minutes it is valid: kept out of HPACK tables
    // and `http`'s Debug output.
    authorization.set_sensitive(true);
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
