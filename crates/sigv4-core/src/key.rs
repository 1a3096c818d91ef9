//! The seam between SigV4 and wherever the long-term secret lives.
//!
//! SigV4's key chain starts with `kDate = HMAC-SHA256("AWS4" + secret, yyyymmdd)`. That is the
//! only step that needs the secret, so it is the only step a backend (PKCS#11 token, TPM, Tink
//! keyset) implements: [`RootKey::date_key`]. Everything after it is ordinary software in
//! [`crate::signer`].

use std::fmt;
use std::sync::Arc;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hmac256::HmacKey;
use crate::locked::Locked;

/// Holds `"AWS4" + secret` somewhere the caller cannot read it.
///
/// Implementations must be cheap to share (`Send + Sync`) and must never print the secret in
/// their `Debug` output. The one required method is the one call that reaches the device.
pub trait RootKey: Send + Sync + fmt::Debug {
    /// Computes `kDate = HMAC-SHA256("AWS4" + secret, date)` where `date` is `yyyymmdd`.
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError>;
}

impl<K: RootKey + ?Sized> RootKey for std::sync::Arc<K> {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        (**self).date_key(date)
    }
}

impl<K: RootKey + ?Sized> RootKey for Box<K> {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        (**self).date_key(date)
    }
}

/// A signing date as the eight ASCII digits `yyyymmdd` that SigV4 feeds to the first HMAC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateStamp([u8; 8]);

impl DateStamp {
    /// The stamp for a calendar date (years 0..=9999; SigV4 has no other).
    pub fn from_date(date: time::Date) -> Self {
        let year = date.year().clamp(0, 9999) as u32;
        let (month, day) = (date.month() as u32, u32::from(date.day()));
        let mut out = [0u8; 8];
        let digits = [
            year / 1000,
            year / 100 % 10,
            year / 10 % 10,
            year % 10,
            month / 10,
            month % 10,
            day / 10,
            day % 10,
        ];
        for (slot, digit) in out.iter_mut().zip(digits) {
            *slot = b'0' + digit as u8;
        }
        Self(out)
    }

    /// The date part of an `X-Amz-Date` value (`yyyymmddThhmmssZ`).
    pub(crate) fn from_amz_date(amz_date: &[u8; 16]) -> Self {
        let mut out = [0u8; 8];
        out.copy_from_slice(&amz_date[..8]);
        Self(out)
    }

    /// The eight ASCII bytes, the message of the first HMAC.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The stamp as text (`20150830`).
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).expect("a DateStamp holds ASCII digits only")
    }
}

impl fmt::Display for DateStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DateStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateStamp({})", self.as_str())
    }
}

/// `kDate`: 32 bytes derived from the secret for one day. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct DateKey([u8; 32]);

impl Zeroize for DateKey {
    fn zeroize(&mut self) {
        // As a slice: zeroize clears it in bulk (an array, a volatile store per byte).
        self.0.as_mut_slice().zeroize();
    }
}

impl Drop for DateKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for DateKey {}

impl DateKey {
    /// Wraps the 32-byte HMAC output a device returned.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps a device's HMAC output, checking that it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: &[u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::new(
                KeyErrorKind::Device,
                format!(
                    "device returned a {}-byte HMAC; HMAC-SHA256 is 32 bytes",
                    bytes.len()
                ),
            )
        })?;
        Ok(Self(*array))
    }

    /// The key bytes, for the next HMAC in the chain.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DateKey(** redacted **)")
    }
}

/// What went wrong, coarsely, so callers can decide whether a retry may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyErrorKind {
    /// The device could not be reached or failed transiently; a retry may succeed.
    Unavailable,
    /// The device refused: wrong PIN or password, policy not satisfied, not logged in.
    Denied,
    /// The key exists but is not usable for this (wrong type, attributes, or extractable).
    Unsuitable,
    /// The key could not be found.
    NotFound,
    /// The device answered something unexpected.
    Device,
}

