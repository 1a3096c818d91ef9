//! Byte-level helpers of the canonical form: percent-encoding, hex, SigV4 timestamps and
//! RFC 3986 dot-segment removal. Written for the signing hot path: no allocation except into
//! the caller's buffer.

use std::borrow::Cow;
use std::ops::Range;

use crate::key::DateStamp;

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
const fn unreserved_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    table
}
static UNRESERVED: [bool; 256] = unreserved_table();

/// Appends `bytes` percent-encoded (uppercase hex) to `out`, leaving unreserved characters,
/// and `/` too when `keep_slash` (paths keep their separators).
pub(crate) fn percent_encode_into(out: &mut Vec<u8>, mut bytes: &[u8], keep_slash: bool) {
    let keep = |b: u8| UNRESERVED[usize::from(b)] || (keep_slash && b == b'/');
    // Copy runs of bytes that stay as they are in one go; most input is such a run.
    while !bytes.is_empty() {
        let run = bytes.iter().position(|&b| !keep(b)).unwrap_or(bytes.len());
        out.extend_from_slice(&bytes[..run]);
        if let Some(&b) = bytes.get(run) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            bytes = &bytes[run + 1..];
        } else {
            break;
        }
    }
}

/// Appends a path that is already percent-encoded, encoding only the bytes a URI path can't
/// carry (space, controls, non-ASCII). Used when double encoding is off (S3).
pub(crate) fn encode_unsafe_path_bytes_into(out: &mut Vec<u8>, mut path: &[u8]) {
    while !path.is_empty() {
        let run = path
            .iter()
            .position(|b| !b.is_ascii_graphic())
            .unwrap_or(path.len());
        out.extend_from_slice(&path[..run]);
        let Some(&b) = path.get(run) else {
            break;
        };
        out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        path = &path[run + 1..];
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends the pairs of `query`, an `application/x-www-form-urlencoded` string (`key=value`
/// joined by `&`), to `out`: each key and value decoded (`+` is a space, `%XY` a byte, a `%`
/// not followed by two hex digits stays as it is) and percent-encoded again as
/// [`percent_encode_into`] does. `pair(key, value)` gets where each pair sits in `out`; a
/// pair without `=` has an empty value, and empty pairs (`&&`) are skipped.
///
/// One pass over the bytes, without a decoded copy: runs of unreserved bytes, most of a
/// query, are copied in one go, and `&`, `=`, `+` and `%` all end a run, as they are not
/// unreserved (bench row `shape-many-query-params`: splitting first, then re-encoding each
/// part, took 3.0 us against 2.6 us).
pub(crate) fn reencode_form_pairs_into(
    out: &mut Vec<u8>,
    query: &[u8],
    mut pair: impl FnMut(Range<usize>, Range<usize>),
) {
    let mut rest = query;
    // Where the current pair began in `query` (to skip empty ones) and in `out`.
    let mut pair_input = rest.len();
    let mut key_start = out.len();
    let mut value_start = None;
    loop {
        let run = rest
            .iter()
            .position(|&b| !UNRESERVED[usize::from(b)])
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..run]);
        rest = &rest[run..];
        let used = match rest.first() {
            None | Some(b'&') => {
                if rest.len() != pair_input {
                    let value_start = value_start.unwrap_or(out.len());
                    pair(key_start..value_start, value_start..out.len());
                }
                let Some(rest_after) = rest.get(1..) else {
                    return;
                };
                pair_input = rest_after.len();
                key_start = out.len();
                value_start = None;
                1
            }
            Some(b'=') if value_start.is_none() => {
                value_start = Some(out.len());
                1
            }
            Some(&first) => {
                let (byte, used) = match first {
                    b'+' => (b' ', 1),
                    b'%' => match (
                        rest.get(1).copied().and_then(hex_value),
                        rest.get(2).copied().and_then(hex_value),
                    ) {
                        (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                        _ => (b'%', 1),
                    },
                    b => (b, 1),
                };
                match UNRESERVED[usize::from(byte)] {
                    true => out.push(byte),
                    false => out.extend_from_slice(&[
                        b'%',
                        HEX[usize::from(byte >> 4)],
                        HEX[usize::from(byte & 15)],
                    ]),
                }
                used
            }
        };
        rest = &rest[used..];
    }
}

/// `n` in decimal, written at the end of `buffer` (a u64 has at most 20 digits).
pub(crate) fn decimal_into(buffer: &mut [u8; 20], mut n: u64) -> &[u8] {
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

/// The lowercase hex of a 32-byte digest.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_LOWER[usize::from(b >> 4)];
        pair[1] = HEX_LOWER[usize::from(b & 15)];
    }
    out
}

/// `bytes` as lowercase hex, fed to `sink` 64 digits at a time through [`hex32`].
pub(crate) fn hex_into(bytes: &[u8], sink: &mut impl FnMut(&[u8])) {
    for chunk in bytes.chunks(32) {
        let mut block = [0u8; 32];
        block[..chunk.len()].copy_from_slice(chunk);
        sink(&hex32(&block)[..2 * chunk.len()]);
    }
}

/// `bytes` as lowercase hex (on the stack for up to 32 bytes: an HMAC).
pub(crate) fn hex(bytes: &[u8]) -> smallvec::SmallVec<[u8; 64]> {
    let mut out = smallvec::SmallVec::with_capacity(2 * bytes.len());
    hex_into(bytes, &mut |digits| out.extend_from_slice(digits));
    out
}

/// `yyyymmddThhmmssZ`, the `X-Amz-Date` form of a UTC instant; `None` when the instant in
/// UTC is outside the years 0000 to 9999 that the form can write.
pub(crate) fn amz_date(time: time::OffsetDateTime) -> Option<[u8; 16]> {
    let utc = time.checked_to_offset(time::UtcOffset::UTC)?;
    if !(0..=9999).contains(&utc.year()) {
        return None;
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(DateStamp::from_date(utc.date()).as_bytes());
    out[8] = b'T';
    let (h, m, s) = (utc.hour(), utc.minute(), utc.second());
    for (slot, v) in out[9..15].chunks_exact_mut(2).zip([h, m, s]) {
        slot[0] = b'0' + v / 10;
        slot[1] = b'0' + v % 10;
    }
    out[15] = b'Z';
    Some(out)
}

/// Removes dot segments and empty segments from an absolute path (RFC 3986 section 5.2.4, as
/// SigV4 specifies it for services other than S3: `//a/./b/../c/` becomes `/a/c/`).
/// Whether a path is already normal: absolute, with no empty segment (`//`; a trailing `/`
/// is fine) and no `.` or `..` segment. One pass over the bytes: the common case.
fn is_normal(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut rest = &path[1..];
    loop {
        let end = rest.iter().position(|&b| b == b'/');
        let segment = &rest[..end.unwrap_or(rest.len())];
        if matches!(segment, b"." | b"..") || (segment.is_empty() && end.is_some()) {
            return false;
        }
        match end {
            Some(end) => rest = &rest[end + 1..],
            None => return true,
        }
    }
}

pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    if is_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    // A path that ended in a directory still does: "/a/b/.." is "/a/", and "/" stays "/".
    let ends_as_directory = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if out.is_empty() || (ends_as_directory && !out.ends_with('/')) {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(s: &str, keep_slash: bool) -> String {
        let mut out = Vec::new();
        percent_encode_into(&mut out, s.as_bytes(), keep_slash);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode("a-b_c.d~e", false), "a-b_c.d~e");
        assert_eq!(encode("a b/c+d=%", false), "a%20b%2Fc%2Bd%3D%25");
        assert_eq!(encode("/a b/", true), "/a%20b/");
        assert_eq!(encode("ሴ", false), "%E1%88%B4");
    }

    fn reencode_pairs(query: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut ranges = Vec::new();
        reencode_form_pairs_into(&mut out, query.as_bytes(), |k, v| ranges.push((k, v)));
        let text = |r: Range<usize>| String::from_utf8(out[r].to_vec()).unwrap();
        ranges
            .into_iter()
            .map(|(k, v)| (text(k), text(v)))
            .collect()
    }

    #[test]
    fn form_components_are_decoded_by_the_urlencoded_rules_then_encoded() {
        let reencode = |input: &str| {
            let pairs = reencode_pairs(input);
            assert_eq!(pairs.len(), 1, "{input}");
            pairs[0].0.clone()
        };
        assert_eq!(reencode("a+b%20c"), "a%20b%20c");
        assert_eq!(reencode("%zz%4"), "%25zz%254");
        assert_eq!(reencode("%e1%88%B4"), "%E1%88%B4");
        assert_eq!(reencode("100%"), "100%25");
        assert_eq!(reencode("%"), "%25");
        assert_eq!(reencode("%7e%2F"), "~%2F");
        assert_eq!(reencode("%26%3d"), "%26%3D");
        assert_eq!(reencode("plain-text_1.0~"), "plain-text_1.0~");
    }

    #[test]
    fn form_pairs_split_on_the_first_equals_and_skip_empty_pairs() {
        let pairs = |query| {
            reencode_pairs(query)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs("a=1&&b&=x&c=d=e&"), ["a=1", "b=", "=x", "c=d%3De"]);
        assert_eq!(pairs("&"), Vec::<String>::new());
        assert_eq!(pairs(""), Vec::<String>::new());
        assert_eq!(pairs("="), ["="]);
        assert_eq!(pairs("k%3D=v%26w"), ["k%3D=v%26w"]);
    }

    #[test]
    fn hex_is_lowercase_and_in_order() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x0f;
        bytes[1] = 0xa5;
        bytes[31] = 0xff;
        let hex = hex32(&bytes);
        assert_eq!(&hex[..4], b"0fa5");
        assert_eq!(&hex[60..], b"00ff");
        let all: Vec<u8> = (0..=255u8).collect();
        for chunk in all.chunks_exact(32) {
            let expected: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let hex = hex32(chunk.try_into().unwrap());
            assert_eq!(std::str::from_utf8(&hex).unwrap(), expected);
        }
    }

    #[test]
    fn amz_date_is_utc() {
        let t = time::macros::datetime!(2015-08-30 14:36:00 +02:00);
        assert_eq!(&amz_date(t).unwrap(), b"20150830T123600Z");
    }

    #[test]
    fn amz_date_at_the_edges_of_days_months_and_eras() {
        for (t, expected) in [
            (
                time::macros::datetime!(1970-01-01 00:00:00 UTC),
                "19700101T000000Z",
            ),
            (
                time::macros::datetime!(1969-12-31 23:59:59 UTC),
                "19691231T235959Z",
            ),
            (
                time::macros::datetime!(2000-02-29 12:00:00 UTC),
                "20000229T120000Z",
            ),
            (
                time::macros::datetime!(2100-03-01 00:00:00 UTC),
                "21000301T000000Z",
            ),
            (
                time::macros::datetime!(0000-01-01 00:00:00 UTC),
                "00000101T000000Z",
            ),
            (
                time::macros::datetime!(9999-12-31 23:59:59 UTC),
                "99991231T235959Z",
            ),
        ] {
            assert_eq!(
                std::str::from_utf8(&amz_date(t).unwrap()).unwrap(),
                expected
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn amz_date_matches_the_time_crate(secs in -62_167_219_200i64..253_402_300_800) {
            let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let expected = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second()
            );
            let ours = amz_date(t).unwrap();
            proptest::prop_assert_eq!(std::str::from_utf8(&ours).unwrap(), expected);
        }
    }

    #[test]
    fn path_normalization() {
        for (input, expected) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/a/b/../..", "/"),
            ("//example//", "/example/"),
            ("/./example", "/example"),
            ("/a/./b/../c/", "/a/c/"),
            ("/a/b/.", "/a/b/"),
            ("/../a", "/a"),
            ("/a..b/.c", "/a..b/.c"),
        ] {
            assert_eq!(normalize_path(input), expected, "{input}");
        }
    }
}
