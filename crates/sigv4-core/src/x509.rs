//! The X.509 seam: IAM Roles Anywhere signs with a certificate's private key instead of an
//! access key's secret.
//!
//! The canonical request and the string to sign are SigV4's own (this crate's, unchanged);
//! what differs (AWS, "IAM Roles Anywhere: signing process"):
//! - the algorithm is `AWS4-X509-RSA-SHA256` or `AWS4-X509-ECDSA-SHA256` (P-256 and P-384
//!   keys alike: the digest is SHA-256 either way);
//! - `Credential=` starts with the certificate's serial number in decimal, not an access
//!   key id;
//! - the signature is the lowercase hex of the private key's signature over the string to
//!   sign: RSASSA-PKCS1-v1_5 with SHA-256, or ECDSA with SHA-256 encoded as DER;
//! - `X-Amz-X509` (the certificate, base64 DER) and `X-Amz-X509-Chain` (intermediates,
//!   base64 DER, comma-separated) are headers of the request, signed like any other.
//!
//! A backend implements [`X509Key`] (one call that reaches the device); [`X509Signer`]
//! does the rest.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::canonical::SignableRequest;
use crate::key::KeyError;
use crate::names;
use crate::output::SigningOutput;
use crate::settings::SigningSettings;
use crate::signer::{
    Identity, Payload, SignError, SignatureLocation, SigningParams, canonical_and_string_to_sign,
    sign_in_headers,
};
use crate::stages::{Algorithm, Scope, Signature};

/// The two kinds of private key IAM Roles Anywhere accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum X509KeyKind {
    /// RSA (2048 bits or more): RSASSA-PKCS1-v1_5 with SHA-256.
    Rsa,
    /// EC on P-256 or P-384: ECDSA with SHA-256, the signature DER-encoded.
    Ecdsa,
}

impl X509KeyKind {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::X509RsaSha256,
            Self::Ecdsa => Algorithm::X509EcdsaSha256,
        }
    }
}

/// The public half of an [`X509Key`], as a device reports it: what a certificate request
/// for the key carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum X509PublicKey {
    /// RSA: the modulus and public exponent, big-endian.
    Rsa {
        /// The modulus `n`.
        modulus: Vec<u8>,
        /// The public exponent `e`.
        exponent: Vec<u8>,
    },
    /// EC on P-256: the uncompressed point `04 ‖ x ‖ y`.
    P256(Vec<u8>),
    /// EC on P-384: the uncompressed point `04 ‖ x ‖ y`.
    P384(Vec<u8>),
}

impl X509PublicKey {
    /// DER of the P-256 curve's identifier (`secp256r1`, RFC 5480), as a certificate's key and
    /// a PKCS#11 key's `CKA_EC_PARAMS` name it.
    pub const P256_OID: &'static [u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// DER of the P-384 curve's identifier (`secp384r1`, RFC 5480).
    pub const P384_OID: &'static [u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

    /// An RSA key from its big-endian integers, leading zero bytes dropped, so that equal keys
    /// compare equal whoever wrote them (DER pads a modulus whose top bit is set; a token
    /// may not).
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Self {
        let unsigned = |n: &[u8]| n.iter().skip_while(|&&b| b == 0).copied().collect();
        Self::Rsa {
            modulus: unsigned(modulus),
            exponent: unsigned(exponent),
        }
    }

    /// The public key of a DER certificate (its `subjectPublicKeyInfo`, RFC 5280 4.1; RSA as
    /// RFC 3279 writes it, EC on P-256 or P-384 as RFC 5480 does), RSA integers without
    /// leading zero bytes. `None` for a key of another kind or a certificate it can't read.
    pub fn of_certificate(der: &[u8]) -> Option<Self> {
        // DER of the algorithm and curve identifiers (RFC 3279, RFC 5480).
        const RSA_ENCRYPTION: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let read = |input, tag| read_tlv(input, tag, "").ok();
        let mut tbs = tbs_certificate(der).ok()?;
        // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
        for tag in [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE] {
            tbs = read(tbs, tag)?.1;
        }
        let (spki, _) = read(tbs, SEQUENCE)?;
        let (algorithm, rest) = read(spki, SEQUENCE)?;
        let (bits, _) = read(rest, BIT_STRING)?;
        let key = bits.strip_prefix(&[0])?; // no unused bits
        if algorithm.starts_with(RSA_ENCRYPTION) {
            let (integers, _) = read(key, SEQUENCE)?;
            let (modulus, rest) = read(integers, INTEGER)?;
            let (exponent, _) = read(rest, INTEGER)?;
            return Some(Self::rsa(modulus, exponent));
        }
        match algorithm.strip_prefix(EC_PUBLIC_KEY)? {
            Self::P256_OID => Some(Self::P256(key.to_vec())),
            Self::P384_OID => Some(Self::P384(key.to_vec())),
            _ => None,
        }
    }
}

