#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`uri`]: RFC 7512 PKCS#11 URIs.
//! - [`import_key`]: put `"AWS4" + secret` into a token.
//! - [`Pkcs11RootKey`]: sigv4-core's [`RootKey`](sigv4_core::RootKey) on that key.
//! - [`Pkcs11X509Key`]: sigv4-core's [`X509Key`](sigv4_core::X509Key) on a private key, for
//!   IAM Roles Anywhere.
#![forbid(unsafe_code)]

mod error;
mod import;
mod key;
mod module;
mod objects;
mod token;
pub mod uri;
mod x509;
mod x509_find;
mod x509_objects;

pub use error::{Error, Step};
pub use import::{ImportOptions, PreparedImport, import_key, prepare_import};
pub use key::{OpenOptions, Pkcs11RootKey};
pub use module::find_module_file;
pub use objects::ACCESS_KEY_ID_APPLICATION;
pub use uri::Pkcs11Uri;
pub use x509::Pkcs11X509Key;
pub use x509_objects::generate_key_pair;
