//! Test support (feature `testing`, never for production builds): the AWS SigV4 test suite
//! that ships inside the `aws-sigv4` crate, and a proptest generator of requests.
//!
//! Unlike the rest of this crate, this module reads files and runs `cargo metadata` to find
//! the suite in the cargo registry. Backends use it to compare device signatures with the
//! software signer's on the same data.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;

use crate::{
    CachePolicy, SessionTokenMode, SignableRequest, Signer, SigningParams, SigningSettings,
    SoftwareRootKey,
};

/// The suite's `v4` folder, found through `cargo metadata` (the `aws-sigv4` package in the
/// dependency graph). Panics with what to do when it can't be found.
pub fn suite_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(manifest_dir)
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("cargo metadata JSON: {e}"));
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "aws-sigv4")
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| {
            panic!(
                "aws-sigv4 is not in the dependency graph (it is a dev-dependency of sigv4-core)"
            )
        });
    let dir = Path::new(manifest)
        .parent()
        .map(|p| p.join("aws-signing-test-suite/v4"))
        .unwrap_or_default();
    assert!(dir.is_dir(), "no test suite at {}", dir.display());
    dir
}

/// `context.json` of a suite case.
#[derive(Clone, Debug)]
pub struct Context {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (the suite's public example key).
    pub secret_access_key: String,
    /// Session token, if any.
    pub token: Option<String>,
    /// Region.
    pub region: String,
    /// Signing name of the service.
    pub service: String,
    /// Signing time.
    pub time: time::OffsetDateTime,
    /// Path normalization on or off.
    pub normalize: bool,
    /// Whether `x-amz-content-sha256` is added (header signing).
    pub sign_body: bool,
    /// Whether the session token is left out of the signature.
    pub omit_session_token: bool,
    /// Presigned URL validity.
    pub expires_in: u64,
}

impl Context {
    fn parse(text: &str) -> Self {
        let v: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("context.json: {e}"));
        let s = |key: &str| v[key].as_str().map(str::to_owned);
        let timestamp = s("timestamp").unwrap_or_default();
        Self {
            access_key_id: v["credentials"]["access_key_id"]
                .as_str()
                .unwrap_or_default()
                .into(),
            secret_access_key: v["credentials"]["secret_access_key"]
                .as_str()
                .unwrap_or_default()
                .into(),
            token: v["credentials"]["token"].as_str().map(str::to_owned),
            region: s("region").unwrap_or_default(),
            service: s("service").unwrap_or_default(),
            time: time::OffsetDateTime::parse(
                &timestamp,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap_or_else(|e| panic!("timestamp {timestamp:?}: {e}")),
            normalize: v["normalize"].as_bool().unwrap_or(true),
            sign_body: v["sign_body"].as_bool().unwrap_or(false),
            omit_session_token: v["omit_session_token"].as_bool().unwrap_or(false),
            expires_in: v["expiration_in_seconds"].as_u64().unwrap_or(3600),
        }
    }

    /// Settings this context asks for.
    pub fn settings(&self) -> SigningSettings {
        SigningSettings {
            normalize_path: self.normalize,
            content_sha256_header: self.sign_body,
            session_token: if self.omit_session_token {
                SessionTokenMode::AppendedOnly
            } else {
                SessionTokenMode::Signed
            },
            ..SigningSettings::default()
        }
    }

    /// A signer for this context over any root key holding the context's secret.
    pub fn signer_with(&self, root: impl crate::RootKey + 'static, cache: CachePolicy) -> Signer {
        let mut signer = Signer::new(self.access_key_id.clone(), root)
            .with_settings(self.settings())
            .with_cache_policy(cache);
        if let Some(token) = &self.token {
            signer = signer.with_session_token(token.clone());
        }
        signer
    }

    /// A signer for this context with the software key.
    pub fn signer(&self) -> Signer {
        self.signer_with(
            SoftwareRootKey::from_secret_access_key(&self.secret_access_key),
            CachePolicy::PerScope,
        )
    }

    /// Signing parameters for this context.
    pub fn params(&self) -> SigningParams<'_> {
        SigningParams::new(&self.region, &self.service).at(self.time)
    }
}

/// A raw HTTP/1.1 request as the suite writes it (`request.txt`).
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// Method.
    pub method: String,
    /// Request target exactly as written (may hold raw spaces and UTF-8).
    pub target: String,
    /// Headers in order; obsolete line folding is unfolded into spaces (RFC 9112 5.2).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Parses the suite's request format.
    pub fn parse(text: &[u8]) -> Self {
        let text = String::from_utf8_lossy(text);
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default();
        let (method, rest) = first.split_once(' ').unwrap_or((first, ""));
        let target = rest.rsplit_once(" HTTP/").map_or(rest, |(t, _)| t);
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(b' ');
                    value.extend_from_slice(line.as_bytes());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.as_bytes().to_vec()));
            }
        }
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// The request for the signer.
    pub fn signable(&self) -> SignableRequest<'_> {
        self.headers.iter().fold(
            SignableRequest::new(&self.method, &self.target),
            |req, (name, value)| req.header(name, value),
        )
    }
}

/// One folder of the suite.
#[derive(Clone, Debug)]
pub struct SuiteCase {
    /// Folder name, e.g. `get-vanilla`.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// `context.json`, absent in two folders that only check the canonical request.
    pub context: Option<Context>,
    /// `request.txt`.
    pub request: RawRequest,
}