/// A kind and size of key pair to make in a device for Roles Anywhere (`keyhold cert
/// keygen --type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum X509KeyType {
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
}

impl X509KeyType {
    /// Every type, with its name.
    pub const ALL: [(&'static str, Self); 5] = [
        ("rsa-2048", Self::Rsa2048),
        ("rsa-3072", Self::Rsa3072),
        ("rsa-4096", Self::Rsa4096),
        ("ec-p256", Self::P256),
        ("ec-p384", Self::P384),
    ];

    /// The RSA modulus size in bits, or `None` for EC.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            Self::P256 | Self::P384 => None,
        }
    }
}

impl std::str::FromStr for X509KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("'{s}' is not a key type: use one of {}", names.join(", "))
            })
    }
}

/// Holds a certificate's private key somewhere the caller cannot read it (a PKCS#11 token,
/// a TPM, a file), as [`RootKey`](crate::RootKey) holds an access key's secret.
///
/// Implementations must be cheap to share and never print the key in `Debug`.
pub trait X509Key: Send + Sync + fmt::Debug {
    /// Which kind of key this is (fixed for the key's life).
    fn kind(&self) -> X509KeyKind;

    /// Signs `message` (the string to sign): for [`X509KeyKind::Rsa`] RSASSA-PKCS1-v1_5
    /// over its SHA-256, for [`X509KeyKind::Ecdsa`] ECDSA over its SHA-256, as DER.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;

    /// The key's public half, when the holder knows it without a device call (a file key,
    /// a token's public key object, a TPM's public area); `None` when it does not.
    fn public_key(&self) -> Option<X509PublicKey> {
        None
    }
}

impl<K: X509Key + ?Sized> X509Key for Arc<K> {
    fn kind(&self) -> X509KeyKind {
        (**self).kind()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        (**self).sign(message)
    }
    fn public_key(&self) -> Option<X509PublicKey> {
        (**self).public_key()
    }
}

/// Why a certificate can't be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// The bytes are not a DER X.509 certificate this reader can take the serial from.
    #[error("the certificate is not a DER X.509 certificate: {0}")]
    NotACertificate(&'static str),
}

/// Signs requests for IAM Roles Anywhere with a certificate and its private key.
///
/// Cheap to share: wrap it in an `Arc` and sign from many threads.
pub struct X509Signer {
    serial_number: Arc<str>,
    certificate: String,
    chain: Option<String>,
    key: Arc<dyn X509Key>,
    settings: SigningSettings,
}

impl X509Signer {
    /// A signer for the DER certificate `certificate` whose private key is `key`.
    pub fn new(certificate: &[u8], key: impl X509Key + 'static) -> Result<Self, X509Error> {
        Ok(Self {
            serial_number: serial_number(certificate)?.into(),
            certificate: base64::engine::general_purpose::STANDARD.encode(certificate),
            chain: None,
            key: Arc::new(key),
            settings: SigningSettings::default(),
        })
    }

    /// Sends these intermediate certificates (DER, the one that issued the leaf first) as
    /// `X-Amz-X509-Chain`.
    pub fn with_chain<C: AsRef<[u8]>>(mut self, intermediates: &[C]) -> Self {
        let encoded: Vec<String> = intermediates
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect();
        self.chain = (!encoded.is_empty()).then(|| encoded.join(","));
        self
    }

