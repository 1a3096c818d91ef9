//! Step one of SigV4: the canonical request, built byte for byte into one buffer.
//!
//! ```text
//! METHOD \n CANONICAL_PATH \n CANONICAL_QUERY \n CANONICAL_HEADERS \n SIGNED_HEADERS \n PAYLOAD_HASH
//! ```

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

use crate::encoding::{
    encode_unsafe_path_bytes_into, form_decode, normalize_path, percent_encode_into,
};
use crate::settings::{PathEncoding, SessionTokenMode, SigningSettings};

/// Header and query parameter names SigV4 itself uses.
pub(crate) mod names {
    pub const X_AMZ_DATE: &str = "x-amz-date";
    pub const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
    pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
    pub const HOST: &str = "host";
    pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
}

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
        let host = uri.authority().map(|authority| {
            // Most authorities are a bare host name: nothing to strip, no port to parse.
            let bytes = authority.as_str().as_bytes();
            if !has_byte(bytes, b':') && !has_byte(bytes, b'@') {
                return authority.as_str();
            }
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
        amz_date: &'p [u8; 16],
        session_token: Option<&'p str>,
        content_sha256: Option<&'p str>,
    },
    /// Presigned URL; SigV4's values are query parameters.
    Query {
        amz_date: &'p [u8; 16],
        credential: &'p str,
        expires_secs: u64,
        session_token: Option<&'p str>,
    },
}

/// Step one of SigV4, borrowed from a [`SigningOutput`](crate::SigningOutput). `Display`
/// is exactly the bytes that are hashed (as UTF-8; header values that are not UTF-8 show as
/// U+FFFD, see [`as_bytes`](Self::as_bytes) for the bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CanonicalRequest<'o> {
    bytes: &'o [u8],
    layout: &'o CanonicalLayout,
}

/// Where the parts of a canonical request that are read again sit in its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CanonicalLayout {
    signed_headers: Range<usize>,
    /// Values never shown by [`CanonicalRequest::redacted`] (session token, customer keys).
    sensitive: Vec<Range<usize>>,
}

impl<'o> CanonicalRequest<'o> {
    pub(crate) fn new(bytes: &'o [u8], layout: &'o CanonicalLayout) -> Self {
        Self { bytes, layout }
    }

    /// The exact bytes that are hashed into the string to sign.
    pub fn as_bytes(&self) -> &'o [u8] {
        self.bytes
    }

    /// The `SignedHeaders` list (`host;x-amz-date`).
    pub fn signed_headers(&self) -> &'o str {
        // Header names are checked to be visible ASCII when they are written.
        std::str::from_utf8(self.signed_headers_bytes()).unwrap_or("")
    }

    pub(crate) fn signed_headers_bytes(&self) -> &'o [u8] {
        &self.bytes[self.layout.signed_headers.clone()]
    }

    /// The payload hash, the last line.
    pub fn payload_hash(&self) -> &'o str {
        let start = self
            .bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        std::str::from_utf8(&self.bytes[start..]).unwrap_or_default()
    }

    /// A form for logs: the session token and customer-provided keys are replaced.
    pub fn redacted(&self) -> Redacted<'o> {
        Redacted(*self)
    }
}

/// Appends the canonical request to `bytes` (which must be empty: the layout's positions
/// count from its start) and says where its parts are.
pub(crate) fn write_canonical_request(
    bytes: &mut Vec<u8>,
    request: &SignableRequest<'_>,
    settings: &SigningSettings,
    placement: &Placement<'_>,
    payload_hash: &str,
) -> Result<CanonicalLayout, CanonicalError> {
    debug_assert!(bytes.is_empty());
    bytes.extend_from_slice(request.method.as_bytes());
    bytes.push(b'\n');
    write_path(bytes, request.path, settings);
    bytes.push(b'\n');

    let mut headers = HeaderList::new();
    collect_headers(&mut headers, request, settings, placement)?;
    let mut sensitive = Vec::new();
    let query = request.query.unwrap_or("");
    if query.is_empty() && matches!(placement, Placement::Headers { .. }) {
        // Nothing to sort or encode: the common case of a header-signed request.
    } else {
        // Presigned: the signed header list is itself a query parameter.
        let mut signed = Vec::new();
        if matches!(placement, Placement::Query { .. }) {
            write_signed_names(&mut signed, &headers);
        }
        write_query(bytes, query, placement, &signed, settings, &mut sensitive);
    }
    bytes.push(b'\n');

    for (i, (name, value)) in headers.iter().enumerate() {
        let continues = i > 0 && headers[i - 1].0 == *name;
        if continues {
            bytes.push(b',');
        } else {
            if i > 0 {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(b':');
        }
        let start = bytes.len();
        write_trimmed(bytes, value);
        if SENSITIVE_HEADERS.contains(name) {
            sensitive.push(start..bytes.len());
        }
    }
    bytes.extend_from_slice(b"\n\n");
    let signed_start = bytes.len();
    write_signed_names(bytes, &headers);
    let signed_headers = signed_start..bytes.len();
    bytes.push(b'\n');
    bytes.extend_from_slice(payload_hash.as_bytes());
    Ok(CanonicalLayout {
        signed_headers,
        sensitive,
    })
}

/// A first guess at the canonical request's length, so that its buffer (which the string
/// to sign shares) is allocated once for most requests.
pub(crate) fn size_hint(request: &SignableRequest<'_>) -> usize {
    let headers: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    // Fixed lines, the host, SigV4's own headers, the string to sign and the access key id
    // fit in 384 bytes unless region and service names are unusually long.
    384 + request.method.len() + request.path.len() + request.query.map_or(0, str::len) + headers
}

impl fmt::Display for CanonicalRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.bytes))
    }
}

