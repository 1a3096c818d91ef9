//! Opening and importing keys, whatever the backend: the `--key` value picks one of the
//! backend modules, each behind its cargo feature.
//!
//! Every import ends the same way ([`prove_import`]): the key is opened as later commands
//! will open it, asked for one kDate, and compared with the software HMAC of the secret
//! while the secret is still in memory.

use std::sync::Arc;

use sigv4_core::{DateStamp, RootKey, RootSecret, SoftwareRootKey};

use crate::args::{ImportArgs, KeyArgs};
use crate::error::CliError;
use crate::key_ref::KeyRef;
use crate::report::Link;
use crate::signals;

#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(feature = "tink")]
mod tink;
#[cfg(feature = "tpm")]
pub mod tpm;
#[cfg(feature = "vault")]
mod vault;

/// A key ready to sign: the device key and the access key id that goes with it.
pub struct OpenedKey {
    /// The device key.
    pub root_key: Arc<dyn RootKey>,
    /// The access key id (flag, environment, or as stored at import).
    pub access_key_id: String,
}

/// Opens the key `--key` names. The login (which SoftHSM answers by rewriting its token
/// file) and every later device call run with SIGINT and SIGTERM deferred.
pub fn open(args: &KeyArgs) -> Result<OpenedKey, CliError> {
    let opened = signals::critical(|| match args.key() {
        #[cfg(feature = "pkcs11")]
        KeyRef::Pkcs11(uri) => pkcs11::open(uri, args),
        #[cfg(feature = "tpm")]
        KeyRef::TpmFile(_) | KeyRef::TpmHandle(_) => tpm::open(args),
        #[cfg(feature = "tink")]
        KeyRef::Tink(path) => tink::open(path, args),
        #[cfg(feature = "vault")]
        KeyRef::Vault(key) => vault::open(key, args),
    })?;
    Ok(OpenedKey {
        root_key: Arc::new(Deferring(opened.root_key)),
        access_key_id: opened.access_key_id,
    })
}

/// A device key whose every call runs with SIGINT and SIGTERM deferred (a PKCS#11 key may
/// log in again to recover a lost session).
#[derive(Debug)]
struct Deferring(Arc<dyn RootKey>);

impl RootKey for Deferring {
    fn date_key(&self, date: &DateStamp) -> Result<sigv4_core::DateKey, sigv4_core::KeyError> {
        signals::critical(|| self.0.date_key(date))
    }
}

/// What the checks made before the secret is read hand on to the import.
pub enum Prepared {
    /// The token found, logged in and checked, holding this machine's turn to write: the
    /// import goes on from there instead of searching and logging in again.
    #[cfg(feature = "pkcs11")]
    Pkcs11(Box<pkcs11::Prepared>),
    /// Checked; the import reaches the device itself.
    #[cfg(any(feature = "tpm", feature = "tink", feature = "vault"))]
    Checked,
}

/// Imports the secret into the device `--key` names, proves it, and returns the key
/// reference to use from now on. The whole import runs with SIGINT and SIGTERM deferred.
#[cfg_attr(not(any(feature = "tpm", feature = "tink")), allow(unused_variables))] // akid
pub fn import(
    args: &ImportArgs,
    prepared: Prepared,
    secret: &RootSecret,
    akid: &str,
) -> Result<KeyRef, CliError> {
    signals::critical(|| match (prepared, args.key.key()) {
        #[cfg(feature = "pkcs11")]
        (Prepared::Pkcs11(prepared), _) => pkcs11::import(*prepared, args, secret),
        #[cfg(all(
            feature = "pkcs11",
            any(feature = "tpm", feature = "tink", feature = "vault")
        ))]
        (Prepared::Checked, KeyRef::Pkcs11(_)) => {
            unreachable!("preflight_import prepares every PKCS#11 import")
        }
        #[cfg(feature = "tpm")]
        (_, KeyRef::TpmFile(_) | KeyRef::TpmHandle(_)) => tpm::import(args, secret, akid),
        #[cfg(feature = "tink")]
        (_, KeyRef::Tink(path)) => tink::import(path, args, secret, akid),
        #[cfg(feature = "vault")]
        (_, KeyRef::Vault(key)) => vault::import(key, args, secret),
    })
}