    /// The serial number of the DER certificate `certificate` in decimal, as `Credential=`
    /// carries it; the same check [`X509Signer::new`] makes.
    pub fn serial_number_of(certificate: &[u8]) -> Result<String, X509Error> {
        serial_number(certificate)
    }

    /// The certificate's serial number in decimal, as `Credential=` carries it.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// Signs `request` in place: sets `X-Amz-X509` (and `X-Amz-X509-Chain`), then the
    /// `Authorization` header and `X-Amz-Date`, hashing the body unless the params give a
    /// payload.
    pub fn sign_request<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        params: &SigningParams<'_>,
    ) -> Result<SigningOutput, SignError> {
        let headers = request.headers_mut();
        for (name, value) in self.certificate_headers() {
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| SignError::InvalidHeaderValue(name))?;
            headers.insert(http::HeaderName::from_static(name), value);
        }
        sign_in_headers(request, params, |signable, payload| {
            self.sign_prepared(signable, payload, params)
        })
    }

    /// The three steps for a [`SignableRequest`], its certificate headers set (replacing
    /// any of the same names); what to add to the request is in
    /// [`SigningOutput::additions`] and [`X509Signer::certificate_headers`].
    pub fn sign_signable(
        &self,
        request: &SignableRequest<'_>,
        payload: Payload<'_>,
        params: &SigningParams<'_>,
    ) -> Result<SigningOutput, SignError> {
        let mut request = request.clone();
        for (name, value) in self.certificate_headers() {
            request = request.replace_header(name, value.as_bytes());
        }
        self.sign_prepared(&request, payload, params)
    }

    /// `X-Amz-X509` and, when there are intermediates, `X-Amz-X509-Chain`, as they are sent.
    pub fn certificate_headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((names::X_AMZ_X509, self.certificate.as_str())).chain(
            self.chain
                .as_deref()
                .map(|chain| (names::X_AMZ_X509_CHAIN, chain)),
        )
    }

    fn sign_prepared(
        &self,
        request: &SignableRequest<'_>,
        payload: Payload<'_>,
        params: &SigningParams<'_>,
    ) -> Result<SigningOutput, SignError> {
        let identity = Identity {
            algorithm: self.key.kind().algorithm(),
            credential_id: &self.serial_number,
            session_token: None,
            settings: &self.settings,
        };
        let location = SignatureLocation::Headers;
        let amz_date = params.amz_date()?;
        let scope = Scope::new(amz_date.date(), params.region(), params.service());
        let when = (amz_date, scope);
        let unsigned = canonical_and_string_to_sign(request, payload, when, location, &identity)?;
        let message = unsigned.string_to_sign.to_bytes();
        let signature = self.key.sign(&message).map_err(SignError::Key)?;
        Ok(unsigned.signed(Signature::new(&signature), self.serial_number.clone(), None))
    }
}

impl fmt::Debug for X509Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Signer")
            .field("serial_number", &self.serial_number)
            .field("key", &self.key)
            .field("chain", &self.chain.is_some())
            .finish_non_exhaustive()
    }
}