impl SuiteCase {
    /// Loads one case by name.
    pub fn load(name: &str) -> Self {
        Self::load_from(&suite_dir().join(name))
    }

    fn load_from(dir: &Path) -> Self {
        let read = |file: &str| std::fs::read(dir.join(file));
        Self {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: dir.to_owned(),
            context: read("context.json")
                .ok()
                .map(|t| Context::parse(&String::from_utf8_lossy(&t))),
            request: RawRequest::parse(
                &read("request.txt").unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
            ),
        }
    }

    /// An expected file, e.g. `expected("header", "signature")` reads
    /// `header-signature.txt`.
    pub fn expected(&self, mode: &str, stage: &str) -> String {
        let path = self.dir.join(format!("{mode}-{stage}.txt"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Every case of the suite, sorted by name.
pub fn suite_cases() -> Vec<SuiteCase> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .unwrap_or_else(|e| panic!("reading the suite: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| SuiteCase::load_from(d)).collect()
}

/// A request from the differential generator.
#[derive(Clone, Debug)]
pub struct ArbRequest {
    /// Method.
    pub method: String,
    /// Absolute URI (`https://host/path?query`).
    pub uri: String,
    /// Headers in order (names in mixed case, values with runs of spaces).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ArbRequest {
    /// As an `http::Request`.
    pub fn to_http(&self) -> http::Request<Vec<u8>> {
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.uri.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(self.body.clone())
            .unwrap_or_else(|e| panic!("generator made an invalid request {self:?}: {e}"))
    }
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_~.-]{1,8}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
        // Percent-encoded spaces, UTF-8 and reserved characters, and sub-delims left raw.
        2 => prop::sample::select(vec![
            "a%20b", "%E1%88%B4", "%2F", "%3D%26", "%25", "%7E", "x%2Bx", "caf%C3%A9",
            "a:b", "a@b", "a=b", "a!$'()*,;", "a+b",
        ]).prop_map(str::to_owned),
    ]
}

fn query_part() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_~.-]{0,8}",
        2 => prop::sample::select(vec![
            "a%20b", "%E1%88%B4", "a+b", "%2B", "%3D", "a%26b", "%7e", "/path", "a:b@c",
            "x,y", "%25", "*", "!", "(x)", "'q'", "$", ";", "A-Z_",
        ]).prop_map(str::to_owned),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = (query_part(), prop::option::weighted(0.8, query_part()));
    prop::option::weighted(
        0.7,
        prop::collection::vec(pair, 0..6).prop_flat_map(|pairs| {
            // Repeat some keys with other values.
            let repeat = pairs.first().cloned();
            (Just(pairs), prop::bool::ANY, Just(repeat))
        }),
    )
    .prop_map(|generated| {
        generated.map(|(mut pairs, dup, repeat)| {
            if let (true, Some((key, _))) = (dup, repeat) {
                pairs.push((key, Some("again".to_owned())));
            }
            pairs
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k,
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    })
}

fn header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        3 => "[xX]-[a-zA-Z]{1,6}-[a-zA-Z0-9]{1,4}",
        1 => prop::sample::select(vec![
            "Content-Type", "content-type", "X-Amz-Meta-Key", "x-amz-meta-key", "Accept",
            "User-Agent", "X-Amzn-Trace-Id", "My-Header1", "Content-Length", "X-Amz-Target",
            "x-amz-user-agent", "X-Amz-Checksum-Mode",
        ]).prop_map(str::to_owned),
    ];
    // Values: words separated by runs of spaces (folded whitespace), leading/trailing blanks.
    let value = (
        " {0,3}",
        prop::collection::vec("[a-zA-Z0-9/+=:;,._-]{1,10}", 0..4),
        prop::collection::vec(" {1,4}", 4),
        " {0,3}",
    )
        .prop_map(|(lead, words, gaps, trail)| {
            let mut out = lead;
            for (i, word) in words.iter().enumerate() {
                if i > 0 {
                    out.push_str(&gaps[i % gaps.len()]);
                }
                out.push_str(word);
            }
            out.push_str(&trail);
            out
        });
    (name, value)
}

/// Requests of many shapes: methods; paths with percent-encoded spaces and UTF-8, dot
/// segments and repeated slashes; queries with repeated keys, empty values and reserved
/// characters; headers in mixed case, repeated, with runs of spaces; optional bodies.
pub fn arb_request() -> impl Strategy<Value = ArbRequest> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]);
    let host = prop::sample::select(vec![
        "https://example.amazonaws.com",
        "https://sts.us-east-1.amazonaws.com",
        "http://127.0.0.1:8080",
        "https://bucket.s3.amazonaws.com:443",
        "http://localhost:80",
    ]);
    let path = (prop::collection::vec(path_segment(), 0..6), prop::bool::ANY).prop_map(
        |(segments, trailing)| {
            let mut path = String::new();
            for s in segments {
                path.push('/');
                path.push_str(&s);
            }
            if trailing || path.is_empty() {
                path.push('/');
            }
            path
        },
    );
    let body = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    (
        method,
        host,
        path,
        query(),
        prop::collection::vec(header(), 0..6),
        body,
    )
        .prop_map(|(method, host, path, query, headers, body)| ArbRequest {
            method: method.to_owned(),
            uri: match query {
                Some(q) => format!("{host}{path}?{q}"),
                None => format!("{host}{path}"),
            },
            headers,
            body,
        })
}

mod shapes;
pub use shapes::{SHAPE_SESSION_TOKEN, Shape, shapes};
