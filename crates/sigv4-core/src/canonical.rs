//! Step one of SigV4: the canonical request, from a request as SigV4 sees it.
//!
//! ```text
//! HTTPMethod \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//! ```
//!
//! (AWS, "Create a canonical request for Signature Version 4"; `CanonicalHeaders` ends with
//! its own newline, so a blank line follows it.)

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

use crate::encoding::{encode_unsafe_path_bytes_into, normalize_path, percent_encode_into};
use crate::names;
use crate::query::write_query;
use crate::settings::{PathEncoding, SessionTokenMode, SigningSettings};

/// Header values never shown by [`CanonicalRequest::redacted`].
const SENSITIVE_HEADERS: &[&str] = &[
    names::X_AMZ_SECURITY_TOKEN,
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

/// A request as SigV4 sees it: method, wire path and query, headers. Borrowed from the
/// caller; build it with [`SignableRequest::new`] or [`SignableRequest::from_http`].
#[derive(Clone, Debug)]
pub struct SignableRequest<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    host: Option<&'a str>,
    headers: Vec<(Cow<'a, str>, &'a [u8])>,
}

impl<'a> SignableRequest<'a> {
    /// A request from its method and request target (`/path?query`), exactly as on the wire.
    /// The path may hold raw bytes a `http::Uri` refuses (spaces, UTF-8): they are encoded
    /// as SigV4 says. Add headers with [`header`](Self::header); `host` is required.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        Self {
            method,
            path,
            query,
            host: None,
            headers: Vec::new(),
        }
    }

    /// Adds a header (the name in any case; values of repeated names are kept in order).
    pub fn header(mut self, name: &'a str, value: &'a [u8]) -> Self {
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        self.headers.push((name, value));
        self
    }

    /// Sets a header, removing any of the same (lowercase) name first.
    pub(crate) fn replace_header(mut self, name: &'static str, value: &'a [u8]) -> Self {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((Cow::Borrowed(name), value));
        self
    }

    /// The parts of an `http` request that SigV4 signs. The `host` header, when the request
    /// has none, comes from the URI's authority, without the port when it is the scheme's
    /// default.
    pub fn from_http(parts: &'a http::request::Parts) -> Self {
        Self::from_http_parts(&parts.method, &parts.uri, &parts.headers)
    }

    pub(crate) fn from_http_parts(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
    ) -> Self {
        // The authority as sent, without a port that is the scheme's default.
        let host = uri.authority().map(|authority| {
            let default_port = matches!(
                (uri.scheme_str(), uri.port_u16()),
                (Some("http"), Some(80)) | (Some("https"), Some(443))
            );
            if default_port {
                authority.host()
            } else {
                authority.as_str()
            }
        });
        Self {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            host,
            headers: headers
                .iter()
                .map(|(name, value)| (Cow::Borrowed(name.as_str()), value.as_bytes()))
                .collect(),
        }
    }
}

/// Where the signature goes, with the values that differ between the two places.
pub(crate) enum Placement<'p> {
    /// `Authorization` header; SigV4's own headers join the signed headers.
    Headers {
        amz_date: &'p str,
        session_token: Option<&'p str>,
        /// Whether `x-amz-content-sha256` (the payload hash) is sent and signed.
        content_sha256: bool,
    },
    /// Presigned URL; SigV4's values are query parameters.
    Query {
        algorithm: &'p str,
        amz_date: &'p str,
        /// `X-Amz-Credential`: the access key id, then `/` and the scope.
        credential: (&'p str, &'p crate::stages::Scope),
        expires_secs: u64,
        session_token: Option<&'p str>,
    },
}

/// Step one of SigV4, its six parts named as AWS's documentation names them. `Display`
/// writes exactly the bytes that are hashed (header values that are not UTF-8 show as
/// U+FFFD; [`to_bytes`](Self::to_bytes) gives the bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    method: Cow<'static, str>,
    /// The path, normalized and encoded as the settings say.
    canonical_uri: String,
    /// `key=value` pairs, encoded, sorted, joined with `&`.
    canonical_query: String,
    /// `name:value\n` for each signed header, sorted by name; the values of a repeated name
    /// joined by `,`. Bytes: a header value need not be UTF-8.
    canonical_headers: Vec<u8>,
    /// The signed header names, joined with `;`.
    signed_headers: String,
    /// The body's SHA-256 in hex, or a literal such as `UNSIGNED-PAYLOAD`.
    payload_hash: Cow<'static, str>,
    /// Values never shown by [`CanonicalRequest::redacted`]: the session token, customer keys.
    sensitive: Sensitive,
}