/// The DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 2.2.3) of a
/// signature's two halves as devices return them (big-endian, fixed width): what
/// `AWS4-X509-ECDSA-SHA256` signatures are. Leading zeros go, and a 0x00 comes first where the
/// high bit would make the INTEGER negative.
///
/// ```
/// let der = sigv4_core::ecdsa_signature_der(&[0x00, 0x7f], &[0x80, 0x01]);
/// assert_eq!(der, [0x30, 0x08, 0x02, 0x01, 0x7f, 0x02, 0x03, 0x00, 0x80, 0x01]);
/// ```
pub fn ecdsa_signature_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn integer(half: &[u8]) -> Vec<u8> {
        let trimmed = match half.iter().position(|&b| b != 0) {
            Some(at) => &half[at..],
            None => &[0][..],
        };
        let pad = trimmed[0] & 0x80 != 0;
        let mut out = vec![0x02];
        push_length(&mut out, trimmed.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
        out
    }
    let body = [integer(r), integer(s)].concat();
    let mut der = vec![0x30];
    push_length(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

/// A DER definite length (short form below 128, else long form).
fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let first = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// The serial number of a DER certificate, in decimal: `Certificate ::= SEQUENCE {
/// tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, ... }, ... }`
/// (RFC 5280 4.1). Negative serials are refused, as Go's crypto/x509 does.
fn serial_number(der: &[u8]) -> Result<String, X509Error> {
    let tbs = tbs_certificate(der)?;
    let (serial, _) = read_tlv(tbs, INTEGER, "no serialNumber INTEGER")?;
    match serial {
        [] => Err(X509Error::NotACertificate("an empty serialNumber")),
        [first, ..] if first & 0x80 != 0 => {
            Err(X509Error::NotACertificate("a negative serialNumber"))
        }
        _ if serial.len() > 64 => Err(X509Error::NotACertificate("a serialNumber over 64 bytes")),
        _ => Ok(decimal(serial)),
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// The fields of a DER certificate's `tbsCertificate` after its optional version:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, ... }, ... }` (RFC 5280 4.1).
fn tbs_certificate(der: &[u8]) -> Result<&[u8], X509Error> {
    const VERSION: u8 = 0xa0;
    let (certificate, _) = read_tlv(der, SEQUENCE, "no outer SEQUENCE")?;
    let (mut tbs, _) = read_tlv(certificate, SEQUENCE, "no tbsCertificate SEQUENCE")?;
    if tbs.first() == Some(&VERSION) {
        tbs = read_tlv(tbs, VERSION, "a malformed version")?.1;
    }
    Ok(tbs)
}

/// One DER element with tag `tag` at the start of `input`: its content and what follows.
fn read_tlv<'d>(
    input: &'d [u8],
    tag: u8,
    missing: &'static str,
) -> Result<(&'d [u8], &'d [u8]), X509Error> {
    let bad = || X509Error::NotACertificate(missing);
    let (&found, rest) = input.split_first().ok_or_else(bad)?;
    if found != tag {
        return Err(bad());
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let length = match first {
        0..=0x7f => usize::from(first),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            if rest.len() < count {
                return Err(bad());
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        }
        _ => return Err(bad()),
    };
    if rest.len() < length {
        return Err(bad());
    }
    Ok(rest.split_at(length))
}

/// A big-endian unsigned integer in decimal.
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 10) as u8;
            remainder = value % 10;
        }
        digits.push(b'0' + remainder as u8);
        let zeros = number.iter().take_while(|&&b| b == 0).count();
        number.drain(..zeros);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("decimal digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_are_der_of_any_width() {
        // P-256: r with its high bit set gets a 0x00; s of leading zeros loses them.
        let der = ecdsa_signature_der(&[0x80; 32], &[&[0u8; 31][..], &[5]].concat());
        assert_eq!(&der[..5], &[0x30, 38, 0x02, 33, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 0x05]);
        // P-384 halves: 2 × (2 + 1 + 48) = 102, the short form.
        assert_eq!(
            &ecdsa_signature_der(&[0xff; 48], &[0xff; 48])[..3],
            &[0x30, 102, 0x02]
        );
        // P-521's make the body 138 bytes: the long form.
        assert_eq!(
            &ecdsa_signature_der(&[0xff; 66], &[0xff; 66])[..3],
            &[0x30, 0x81, 138]
        );
        // Zero is one 0x00 byte.
        assert_eq!(
            ecdsa_signature_der(&[0; 4], &[0; 4]),
            [0x30, 6, 2, 1, 0, 2, 1, 0]
        );
    }

    #[test]
    fn serials_are_written_in_decimal() {
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(
            decimal(&[0x00, 0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88]),
            "17429726349691885448"
        );
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            decimal(&[0xff; 20]),
            "1461501637330902918203684832716283019655932542975"
        );
    }

    #[test]
    fn truncated_or_foreign_der_is_an_error_not_a_panic() {
        let der = [
            0x30, 0x0a, 0x30, 0x08, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x07,
        ];
        assert_eq!(serial_number(&der).unwrap(), "7");
        for end in 0..der.len() {
            assert!(serial_number(&der[..end]).is_err(), "{end}");
        }
        assert!(serial_number(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
        let negative = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x80];
        assert!(serial_number(&negative).is_err());
    }
}
