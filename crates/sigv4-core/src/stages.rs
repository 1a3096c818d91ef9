//! Steps two and three of SigV4 as types whose `Display` is exactly what AWS's
//! documentation writes ("Create a string to sign", "Calculate the signature"):
//!
//! ```text
//! Algorithm \n RequestDateTime \n CredentialScope \n HashedCanonicalRequest
//! CredentialScope = yyyymmdd/region/service/aws4_request
//! ```
//!
//! Step one, the canonical request, is [`crate::CanonicalRequest`].

use std::fmt;
use std::sync::Arc;

use crate::encoding::{amz_date, hex, hex_into, hex32};
use crate::key::DateStamp;
use crate::names;

/// The signing algorithm, named in the string to sign, the `Authorization` header and a
/// presigned URL's `X-Amz-Algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// An access key's secret: HMAC-SHA256 with the derived signing key.
    HmacSha256,
    /// IAM Roles Anywhere with an RSA key: RSASSA-PKCS1-v1_5 with SHA-256.
    X509RsaSha256,
    /// IAM Roles Anywhere with an EC key (P-256 or P-384): ECDSA with SHA-256, DER-encoded.
    X509EcdsaSha256,
}

impl Algorithm {
    /// The name AWS uses (`AWS4-HMAC-SHA256`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "AWS4-HMAC-SHA256",
            Self::X509RsaSha256 => "AWS4-X509-RSA-SHA256",
            Self::X509EcdsaSha256 => "AWS4-X509-ECDSA-SHA256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signing time as `X-Amz-Date` writes it: `yyyymmddThhmmssZ`, UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AmzDate([u8; 16]);

impl AmzDate {
    /// The value for `time`; `None` outside the years 0000 to 9999 (UTC) it can express.
    pub fn new(time: time::OffsetDateTime) -> Option<Self> {
        amz_date(time).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an X-Amz-Date is ASCII digits, 'T' and 'Z'")
    }

    /// The day, the first eight characters.
    pub fn date(&self) -> DateStamp {
        DateStamp::from_amz_date(&self.0)
    }
}

impl fmt::Display for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmzDate({})", self.as_str())
    }
}

/// The credential scope: the day, region and service a signature is good for. Cheap to
/// clone: the region and service share one allocation (the derived-key cache hands out the
/// names it already holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    date: DateStamp,
    /// The region, then the service, as one text.
    names: Arc<str>,
    /// Where the service begins in `names`.
    service_at: usize,
}

impl Scope {
    pub(crate) fn new(date: DateStamp, region: &str, service: &str) -> Self {
        // Joined on the stack, so that the shared text is the one allocation.
        let mut joined = smallvec::SmallVec::<[u8; 64]>::new();
        joined.extend_from_slice(region.as_bytes());
        joined.extend_from_slice(service.as_bytes());
        Self {
            date,
            names: Arc::from(std::str::from_utf8(&joined).expect("two strs joined are UTF-8")),
            service_at: region.len(),
        }
    }

    /// The parts of `yyyymmdd/region/service/aws4_request`, the one definition of its
    /// layout.
    pub(crate) fn parts(&self) -> [&str; 7] {
        [
            self.date.as_str(),
            "/",
            self.region(),
            "/",
            self.service(),
            "/",
            names::SCOPE_TERMINATOR,
        ]
    }

    /// The day.
    pub fn date(&self) -> &DateStamp {
        &self.date
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.names[..self.service_at]
    }

    /// The service (its signing name).
    pub fn service(&self) -> &str {
        &self.names[self.service_at..]
    }
}

/// The parts of a credential, `ID/yyyymmdd/region/service/aws4_request`: the access key id
/// (or a certificate's serial number), then the scope. The one definition of its layout,
/// for the `Authorization` header and a presigned URL's `X-Amz-Credential` alike.
pub(crate) fn credential_parts<'a>(id: &'a str, scope: &'a Scope) -> [&'a str; 9] {
    let [date, s1, region, s2, service, s3, terminator] = scope.parts();
    [id, "/", date, s1, region, s2, service, s3, terminator]
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts().iter().try_for_each(|part| f.write_str(part))
    }
}

/// Writes parts that are ASCII by construction (names, digits, hex) to a formatter.
fn write_ascii(f: &mut fmt::Formatter<'_>, parts: &[&[u8]]) -> fmt::Result {
    parts.iter().try_for_each(|part| {
        f.write_str(std::str::from_utf8(part).expect("SigV4's stages are ASCII"))
    })
}

/// Step two of SigV4: what the key signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringToSign {
    algorithm: Algorithm,
    amz_date: AmzDate,
    scope: Scope,
    hashed_canonical_request: [u8; 32],
}

impl StringToSign {
    pub(crate) fn new(
        algorithm: Algorithm,
        amz_date: AmzDate,
        scope: Scope,
        hashed_canonical_request: [u8; 32],
    ) -> Self {
        Self {
            algorithm,
            amz_date,
            scope,
            hashed_canonical_request,
        }
    }

    /// The algorithm line.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signing time.
    pub fn amz_date(&self) -> &AmzDate {
        &self.amz_date
    }

    /// The credential scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// SHA-256 of the canonical request.
    pub fn hashed_canonical_request(&self) -> &[u8; 32] {
        &self.hashed_canonical_request
    }

    /// Feeds the exact bytes that are signed to `sink`, part by part: the one definition
    /// of the layout, which signing, [`to_bytes`](Self::to_bytes) and `Display` all use.
    pub(crate) fn write_parts(&self, sink: &mut impl FnMut(&[u8])) {
        let hash = hex32(&self.hashed_canonical_request);
        let head: [&[u8]; 4] = [
            self.algorithm.as_str().as_bytes(),
            b"\n",
            &self.amz_date.0,
            b"\n",
        ];
        head.iter().for_each(|part| sink(part));
        self.scope
            .parts()
            .iter()
            .for_each(|part| sink(part.as_bytes()));
        sink(b"\n");
        sink(&hash);
    }

    /// The exact bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_parts(&mut |part| out.extend_from_slice(part));
        out
    }
}

impl fmt::Display for StringToSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.write_parts(&mut |part| {
            if result.is_ok() {
                result = write_ascii(f, &[part]);
            }
        });
        result
    }
}

/// Step three of SigV4: the signature, shown as lowercase hex. 32 bytes of HMAC for an
/// access key; a private key's signature (PKCS#1 v1.5, or DER ECDSA) for IAM Roles Anywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(smallvec::SmallVec<[u8; 32]>);

impl Signature {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self(smallvec::SmallVec::from_slice(bytes))
    }

    /// The raw signature.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The lowercase hex (on the stack for an HMAC's 32 bytes).
    pub(crate) fn hex(&self) -> smallvec::SmallVec<[u8; 64]> {
        hex(&self.0)
    }

    /// The lowercase hex, appended to `out`.
    pub(crate) fn hex_into(&self, out: &mut Vec<u8>) {
        hex_into(&self.0, &mut |digits| out.extend_from_slice(digits));
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).expect("hex is ASCII"))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}
