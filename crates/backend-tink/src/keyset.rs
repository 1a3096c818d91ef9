//! The keyset itself: building the one-key HMAC keyset from `"AWS4" + secret`, the standard
//! encrypted JSON format, and the checks a keyset must pass before it is used for SigV4.
//!
//! Every serialized form of the keyset that passes through this crate (the `HmacKey` proto,
//! the `Keyset` proto, the bytes KMS decrypts to) is held in a [`Zeroizing`] buffer or
//! zeroized explicitly before it is dropped. What Tink keeps is described in the crate docs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sigv4_core::RootSecret;
use tink_proto::prost::Message as _;
use tink_proto::{
    HashType, HmacKey, HmacParams, KeyData, KeyStatusType, Keyset, OutputPrefixType,
    key_data::KeyMaterialType,
};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// The type URL of Tink's HMAC keys.
pub const HMAC_KEY_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.HmacKey";

/// The HMAC output size SigV4 needs, in bytes.
const TAG_SIZE: u32 = 32;

/// The encrypted JSON keyset, as Tink in Go, Java and Python writes it. Fields with default
/// values may be missing (proto3 JSON leaves them out); unknown fields are ignored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptedKeysetJson {
    /// Base64 of the KMS ciphertext of the serialized `Keyset`.
    pub(crate) encrypted_keyset: String,
    /// Unauthenticated, informational: what the keyset holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keyset_info: Option<KeysetInfoJson>,
}

/// `keysetInfo`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeysetInfoJson {
    /// The primary key id.
    #[serde(default)]
    pub(crate) primary_key_id: u32,
    /// One entry per key.
    #[serde(default)]
    pub(crate) key_info: Vec<KeyInfoJson>,
}

/// One `keyInfo` entry.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyInfoJson {
    /// The key's type URL.
    #[serde(default)]
    pub(crate) type_url: String,
    /// `ENABLED`, `DISABLED`, `DESTROYED`.
    #[serde(default)]
    pub(crate) status: String,
    /// The key id.
    #[serde(default)]
    pub(crate) key_id: u32,
    /// `RAW`, `TINK`, `LEGACY`, `CRUNCHY`.
    #[serde(default)]
    pub(crate) output_prefix_type: String,
}

impl EncryptedKeysetJson {
    /// Parses the JSON text.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(|e| Error::KeysetJson {
            reason: e.to_string(),
        })
    }

    /// The KMS ciphertext.
    pub(crate) fn ciphertext(&self) -> Result<Vec<u8>, Error> {
        BASE64
            .decode(self.encrypted_keyset.trim())
            .map_err(|e| Error::KeysetJson {
                reason: format!("encryptedKeyset is not base64: {e}"),
            })
    }

    /// The JSON for a freshly encrypted one-key keyset.
    pub(crate) fn for_new_keyset(ciphertext: &[u8], key_id: u32) -> Self {
        Self {
            encrypted_keyset: BASE64.encode(ciphertext),
            keyset_info: Some(KeysetInfoJson {
                primary_key_id: key_id,
                key_info: vec![KeyInfoJson {
                    type_url: HMAC_KEY_TYPE_URL.to_owned(),
                    status: "ENABLED".to_owned(),
                    key_id,
                    output_prefix_type: "RAW".to_owned(),
                }],
            }),
        }
    }

    /// Pretty JSON with a trailing newline, like tinkey.
    pub(crate) fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The serialized one-key keyset for `secret` under a fresh random key id: HMAC-SHA256,
