//! IAM Roles Anywhere for keyhold: temporary AWS credentials for a role, from an X.509
//! certificate whose private key stays in a PKCS#11 token, a TPM or a file.
//!
//! The client sends `CreateSession` (`POST /sessions?profileArn=..&roleArn=..&trustAnchorArn=..`,
//! body `{"durationSeconds":3600}`), signed by [`sigv4_core::X509Signer`] with
//! `AWS4-X509-RSA-SHA256` or `AWS4-X509-ECDSA-SHA256`, and reads the reply's credentials.
//! Backends supply the private key through [`sigv4_core::X509Key`]; with the `file-key`
//! feature (on by default) [`FileKey`] reads one from a PEM file.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rolesanywhere::{CertificateChain, CreateSession, FileKey, RolesAnywhereClient};
//!
//! let chain = CertificateChain::from_pem(&std::fs::read("client.pem")?)?;
//! let key = FileKey::from_pem(&std::fs::read_to_string("client.key")?, None)?;
//! let request = CreateSession::new(
//!     "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0a1b".parse()?,
//!     "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/2c3d".parse()?,
//!     "arn:aws:iam::111122223333:role/deploy".parse()?,
//! );
//! let client = RolesAnywhereClient::builder(chain.signer(key)?)
//!     .region(request.trust_anchor_arn().region())
//!     .build()?;
//! let credentials = client.create_session(&request).await?;
//! println!("{} until {}", credentials.access_key_id, credentials.expiration);
//! # Ok(()) }
//! ```

mod arn;
mod certificate;
mod client;
mod error;
#[cfg(feature = "file-key")]
mod file_key;
mod request;
mod request_csr;
mod response;

pub use arn::{ArnError, ProfileArn, RoleArn, TrustAnchorArn};
pub use certificate::{CertificateChain, CertificateError, CertificateInfo, PublicKeyKind};
pub use client::{RolesAnywhereClient, RolesAnywhereClientBuilder, regional_endpoint};
pub use error::{RolesAnywhereError, ServiceError, ServiceErrorKind};
#[cfg(feature = "file-key")]
pub use file_key::{FileKey, FileKeyError};
pub use request::{CreateSession, MAX_DURATION, MIN_DURATION};
pub use request_csr::{CsrError, certificate_request, public_key_der};
pub use response::Credentials;