/// Checks what can be checked before the secret is read (so a mistake does not cost the
/// user a second paste).
#[cfg_attr(not(feature = "pkcs11"), allow(unused_variables))] // akid: PKCS#11's check
pub fn preflight_import(args: &ImportArgs, akid: &str) -> Result<Prepared, CliError> {
    match args.key.key() {
        #[cfg(feature = "pkcs11")]
        KeyRef::Pkcs11(uri) => signals::critical(|| {
            pkcs11::preflight_import(uri, args, akid).map(|p| Prepared::Pkcs11(Box::new(p)))
        }),
        #[cfg(feature = "tpm")]
        KeyRef::TpmFile(_) | KeyRef::TpmHandle(_) => {
            tpm::preflight_import(args).map(|()| Prepared::Checked)
        }
        #[cfg(feature = "tink")]
        KeyRef::Tink(path) => tink::preflight_import(path, args).map(|()| Prepared::Checked),
        #[cfg(feature = "vault")]
        KeyRef::Vault(key) => vault::preflight_import(key, args).map(|()| Prepared::Checked),
    }
}

/// The device's links for `keyhold doctor`, in order, ending with one HMAC; and the key, if
/// every link held.
pub fn doctor(args: &KeyArgs) -> (Vec<Link>, Option<OpenedKey>) {
    signals::critical(|| match args.key() {
        #[cfg(feature = "pkcs11")]
        KeyRef::Pkcs11(uri) => pkcs11::doctor(uri, args),
        #[cfg(feature = "tpm")]
        KeyRef::TpmFile(_) | KeyRef::TpmHandle(_) => tpm::doctor(args),
        #[cfg(feature = "tink")]
        KeyRef::Tink(path) => tink::doctor(path, args),
        #[cfg(feature = "vault")]
        KeyRef::Vault(key) => vault::doctor(key, args),
    })
}

/// The access key id: the flag (or AWS_ACCESS_KEY_ID), else the one the backend stored.
#[cfg_attr(
    not(any(feature = "tpm", feature = "tink", feature = "vault")),
    allow(dead_code)
)] // PKCS#11 resolves it while opening
pub fn access_key_id(
    args: &KeyArgs,
    stored: Option<&str>,
    hint: &'static str,
) -> Result<String, CliError> {
    args.access_key_id
        .as_deref()
        .or(stored)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| CliError::NoAccessKeyId {
            key: args.key().to_string(),
            hint,
        })
}

/// Today's kDate from the device equals the software one from `secret`.
pub fn prove_import(key: &dyn RootKey, secret: &RootSecret) -> Result<bool, sigv4_core::KeyError> {
    let date = DateStamp::from_date(time::OffsetDateTime::now_utc().date());
    let device = key.date_key(&date)?;
    let reference = SoftwareRootKey::new(secret.clone()).date_key(&date)?;
    tracing::debug!(date = %date, "import check: device kDate compared with software kDate");
    // Compared without an early exit, as MACs are.
    Ok(crate::bytes::same(device.as_bytes(), reference.as_bytes()))
}

/// One kDate from the device, for doctor: proves the key signs, without a secret to compare.
pub fn one_hmac(key: &dyn RootKey) -> Result<(), sigv4_core::KeyError> {
    let date = DateStamp::from_date(time::OffsetDateTime::now_utc().date());
    key.date_key(&date).map(drop)
}

/// Reads a secret (PIN, password) from an environment variable, if set.
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
pub fn secret_env(name: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    std::env::var_os(name).map(|v| zeroize::Zeroizing::new(v.into_encoded_bytes()))
}