/// 32-byte tag, RAW prefix, ENABLED. Returns the key id and the zeroizing serialized keyset.
pub(crate) fn new_serialized_keyset(secret: &RootSecret) -> (u32, Zeroizing<Vec<u8>>) {
    let mut hmac_key = HmacKey {
        version: 0,
        params: Some(HmacParams {
            hash: HashType::Sha256 as i32,
            tag_size: TAG_SIZE,
        }),
        key_value: secret.expose().to_vec(),
    };
    let mut key_value = Zeroizing::new(Vec::with_capacity(hmac_key.encoded_len()));
    // Encoding into a Vec cannot run out of space.
    let _ = hmac_key.encode(&mut *key_value);
    hmac_key.key_value.zeroize();

    let key_id = new_key_id();
    let mut keyset = Keyset {
        primary_key_id: key_id,
        key: vec![tink_proto::keyset::Key {
            key_data: Some(KeyData {
                type_url: HMAC_KEY_TYPE_URL.to_owned(),
                value: key_value.to_vec(),
                key_material_type: KeyMaterialType::Symmetric as i32,
            }),
            status: KeyStatusType::Enabled as i32,
            key_id,
            output_prefix_type: OutputPrefixType::Raw as i32,
        }],
    };
    let mut serialized = Zeroizing::new(Vec::with_capacity(keyset.encoded_len()));
    let _ = keyset.encode(&mut *serialized);
    zeroize_keyset(&mut keyset);
    (key_id, serialized)
}

/// A random non-zero key id, as Tink picks them.
fn new_key_id() -> u32 {
    loop {
        let id = tink_core::subtle::random::get_random_uint32();
        if id != 0 {
            return id;
        }
    }
}

/// Overwrites the key material in a keyset proto that is about to be dropped.
pub(crate) fn zeroize_keyset(keyset: &mut Keyset) {
    for key in &mut keyset.key {
        if let Some(data) = key.key_data.as_mut() {
            data.value.zeroize();
        }
    }
}

/// Decodes a decrypted keyset and keeps only its primary key, after checking that it is an
/// HMAC-SHA256 key with a 32-byte tag and RAW prefix holding `"AWS4" + secret`. Other keys
/// are dropped (and zeroized): SigV4 only ever uses the primary.
pub(crate) fn primary_hmac_keyset(serialized: &[u8], source: &str) -> Result<Keyset, Error> {
    let mut keyset = Keyset::decode(serialized).map_err(|_| Error::KeysetDecode {
        uri: source.to_owned(),
    })?;
    let result = take_primary(&mut keyset);
    zeroize_keyset(&mut keyset);
    result
}

/// Moves the checked primary key out of `keyset` into a keyset of its own.
pub(crate) fn take_primary(keyset: &mut Keyset) -> Result<Keyset, Error> {
    let primary_key_id = keyset.primary_key_id;
    let position = keyset
        .key
        .iter()
        .position(|k| k.key_id == primary_key_id)
        .ok_or_else(|| Error::NoPrimaryKey {
            primary_key_id,
            reason: format!(
                "is not in the keyset (it has {} key(s)): the keyset is damaged",
                keyset.key.len()
            ),
        })?;
    let key = keyset.key.swap_remove(position);
    let checked = check_hmac_key(&key);
    let mut primary = Keyset {
        primary_key_id,
        key: vec![key],
    };
    match checked {
        Ok(()) => Ok(primary),
        Err(e) => {
            zeroize_keyset(&mut primary);
            Err(e)
        }
    }
}

/// The checks a primary key must pass to be used as a SigV4 root key.
fn check_hmac_key(key: &tink_proto::keyset::Key) -> Result<(), Error> {
    let key_id = key.key_id;
    if key.status != KeyStatusType::Enabled as i32 {
        return Err(Error::NoPrimaryKey {
            primary_key_id: key_id,
            reason: format!(
                "is {}: enable it with tinkey, or create a new keyset",
                status_name(key.status)
            ),
        });
    }
    let data = key.key_data.as_ref().ok_or_else(|| Error::NoPrimaryKey {
        primary_key_id: key_id,
        reason: "has no key data: the keyset is damaged".to_owned(),
    })?;
    if data.type_url != HMAC_KEY_TYPE_URL {
        return Err(Error::NotHmac {
            key_id,
            type_url: data.type_url.clone(),
        });
    }
    let unsuitable = |reason: String| Error::UnsuitableHmacKey { key_id, reason };
    let mut hmac = HmacKey::decode(&data.value[..])
        .map_err(|_| unsuitable("its key data is not an HmacKey protobuf".to_owned()))?;
    let verdict = (|| {
        let params = hmac
            .params
            .as_ref()
            .ok_or_else(|| unsuitable("it has no parameters".to_owned()))?;
        if params.hash != HashType::Sha256 as i32 {
            let name = HashType::try_from(params.hash)
                .map(|h| h.as_str_name())
                .unwrap_or("an unknown hash");
            return Err(unsuitable(format!("its hash is {name}, not SHA256")));
        }
        if params.tag_size != TAG_SIZE {
            return Err(unsuitable(format!(
                "its tag size is {} bytes, not 32",
                params.tag_size
            )));
        }
        if key.output_prefix_type != OutputPrefixType::Raw as i32 {
            return Err(unsuitable(format!(
                "its output prefix is {}, not RAW (Tink would prepend 5 bytes to every MAC)",
                prefix_name(key.output_prefix_type)
            )));
        }
        if !hmac.key_value.starts_with(b"AWS4") || hmac.key_value.len() <= 4 {
            return Err(unsuitable(
                "its key value is not \"AWS4\" followed by a secret access key (was it generated \
                 by Tink rather than imported from an AWS secret?)"
                    .to_owned(),
            ));
        }
        Ok(())
    })();
    hmac.key_value.zeroize();
    verdict
}