/// A failure computing `kDate`. Carries a message that says what to do, and the cause.
///
/// Backends must never put secret material (PINs, passwords, key bytes) in the message.
#[derive(Debug)]
pub struct KeyError {
    kind: KeyErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl KeyError {
    /// An error with a message and no underlying cause.
    pub fn new(kind: KeyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and the underlying cause (kept as `source`). The message
    /// names the step that failed, never the cause's text: callers print the chain.
    pub fn with_source(
        kind: KeyErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The coarse kind of failure.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The `"AWS4" + secret` bytes, zeroized on drop. The form in which a secret is handed to an
/// import function of any backend: never a `&str`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootSecret(Vec<u8>);

impl RootSecret {
    /// Builds `"AWS4" + secret` from the secret access key. The input is zeroized too.
    pub fn from_secret_access_key(secret: Zeroizing<Vec<u8>>) -> Self {
        let mut out = Vec::with_capacity(4 + secret.len());
        out.extend_from_slice(crate::names::SECRET_PREFIX.as_bytes());
        out.extend_from_slice(&secret);
        Self(out)
    }

    /// Reads a secret access key as typed or piped: surrounding whitespace (a trailing
    /// newline from `echo` or a file) is dropped. Fails on an empty or non-ASCII secret.
    pub fn from_secret_text(text: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        let trimmed = text.trim_ascii();
        if trimmed.is_empty() {
            return Err(KeyError::new(
                KeyErrorKind::Unsuitable,
                "the secret access key is empty: pass the 40-character secret on stdin, in a file, or in an environment variable",
            ));
        }
        if !trimmed.iter().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::new(
                KeyErrorKind::Unsuitable,
                "the secret access key contains characters that are not printable ASCII; check that the right value was passed",
            ));
        }
        Ok(Self::from_secret_access_key(Zeroizing::new(
            trimmed.to_vec(),
        )))
    }

    /// The bytes to import into a device (`"AWS4"` followed by the secret).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootSecret(** redacted **)")
    }
}

/// The software root key: the secret in process memory (as HMAC pad states on a locked page
/// of their own, out of swap where the system allows; zeroized on drop).
///
/// For tests, baselines, and users who want a fast signer and accept that the secret is in
/// memory. Also computes the reference HMAC a backend's import is checked against.
#[derive(Clone)]
pub struct SoftwareRootKey {
    key: Arc<Locked<HmacKey>>,
}

impl SoftwareRootKey {
    /// A key from the `"AWS4" + secret` bytes.
    pub fn new(secret: RootSecret) -> Self {
        Self {
            key: Arc::new(Locked::new(HmacKey::new(secret.expose()))),
        }
    }

    /// A key from a secret access key given as text. Intended for tests and examples.
    pub fn from_secret_access_key(secret: &str) -> Self {
        Self::new(RootSecret::from_secret_access_key(Zeroizing::new(
            secret.as_bytes().to_vec(),
        )))
    }
}

impl RootKey for SoftwareRootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        let mut key = DateKey([0; 32]);
        self.key.mac_into(&[date.as_bytes()], &mut key.0);
        Ok(key)
    }
}

impl fmt::Debug for SoftwareRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareRootKey(** redacted **)")
    }
}

/// One HMAC-SHA256.
#[cfg(test)]
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    HmacKey::new(key).mac(&[data])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_stamp_formats_yyyymmdd() {
        let date = time::macros::date!(2015 - 08 - 30);
        assert_eq!(DateStamp::from_date(date).as_str(), "20150830");
        let date = time::macros::date!(0999 - 01 - 02);
        assert_eq!(DateStamp::from_date(date).as_str(), "09990102");
    }

    #[test]
    fn debug_never_prints_secret_material() {
        let key =
            SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let dk = key
            .date_key(&DateStamp::from_date(time::macros::date!(2015 - 08 - 30)))
            .unwrap();
        for text in [format!("{key:?}"), format!("{dk:?}")] {
            assert!(text.contains("redacted"), "{text}");
            assert!(!text.contains("wJalr"), "{text}");
        }
    }

    #[test]
    fn secret_text_is_trimmed_and_validated() {
        let s = RootSecret::from_secret_text(Zeroizing::new(b"abc\n".to_vec())).unwrap();
        assert_eq!(s.expose(), b"AWS4abc");
        let err = RootSecret::from_secret_text(Zeroizing::new(b" \n".to_vec())).unwrap_err();
        assert!(err.to_string().contains("empty"));
        let err =
            RootSecret::from_secret_text(Zeroizing::new("é".as_bytes().to_vec())).unwrap_err();
        assert!(err.to_string().contains("printable ASCII"));
    }

    #[test]
    fn software_key_matches_the_documented_derivation() {
        // Derivation example from the AWS SigV4 documentation (secret, 20120215, us-east-1, iam).
        let key =
            SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let k_date = key
            .date_key(&DateStamp::from_date(time::macros::date!(2012 - 02 - 15)))
            .unwrap();
        let k_region = hmac_sha256(k_date.as_bytes(), b"us-east-1");
        let k_service = hmac_sha256(&k_region, b"iam");
        let k_signing = hmac_sha256(&k_service, crate::names::SCOPE_TERMINATOR.as_bytes());
        let hex: String = k_signing.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