/// Where the sensitive values sit in the parts that can hold them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Sensitive {
    in_query: Vec<Range<usize>>,
    in_headers: Vec<Range<usize>>,
}

impl CanonicalRequest {
    /// Builds step one for `request`, signed as `placement` says, with `payload_hash` as its
    /// last line.
    pub(crate) fn new(
        request: &SignableRequest<'_>,
        settings: &SigningSettings,
        placement: &Placement<'_>,
        payload_hash: Cow<'static, str>,
    ) -> Result<Self, CanonicalError> {
        let mut headers = HeaderList::new();
        collect_headers(&mut headers, request, settings, placement, &payload_hash)?;
        let mut signed_headers =
            Vec::with_capacity(headers.iter().map(|(name, _)| name.len() + 1).sum());
        write_signed_names(&mut signed_headers, &headers);

        // Encoding makes a byte at most three.
        let mut canonical_uri = Vec::with_capacity(3 * request.path.len() + 1);
        write_path(&mut canonical_uri, request.path, settings);

        let mut sensitive = Sensitive::default();
        let mut canonical_query = Vec::new();
        let query = request.query.unwrap_or("");
        if !query.is_empty() || matches!(placement, Placement::Query { .. }) {
            write_query(
                &mut canonical_query,
                query,
                placement,
                &signed_headers,
                settings,
                &mut sensitive.in_query,
            );
        }

        let mut canonical_headers =
            Vec::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (i, (name, value)) in headers.iter().enumerate() {
            let continues = i > 0 && headers[i - 1].0 == *name;
            if continues {
                canonical_headers.pop(); // the newline: the value joins the line before
                canonical_headers.push(b',');
            } else {
                canonical_headers.extend_from_slice(name.as_bytes());
                canonical_headers.push(b':');
            }
            let start = canonical_headers.len();
            write_trimmed(&mut canonical_headers, value);
            if SENSITIVE_HEADERS.contains(name) {
                sensitive.in_headers.push(start..canonical_headers.len());
            }
            canonical_headers.push(b'\n');
        }

        drop(headers); // it borrows `payload_hash`, which moves into the result
        let ascii = |bytes: Vec<u8>| {
            String::from_utf8(bytes).expect("percent-encoding and header names write only ASCII")
        };
        Ok(Self {
            method: method_name(request.method),
            canonical_uri: ascii(canonical_uri),
            canonical_query: ascii(canonical_query),
            canonical_headers,
            signed_headers: ascii(signed_headers),
            payload_hash,
            sensitive,
        })
    }

    /// The parts in order with the newlines between them: the one definition of the
    /// layout, which hashing, [`to_bytes`](Self::to_bytes) and `Display` all use.
    pub(crate) fn parts(&self) -> [&[u8]; 11] {
        [
            self.method.as_bytes(),
            b"\n",
            self.canonical_uri.as_bytes(),
            b"\n",
            self.canonical_query.as_bytes(),
            b"\n",
            &self.canonical_headers,
            b"\n",
            self.signed_headers.as_bytes(),
            b"\n",
            self.payload_hash.as_bytes(),
        ]
    }

    /// The exact bytes that are hashed into the string to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts().concat()
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The canonical URI (the path as signed).
    pub fn canonical_uri(&self) -> &str {
        &self.canonical_uri
    }

    /// The canonical query string.
    pub fn canonical_query(&self) -> &str {
        &self.canonical_query
    }

    /// The `SignedHeaders` list (`host;x-amz-date`).
    pub fn signed_headers(&self) -> &str {
        &self.signed_headers
    }

    /// The payload hash, the last line.
    pub fn payload_hash(&self) -> &str {
        &self.payload_hash
    }

    /// A form for logs: the session token and customer-provided keys are replaced.
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(self)
    }
}

impl fmt::Display for CanonicalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts()
            .iter()
            .try_for_each(|part| f.write_str(&String::from_utf8_lossy(part)))
    }
}

impl fmt::Debug for CanonicalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalRequest({:?})", self.redacted().to_string())
    }
}

/// [`CanonicalRequest`] for logs: sensitive values replaced by `** redacted **`.
#[derive(Clone, Copy)]
pub struct Redacted<'c>(&'c CanonicalRequest);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = self.0;
        let redacted = |f: &mut fmt::Formatter<'_>, text: &[u8], ranges: &[Range<usize>]| {
            let mut at = 0;
            for range in ranges {
                f.write_str(&String::from_utf8_lossy(&text[at..range.start]))?;
                f.write_str("** redacted **")?;
                at = range.end;
            }
            f.write_str(&String::from_utf8_lossy(&text[at..]))
        };
        write!(f, "{}\n{}\n", request.method, request.canonical_uri)?;
        redacted(
            f,
            request.canonical_query.as_bytes(),
            &request.sensitive.in_query,
        )?;
        f.write_str("\n")?;
        redacted(f, &request.canonical_headers, &request.sensitive.in_headers)?;
        write!(f, "\n{}\n{}", request.signed_headers, request.payload_hash)
    }
}

