//! The canonical query string: every parameter of the request's query decoded and encoded
//! again the one SigV4 way, with a presigned URL's own parameters, sorted by key and then
//! value (byte order), joined with `&` (AWS, "Create a canonical request", step 3).

use std::ops::Range;

use smallvec::SmallVec;

use crate::canonical::Placement;
use crate::encoding::{percent_encode_into, reencode_form_pairs_into};
use crate::names;
use crate::settings::{SessionTokenMode, SigningSettings};
use crate::stages::credential_parts;

/// One `key=value` of the canonical query: where its encoded key and value sit in the
/// buffer, and whether the value is the session token (redacted in logs).
struct QueryPair {
    key: Range<usize>,
    value: Range<usize>,
    is_token: bool,
}

impl QueryPair {
    /// The pair whose key starts at `key_start` and whose value runs from `value_start` to
    /// the end of `out`.
    fn ending_at(out: &[u8], key_start: usize, value_start: usize, is_token: bool) -> Self {
        Self {
            key: key_start..value_start,
            value: value_start..out.len(),
            is_token,
        }
    }
}

/// Writes the canonical query string: every key and value of `query` decoded and encoded
/// again the one SigV4 way, with a presigned URL's own parameters, sorted by key, then
/// value (byte order), joined with `&`. `out` must be empty.
pub(crate) fn write_query(
    out: &mut Vec<u8>,
    query: &str,
    placement: &Placement<'_>,
    signed_headers: &[u8],
    settings: &SigningSettings,
    sensitive: &mut Vec<Range<usize>>,
) {
    debug_assert!(out.is_empty());
    // Encoded, a byte takes at most three; a presigned URL adds its parameters. The pairs
    // are encoded unsorted into `out`, then copied after themselves in order, and the
    // unsorted copy dropped: one buffer, sized once.
    let extra = match placement {
        Placement::Query {
            credential,
            session_token,
            ..
        } => 200 + credential.0.len() + signed_headers.len() + session_token.map_or(0, str::len),
        Placement::Headers { .. } => 0,
    };
    out.reserve(2 * (3 * (query.len() + extra)));
    let mut pairs: SmallVec<[QueryPair; 24]> = SmallVec::new();
    // The request's own parameters are form-encoded: decoded first.
    reencode_form_pairs_into(out, query.as_bytes(), |key, value| {
        pairs.push(QueryPair {
            key,
            value,
            is_token: false,
        })
    });
    if let Placement::Query {
        algorithm,
        amz_date,
        credential: (id, scope),
        expires_secs,
        session_token,
    } = placement
    {
        use names::query;
        let mut digits = [0; 20];
        let expires = decimal_into(&mut digits, *expires_secs);
        let token = session_token.filter(|_| settings.session_token == SessionTokenMode::Signed);
        let credential = credential_parts(id, scope);
        let parameters: [(&str, &[&str], bool); 6] = [
            (query::ALGORITHM, &[algorithm], false),
            (query::CREDENTIAL, &credential, false),
            (query::DATE, &[amz_date], false),
            (
                query::EXPIRES,
                &[std::str::from_utf8(expires).expect("digits")],
                false,
            ),
            (
                query::SIGNED_HEADERS,
                &[std::str::from_utf8(signed_headers).expect("ASCII names")],
                false,
            ),
            (query::SECURITY_TOKEN, &[token.unwrap_or_default()], true),
        ];
        for (key, value_parts, is_token) in parameters {
            if is_token && token.is_none() {
                continue;
            }
            let key_start = out.len();
            percent_encode_into(out, key.as_bytes(), false);
            let value_start = out.len();
            for part in value_parts {
                percent_encode_into(out, part.as_bytes(), false);
            }
            pairs.push(QueryPair::ending_at(out, key_start, value_start, is_token));
        }
    }
    let encoded = &out[..];
    pairs.sort_by(|a, b| {
        (&encoded[a.key.clone()], &encoded[a.value.clone()])
            .cmp(&(&encoded[b.key.clone()], &encoded[b.value.clone()]))
    });
    let unsorted = out.len();
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_within(pair.key.clone());
        out.push(b'=');
        let start = out.len();
        out.extend_from_within(pair.value.clone());
        if pair.is_token {
            sensitive.push(start - unsorted..out.len() - unsorted);
        }
    }
    out.drain(..unsorted);
}

/// `n` in decimal, written at the end of `buffer` (a u64 has at most 20 digits).
fn decimal_into(buffer: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buffer[at..];
        }
    }
}
