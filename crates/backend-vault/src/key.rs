//! [`VaultRootKey`]: sigv4-core's [`RootKey`] on a transit HMAC key. `date_key` is one HTTP
//! call; sigv4-core's derived-key cache makes it once per scope per day.

use std::fmt;
use std::sync::Arc;

use sigv4_core::{DateKey, DateStamp, KeyError, RootKey};

use crate::KeyPath;
use crate::client::VaultClient;
use crate::error::VaultError;

/// A transit HMAC key holding `"AWS4" + secret`.
#[derive(Clone)]
pub struct VaultRootKey {
    client: Arc<VaultClient>,
    key: KeyPath,
}

impl fmt::Debug for VaultRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultRootKey")
            .field("addr", &self.client.addr())
            .field("key", &self.key.to_string())
            .finish()
    }
}

impl VaultRootKey {
    /// The key `key` through `client`. Where the token may read the key, it must be an HMAC
    /// key that cannot be exported or backed up in plaintext; where it may not (a
    /// least-privilege token), that is the administrator's to check (`keyhold doctor`).
    /// The client's token is renewed in the background from now on.
    pub fn open(client: Arc<VaultClient>, key: KeyPath) -> Result<Self, VaultError> {
        match client.key_info(&key) {
            Ok(Some(info)) => {
                let unsuitable = |why: &str| VaultError::Unsuitable {
                    key: key.to_string(),
                    why: why.to_owned(),
                };
                if info.key_type != "hmac" {
                    return Err(unsuitable(&format!(
                        "is of type {}, not hmac",
                        info.key_type
                    )));
                }
                if info.exportable || info.allow_plaintext_backup {
                    return Err(unsuitable(
                        "can be exported or backed up in plaintext (exportable or \
                         allow_plaintext_backup is true): the secret can leave Vault; import it \
                         again under a new name with a new secret access key",
                    ));
                }
            }
            Ok(None) => {
                return Err(VaultError::NotFound {
                    what: format!(
                        "no transit key {key}: import one (keyhold import --key vault:{key})"
                    ),
                });
            }
            // A token that may only HMAC cannot read the key's settings.
            Err(VaultError::Denied { .. }) => {}
            Err(e) => return Err(e),
        }
        client.keep_renewed();
        Ok(Self { client, key })
    }

    /// The key's mount and name.
    pub fn key(&self) -> &KeyPath {
        &self.key
    }

    /// The client.
    pub fn client(&self) -> &Arc<VaultClient> {
        &self.client
    }
}

impl RootKey for VaultRootKey {
    fn date_key(&self, date: &DateStamp) -> Result<DateKey, KeyError> {
        let tag = self.client.hmac(&self.key, date.as_bytes())?;
        Ok(DateKey::from_bytes(*tag))
    }
}
