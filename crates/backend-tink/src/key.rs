//! [`TinkRootKey`]: sigv4-core's [`RootKey`] on the HMAC key of a decrypted Tink keyset, and
//! [`create_keyset`], which makes such a keyset from `"AWS4" + secret`.
//!
//! Tink's `Mac` primitive is a `Box<dyn Mac>` that is neither `Send` nor `Sync`, so the root
//! key keeps the keyset [`Handle`] (which is both) and builds the primitive for each `kDate`.
//! With sigv4-core's default cache that is once per day, region and service.

use std::fmt;
use std::path::Path;
use std::sync::Once;

use sigv4_core::{DateKey, DateStamp, KeyError, RootKey, RootSecret};
use tink_core::keyset::Handle;
use zeroize::Zeroizing;

use crate::error::TinkStep;
use crate::keyset::{self, EncryptedKeysetJson};
use crate::{Error, MasterKey};

/// Registers Tink's MAC key managers (once per process).
fn init_tink() {
    static INIT: Once = Once::new();
    INIT.call_once(tink_mac::init);
}

/// Creates an encrypted JSON keyset holding `"AWS4" + secret` as its one key (HMAC-SHA256,
/// 32-byte tag, RAW prefix, ENABLED), encrypted under `master_key` with no associated data.
///
/// Before it is returned, the keyset is decrypted again through `master_key` and compared with
/// what was encrypted. The returned JSON holds no secret in the clear and can be stored
/// anywhere; anyone who may use the KMS key can decrypt it.
pub fn create_keyset(secret: &RootSecret, master_key: &MasterKey) -> Result<String, Error> {
    create_keyset_with_associated_data(secret, master_key, &[])
}

/// [`create_keyset`] binding the keyset to `associated_data` (Tink's
/// `write_with_associated_data`): it opens only with the same bytes. For AWS KMS the bytes
/// go, hex-encoded, into the encryption context under `associatedData`, as in Go and Python
/// Tink.
pub fn create_keyset_with_associated_data(
    secret: &RootSecret,
    master_key: &MasterKey,
    associated_data: &[u8],
) -> Result<String, Error> {
    let (key_id, serialized) = keyset::new_serialized_keyset(secret);
    let ciphertext = master_key.encrypt(&serialized, associated_data)?;
    let round_trip = master_key.decrypt(&ciphertext, associated_data)?;
    if round_trip[..] != serialized[..] {
        return Err(Error::CreateCheckFailed {
            uri: master_key.name().to_owned(),
        });
    }
    tracing::debug!(
        key_id,
        master_key = master_key.name(),
        "created Tink keyset"
    );
    Ok(EncryptedKeysetJson::for_new_keyset(&ciphertext, key_id).to_json())
}

/// sigv4-core's [`RootKey`] on the primary HMAC key of a decrypted Tink keyset.
///
/// The keyset is decrypted once, by the KMS, when it is opened; from then on the HMAC key is
/// in this process's memory (inside Tink's keyset handle) until the root key is dropped.
pub struct TinkRootKey {
    handle: Handle,
    key_id: u32,
}

impl TinkRootKey {
    /// Opens an encrypted JSON keyset (as written by Tink in Go, Java or Python, by tinkey, or
    /// by [`create_keyset`]) by asking `master_key` to decrypt it.
    ///
    /// The primary key must be an ENABLED HMAC-SHA256 key with a 32-byte tag and RAW prefix
    /// holding `"AWS4" + secret`; anything else is refused with an error naming what is
    /// wrong. Other keys in the keyset are ignored and not kept.
    pub fn open(json: &[u8], master_key: &MasterKey) -> Result<Self, Error> {
        Self::open_with_associated_data(json, master_key, &[])
    }

    /// [`TinkRootKey::open`] for a keyset written with associated data.
    pub fn open_with_associated_data(
        json: &[u8],
        master_key: &MasterKey,
        associated_data: &[u8],
    ) -> Result<Self, Error> {
        let encrypted = EncryptedKeysetJson::parse(json)?;
        let ciphertext = encrypted.ciphertext()?;
        let serialized = master_key.decrypt(&ciphertext, associated_data)?;
        let keyset = keyset::primary_hmac_keyset(&serialized, master_key.name())?;
        drop(serialized);
        Self::from_checked_keyset(keyset)
    }

    /// [`TinkRootKey::open`] on the contents of a file.
    pub fn open_file(path: impl AsRef<Path>, master_key: &MasterKey) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read(path).map_err(|source| Error::Io {
            operation: "read",
            path: path.to_owned(),
            source,
        })?;
        Self::open(&json, master_key)
    }

    /// Opens a cleartext JSON keyset (Tink's `insecure` format: the key value is in the file).
    ///
    /// Anyone who can read such a file has the AWS secret. For tests and one-off migrations
    /// into a KMS-wrapped keyset only.
    #[cfg(feature = "insecure-cleartext-keyset")]
    pub fn insecure_open_cleartext(json: &[u8]) -> Result<Self, Error> {
        let mut parsed: tink_proto::Keyset =
            serde_json::from_slice(json).map_err(|e| Error::KeysetJson {
                reason: format!("not a cleartext keyset: {e}"),
            })?;
        let result = keyset::take_primary(&mut parsed);
        keyset::zeroize_keyset(&mut parsed);
        Self::from_checked_keyset(result?)
    }

    /// Wraps a keyset that passed [`keyset::take_primary`] and checks Tink can use it.
    fn from_checked_keyset(keyset: tink_proto::Keyset) -> Result<Self, Error> {
        init_tink();
        let key_id = keyset.primary_key_id;
        // The keyset moves into the handle (no copy). `new_handle` only refuses an empty
        // keyset, and a checked keyset has exactly one key.
        let handle = tink_core::keyset::insecure::new_handle(keyset)
            .map_err(|e| Error::tink(TinkStep::LoadKeyset, &e))?;
        let key = Self { handle, key_id };
        key.mac()?;
        Ok(key)
    }

    /// The keyset's primary key id (not secret; the same as `primaryKeyId` in the file).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// A fresh Tink MAC primitive on the handle.
    fn mac(&self) -> Result<Box<dyn tink_core::Mac>, Error> {
        tink_mac::new(&self.handle).map_err(|e| Error::tink(TinkStep::BuildPrimitive, &e))
    }
}

/// Writes a cleartext JSON keyset (Tink's `insecure` format) holding `"AWS4" + secret`.
///
/// The result contains the AWS secret in base64: anyone who can read it has the secret. For
/// tests, and for moving a secret into another Tink tool that then encrypts it.
#[cfg(feature = "insecure-cleartext-keyset")]
pub fn insecure_cleartext_keyset(secret: &RootSecret) -> Zeroizing<String> {
    use tink_proto::prost::Message as _;
    let (_, serialized) = keyset::new_serialized_keyset(secret);
    let mut ks = tink_proto::Keyset::decode(&serialized[..]).unwrap_or_default();
    let json = Zeroizing::new(serde_json::to_string_pretty(&ks).unwrap_or_default());
    keyset::zeroize_keyset(&mut ks);
    json
}

impl RootKey for TinkRootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        let mac = self.mac()?;
        let tag = Zeroizing::new(
            mac.compute_mac(date.as_bytes())
                .map_err(|e| Error::tink(TinkStep::ComputeHmac, &e))?,
        );
        DateKey::from_slice(&tag)
    }
}

impl fmt::Debug for TinkRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TinkRootKey")
            .field("key_id", &self.key_id)
            .field("key", &"** redacted **")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_key_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<TinkRootKey>();
    }
}