/// The method as a static name when it is one of HTTP's, else owned.
fn method_name(method: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    match KNOWN.iter().find(|known| **known == method) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(method.to_owned()),
    }
}

/// Why a request can't be put in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CanonicalError {
    NoHost,
    BadHeaderName(String),
}

fn write_path(out: &mut Vec<u8>, path: &str, settings: &SigningSettings) {
    let path = if settings.normalize_path {
        normalize_path(path)
    } else if path.is_empty() {
        Cow::Borrowed("/")
    } else {
        Cow::Borrowed(path)
    };
    match settings.path_encoding {
        PathEncoding::Double => percent_encode_into(out, path.as_bytes(), true),
        PathEncoding::Single => encode_unsafe_path_bytes_into(out, path.as_bytes()),
    }
}

/// `name1;name2;...`, each name once.
fn write_signed_names(out: &mut Vec<u8>, headers: &[(&str, &[u8])]) {
    for (i, (name, _)) in headers.iter().enumerate() {
        if i == 0 || headers[i - 1].0 != *name {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_bytes());
        }
    }
}

/// A header SigV4 itself sets (name, value when it is set).
type OwnHeader<'v> = (&'static str, Option<&'v [u8]>);

/// Headers to sign; up to 32 (an S3 PUT with a dozen metadata headers has 16) stay on the
/// stack.
type HeaderList<'r> = SmallVec<[(&'r str, &'r [u8]); 32]>;

/// The headers to sign, lowercase names sorted (stable, so repeated names keep their order).
fn collect_headers<'r>(
    headers: &mut HeaderList<'r>,
    request: &'r SignableRequest<'_>,
    settings: &SigningSettings,
    placement: &'r Placement<'_>,
    payload_hash: &'r str,
) -> Result<(), CanonicalError> {
    // SigV4's own headers replace any the caller set (header placement only).
    let (own, token_signed): (&[OwnHeader<'_>], bool) = match placement {
        Placement::Headers {
            amz_date,
            session_token,
            content_sha256,
        } => (
            &[
                (names::X_AMZ_DATE, Some(amz_date.as_bytes())),
                (
                    names::X_AMZ_SECURITY_TOKEN,
                    session_token.map(str::as_bytes),
                ),
                (
                    names::X_AMZ_CONTENT_SHA256,
                    content_sha256.then_some(payload_hash.as_bytes()),
                ),
            ],
            settings.session_token == SessionTokenMode::Signed,
        ),
        Placement::Query { .. } => (&[], true),
    };
    let presigned = matches!(placement, Placement::Query { .. });
    let skip = |name: &str| {
        settings.excluded_headers.iter().any(|e| e == name)
            || (presigned && matches!(name, "x-amz-user-agent" | "x-amz-checksum-mode"))
            || (!token_signed && name == names::X_AMZ_SECURITY_TOKEN)
    };

    for (name, value) in &request.headers {
        let name = name.as_ref();
        if !name.bytes().all(is_token_byte) || name.is_empty() {
            return Err(CanonicalError::BadHeaderName(name.to_owned()));
        }
        let replaced = own
            .iter()
            .any(|(own_name, v)| v.is_some() && *own_name == name);
        if !replaced && !skip(name) {
            headers.push((name, value));
        }
    }
    if !request.headers.iter().any(|(name, _)| name == names::HOST) && !skip(names::HOST) {
        let host = request.host.ok_or(CanonicalError::NoHost)?;
        headers.push((names::HOST, host.as_bytes()));
    }
    // SigV4's own headers are always signed (AWS requires it), so the exclusion list, which
    // is for headers proxies change, does not apply to them; only an unsigned session token.
    for (name, value) in own {
        if let Some(value) = value
            && (token_signed || *name != names::X_AMZ_SECURITY_TOKEN)
        {
            headers.push((name, value));
        }
    }
    headers.sort_by(|a, b| a.0.cmp(b.0));
    Ok(())
}

/// RFC 9110 token characters, the only ones a header name may hold.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes a header value with leading and trailing spaces removed and runs of spaces made
/// one. Only the space character: S3 and AWS's SDKs leave tabs alone.
fn write_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        started = true;
        out.push(b);
    }
}
