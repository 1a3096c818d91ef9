//! Pure AWS Signature Version 4, with the long-term secret behind the [`RootKey`] seam.
//!
//! No I/O, no async, no unsafe. The one step of SigV4 that needs the secret,
//! `kDate = HMAC-SHA256("AWS4" + secret, yyyymmdd)`, is [`RootKey::date_key`]; a PKCS#11
//! token, a TPM or a Tink keyset implements it, and everything else happens here. Derived
//! keys kept for their day sit on pages of their own locked out of swap (`mlock`, best
//! effort) and are zeroized when dropped.
//!
//! ```
//! use sigv4_core::{Signer, SigningParams, SoftwareRootKey};
//!
//! let signer = Signer::new(
//!     "AKIDEXAMPLE",
//!     SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
//! );
//! let mut request = http::Request::get("https://example.amazonaws.com/").body("").unwrap();
//! let time = time::macros::datetime!(2015-08-30 12:36:00 UTC);
//! let out = signer.sign_request(&mut request, &SigningParams::new("us-east-1", "service").at(time))?;
//! assert_eq!(
//!     out.signature().to_string(),
//!     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
//! );
//! assert!(request.headers()["authorization"].to_str()?.starts_with("AWS4-HMAC-SHA256 "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each step of SigV4 is a type whose `Display` is exactly what AWS's documentation writes:
//! [`CanonicalRequest`], [`StringToSign`] (with its [`Scope`]) and [`Signature`], all in the
//! [`SigningOutput`] a signature returns:
//!
//! ```
//! # use sigv4_core::{Signer, SigningParams, SoftwareRootKey};
//! # let signer = Signer::new("AKIDEXAMPLE", SoftwareRootKey::from_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
//! # let mut request = http::Request::get("https://example.amazonaws.com/").body("").unwrap();
//! # let time = time::macros::datetime!(2015-08-30 12:36:00 UTC);
//! let out = signer.sign_request(&mut request, &SigningParams::new("us-east-1", "service").at(time))?;
//! assert_eq!(out.canonical_request().signed_headers(), "host;x-amz-date");
//! assert_eq!(out.string_to_sign().scope().to_string(), "20150830/us-east-1/service/aws4_request");
//! assert!(out.string_to_sign().to_string().starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! IAM Roles Anywhere signs the same steps with a certificate's private key:
//! [`X509Signer`], with the key behind the [`X509Key`] seam as [`RootKey`] holds a secret.
#![forbid(unsafe_code)]

mod cache;
mod canonical;
mod encoding;
mod hmac256;
mod key;
mod locked;
mod names;
mod output;
mod query;
mod settings;
mod signer;
mod stages;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;
mod x509;

pub use cache::{CachePolicy, DerivedKeyCache};
pub use canonical::{CanonicalRequest, Redacted, SignableRequest};
pub use key::{DateKey, DateStamp, KeyError, KeyErrorKind, RootKey, RootSecret, SoftwareRootKey};
pub use output::{Addition, SigningOutput};
pub use settings::{PathEncoding, SessionTokenMode, SigningSettings};
pub use signer::{
    MAX_PRESIGN_EXPIRY, Payload, SignError, SignatureLocation, Signer, SigningParams,
    UNSIGNED_PAYLOAD,
};
pub use stages::{Algorithm, AmzDate, Scope, Signature, StringToSign};
pub use x509::{
    X509Error, X509Key, X509KeyKind, X509KeyType, X509PublicKey, X509Signer, ecdsa_signature_der,
};

/// An error and its causes on one line, joined by `: `, for a log line, a reply's reason or
/// a command's last word. keyhold's errors name their step and leave the cause to
/// `source()`; a link whose text the link before it already holds is skipped, as some
/// foreign errors (tss-esapi's, cryptoki's library loading, Google's) print their own source
/// in their message. Newlines become spaces.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut previous = line.clone();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !text.is_empty() && !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
        cause = next.source();
    }
    line.replace('\n', " ")
}

/// The workspace README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
