//! The canonical query string: every parameter of the request's query decoded and encoded
//! again the one SigV4 way, with a presigned URL's own parameters, sorted by key and then
//! value (byte order), joined with `&` (AWS, "Create a canonical request", step 3).

use std::ops::Range;

use smallvec::SmallVec;

use crate::canonical::{HeaderList, Placement, Places, signed_names};
use crate::encoding::{decimal_into, percent_encode_into, reencode_form_pairs_into};
use crate::names;
use crate::settings::{SessionTokenMode, SigningSettings};
use crate::stages::credential_parts;

/// One `key=value` of the canonical query: where its encoded key and value sit in the
/// buffer, whether the value is the session token (redacted in logs), and whether the pair
/// is a presigned URL's own (kept for the URI).
struct QueryPair {
    key: Range<usize>,
    value: Range<usize>,
    is_token: bool,
    /// For a presigned URL's own pair, its place in the order they were added.
    presigning: Option<usize>,
}

/// Where a presigned URL's own `key=value` pairs lie in the canonical request's text,
/// encoded, in the order they were added (algorithm, credential, date, expires, signed
/// headers, then the session token when it is signed): the presigned URI copies them rather
/// than encoding them a second time (bench row `shape-presigned-with-query`: the second
/// encoding was 8.5% of a signature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PresigningPairs {
    spans: [(u32, u32); 6],
    len: u8,
}

impl PresigningPairs {
    fn set(&mut self, slot: usize, span: Range<usize>) {
        let at = |i: usize| u32::try_from(i).expect("a canonical request is under 4 GiB");
        self.spans[slot] = (at(span.start), at(span.end));
        self.len = self
            .len
            .max(u8::try_from(slot + 1).expect("six pairs at most"));
    }

    /// The pairs' places, in the order they were added.
    pub(crate) fn spans(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let used = &self.spans[..usize::from(self.len)];
        used.iter()
            .map(|&(start, end)| start as usize..end as usize)
    }
}

/// Room the canonical query of `query` needs while [`write_query`] works: encoded, a byte
/// takes at most three; a presigned URL adds its parameters; the pairs are written twice
/// (unsorted, then in order) before the unsorted copy goes.
pub(crate) fn query_capacity(
    query: &str,
    placement: &Placement<'_>,
    headers: &HeaderList<'_>,
) -> usize {
    let extra = match placement {
        Placement::Query {
            credential,
            session_token,
            ..
        } => {
            let names: usize = headers.iter().map(|(name, _)| name.len() + 3).sum();
            200 + credential.0.len() + names + session_token.map_or(0, str::len)
        }
        Placement::Headers { .. } => 0,
    };
    2 * 3 * (query.len() + extra)
}

/// Appends the canonical query string to `out`: every key and value of `query` decoded and
/// encoded again the one SigV4 way, with a presigned URL's own parameters, sorted by key,
/// then value (byte order), joined with `&`. `headers` are the signed headers (a presigned
/// URL names them); `sensitive` gets where the session token lies in `out`, `presigning`
/// where a presigned URL's own pairs do.
pub(crate) fn write_query(
    out: &mut Vec<u8>,
    query: &str,
    placement: &Placement<'_>,
    headers: &HeaderList<'_>,
    settings: &SigningSettings,
    (sensitive, presigning): (&mut Places, &mut PresigningPairs),
) {
    // The pairs are encoded unsorted after what `out` holds, then copied after themselves
    // in order, and the unsorted copy dropped: one buffer, sized by `query_capacity`.
    let unsorted = out.len();
    let mut pairs: SmallVec<[QueryPair; 24]> = SmallVec::new();
    // The request's own parameters are form-encoded: decoded first.
    reencode_form_pairs_into(out, query.as_bytes(), |key, value| {
        pairs.push(QueryPair {
            key,
            value,
            is_token: false,
            presigning: None,
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
            (query::SIGNED_HEADERS, &[], false),
            (query::SECURITY_TOKEN, &[token.unwrap_or_default()], true),
        ];
        let mut added = 0;
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
            if key == query::SIGNED_HEADERS {
                for (i, name) in signed_names(headers).enumerate() {
                    if i > 0 {
                        percent_encode_into(out, b";", false);
                    }
                    percent_encode_into(out, name.as_bytes(), false);
                }
            }
            pairs.push(QueryPair {
                key: key_start..value_start,
                value: value_start..out.len(),
                is_token,
                presigning: Some(added),
            });
            added += 1;
        }
    }
    let encoded = &out[..];
    pairs.sort_unstable_by(|a, b| {
        (&encoded[a.key.clone()], &encoded[a.value.clone()])
            .cmp(&(&encoded[b.key.clone()], &encoded[b.value.clone()]))
    });
    let sorted = out.len();
    let moved = sorted - unsorted; // where a part lies once the unsorted copy is gone
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let pair_start = out.len();
        out.extend_from_within(pair.key.clone());
        out.push(b'=');
        let start = out.len();
        out.extend_from_within(pair.value.clone());
        if pair.is_token {
            sensitive.push(start - moved..out.len() - moved);
        }
        if let Some(slot) = pair.presigning {
            presigning.set(slot, pair_start - moved..out.len() - moved);
        }
    }
    out.drain(unsorted..sorted);
}