impl fmt::Debug for CanonicalRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalRequest({:?})", self.redacted().to_string())
    }
}

/// [`CanonicalRequest`] for logs: sensitive values replaced by `** redacted **`.
#[derive(Clone, Copy)]
pub struct Redacted<'c>(CanonicalRequest<'c>);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut at = 0;
        for range in &self.0.layout.sensitive {
            f.write_str(&String::from_utf8_lossy(&self.0.bytes[at..range.start]))?;
            f.write_str("** redacted **")?;
            at = range.end;
        }
        f.write_str(&String::from_utf8_lossy(&self.0.bytes[at..]))
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

/// Headers to sign; most requests have few, so they stay on the stack.
type HeaderList<'r> = SmallVec<[(&'r str, &'r [u8]); 12]>;

/// The headers to sign, lowercase names sorted (stable, so repeated names keep their order).
fn collect_headers<'r>(
    headers: &mut HeaderList<'r>,
    request: &'r SignableRequest<'_>,
    settings: &SigningSettings,
    placement: &'r Placement<'_>,
) -> Result<(), CanonicalError> {
    // SigV4's own headers replace any the caller set (header placement only).
    let (own, token_signed): (&[OwnHeader<'_>], bool) = match placement {
        Placement::Headers {
            amz_date,
            session_token,
            content_sha256,
        } => (
            &[
                (names::X_AMZ_DATE, Some(&amz_date[..])),
                (
                    names::X_AMZ_SECURITY_TOKEN,
                    session_token.map(str::as_bytes),
                ),
                (
                    names::X_AMZ_CONTENT_SHA256,
                    content_sha256.map(str::as_bytes),
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

/// Whether `bytes` holds `wanted`. A scan without early exit, which the compiler turns
/// into vector compares: for the short strings of a request (host names, header values)
/// that is a few instructions, where `memchr`'s set-up costs dozens per call.
fn has_byte(bytes: &[u8], wanted: u8) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b == wanted))
}

/// RFC 9110 token characters, the only ones a header name may hold.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes a header value with leading and trailing spaces removed and runs of spaces made
/// one. Only the space character: S3 and AWS's SDKs leave tabs alone.
fn write_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    // Most values have no space at all.
    let clean = !has_byte(value, b' ')
        || (value.first() != Some(&b' ')
            && value.last() != Some(&b' ')
            && !value.windows(2).any(|w| w == b"  "));
    if clean {
        out.extend_from_slice(value);
        return;
    }
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

fn write_query(
    out: &mut Vec<u8>,
    query: &str,
    placement: &Placement<'_>,
    signed_headers: &[u8],
    settings: &SigningSettings,
    sensitive: &mut Vec<Range<usize>>,
) {
    // Every key and value is decoded, then encoded again the one canonical way, into one
    // scratch buffer; pairs are sorted by their encoded bytes.
    let mut scratch: Vec<u8> = Vec::new();
    let mut pairs: Vec<(Range<usize>, Range<usize>, bool)> = Vec::new();
    let mut push = |key: &[u8], value: &[u8], is_token: bool| {
        let k = scratch.len();
        percent_encode_into(&mut scratch, key, false);
        let v = scratch.len();
        percent_encode_into(&mut scratch, value, false);
        pairs.push((k..v, v..scratch.len(), is_token));
    };
    for pair in query.as_bytes().split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        push(&form_decode(key), &form_decode(value), false);
    }
    if let Placement::Query {
        amz_date,
        credential,
        expires_secs,
        session_token,
    } = placement
    {
        push(b"X-Amz-Algorithm", names::ALGORITHM.as_bytes(), false);
        push(b"X-Amz-Credential", credential.as_bytes(), false);
        push(b"X-Amz-Date", &amz_date[..], false);
        push(b"X-Amz-Expires", expires_secs.to_string().as_bytes(), false);
        push(b"X-Amz-SignedHeaders", signed_headers, false);
        if let Some(token) = session_token
            && settings.session_token == SessionTokenMode::Signed
        {
            push(b"X-Amz-Security-Token", token.as_bytes(), true);
        }
    }
    pairs.sort_by(|a, b| {
        (&scratch[a.0.clone()], &scratch[a.1.clone()])
            .cmp(&(&scratch[b.0.clone()], &scratch[b.1.clone()]))
    });
    for (i, (key, value, is_token)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&scratch[key]);
        out.push(b'=');
        let start = out.len();
        out.extend_from_slice(&scratch[value]);
        if is_token {
            sensitive.push(start..out.len());
        }
    }
}