/// `ENABLED`, `DISABLED`, ... for a status value.
fn status_name(status: i32) -> &'static str {
    KeyStatusType::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN_STATUS")
}

/// `RAW`, `TINK`, ... for a prefix value.
fn prefix_name(prefix: i32) -> &'static str {
    OutputPrefixType::try_from(prefix)
        .map(|p| p.as_str_name())
        .unwrap_or("UNKNOWN_PREFIX")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> RootSecret {
        RootSecret::from_secret_access_key(Zeroizing::new(b"not-a-real-secret-for-tests".to_vec()))
    }

    #[test]
    fn a_new_keyset_passes_its_own_checks() {
        let (key_id, serialized) = new_serialized_keyset(&secret());
        let keyset = primary_hmac_keyset(&serialized, "test").unwrap();
        assert_eq!(keyset.primary_key_id, key_id);
        assert_eq!(keyset.key.len(), 1);
        assert_eq!(
            keyset.key[0].output_prefix_type,
            OutputPrefixType::Raw as i32
        );
    }

    #[test]
    fn wrong_parameters_are_named() {
        let (_, serialized) = new_serialized_keyset(&secret());
        let mut keyset = Keyset::decode(&serialized[..]).unwrap();
        keyset.key[0].output_prefix_type = OutputPrefixType::Tink as i32;
        let err = take_primary(&mut keyset.clone()).unwrap_err();
        assert!(err.to_string().contains("output prefix is TINK"), "{err}");

        keyset.key[0].output_prefix_type = OutputPrefixType::Raw as i32;
        keyset.key[0].status = KeyStatusType::Disabled as i32;
        let err = take_primary(&mut keyset.clone()).unwrap_err();
        assert!(err.to_string().contains("is DISABLED"), "{err}");

        keyset.key[0].status = KeyStatusType::Enabled as i32;
        keyset.primary_key_id ^= 1;
        let err = take_primary(&mut keyset).unwrap_err();
        assert!(matches!(err, Error::NoPrimaryKey { .. }), "{err}");
    }

    #[test]
    fn json_round_trips_and_tolerates_missing_defaults() {
        let json = EncryptedKeysetJson::for_new_keyset(b"ciphertext", 42).to_json();
        assert!(
            json.contains("\"encryptedKeyset\": \"Y2lwaGVydGV4dA==\""),
            "{json}"
        );
        assert!(json.contains("\"primaryKeyId\": 42"), "{json}");
        assert!(json.contains("\"outputPrefixType\": \"RAW\""), "{json}");
        let parsed = EncryptedKeysetJson::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed.ciphertext().unwrap(), b"ciphertext");

        let minimal = EncryptedKeysetJson::parse(br#"{"encryptedKeyset":"AAEC"}"#).unwrap();
        assert_eq!(minimal.ciphertext().unwrap(), [0, 1, 2]);
        let Err(err) = EncryptedKeysetJson::parse(br#"{"primaryKeyId":1,"key":[]}"#) else {
            panic!("a cleartext keyset parsed as an encrypted one")
        };
        assert!(err.to_string().contains("encryptedKeyset"), "{err}");
    }
}
