#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`VaultClient`]: the server, the namespace, a token or an AppRole login, renewed ahead of
//!   expiry; the transit calls keyhold makes.
//! - [`VaultRootKey`]: sigv4-core's [`RootKey`](sigv4_core::RootKey) on a transit HMAC key.
//! - [`import`]: `"AWS4" + secret` wrapped (RSA-OAEP + AES-KWP) and imported, not exportable.
#![forbid(unsafe_code)]

mod client;
mod error;
mod http;
mod import;
mod key;
mod reply;

use std::fmt;
use std::str::FromStr;

pub use client::{Auth, KeyInfo, TokenInfo, VaultClient, VaultConfig};
pub use error::VaultError;
pub use import::{import, wrap};
pub use key::VaultRootKey;

/// The transit engine's mount when the key reference names none.
pub const DEFAULT_MOUNT: &str = "transit";

/// A transit key: `NAME` (under `transit/`) or `MOUNT/NAME` (the mount may have several
/// segments, `team/transit/NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPath {
    /// The transit engine's mount path, without slashes at either end.
    pub mount: String,
    /// The key's name.
    pub name: String,
}

impl FromStr for KeyPath {
    type Err = VaultError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            VaultError::Config(format!(
                "vault:{text} {why}; name a key as vault:NAME or vault:MOUNT/NAME"
            ))
        };
        let segment = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s != "."
                && s != ".."
        };
        let (mount, name) = match text.rsplit_once('/') {
            Some((mount, name)) => (mount, name),
            None => (DEFAULT_MOUNT, text),
        };
        if !segment(name) {
            return Err(bad("has no valid key name (letters, digits, - _ .)"));
        }
        if !mount.split('/').all(segment) {
            return Err(bad("has an invalid mount path"));
        }
        Ok(Self {
            mount: mount.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// `MOUNT/NAME`.
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mount, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_default_to_the_transit_mount() {
        let k: KeyPath = "aws".parse().unwrap();
        assert_eq!((k.mount.as_str(), k.name.as_str()), ("transit", "aws"));
        let k: KeyPath = "team/transit/prod-1".parse().unwrap();
        assert_eq!(
            (k.mount.as_str(), k.name.as_str()),
            ("team/transit", "prod-1")
        );
        assert_eq!(k.to_string(), "team/transit/prod-1");
        for bad in [
            "", "/", "a/", "/a", "a//b", "a b", "../a", "x/..", "a?b", "k\n",
        ] {
            assert!(bad.parse::<KeyPath>().is_err(), "{bad:?}");
        }
    }
}
