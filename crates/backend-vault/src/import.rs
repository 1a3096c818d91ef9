//! Bring your own key: `"AWS4" + secret` wrapped for the transit engine's import endpoint.
//!
//! The ciphertext is `RSA-OAEP(SHA-256, MGF1-SHA-256, no label)` of a fresh AES-256 key,
//! followed by `AES-KWP` (RFC 5649, key wrap with padding) of the key material under that AES
//! key, base64 — as Vault's and OpenBao's transit documentation give it. The AES key and the
//! AES key schedule are zeroized; the material is only ever in the caller's [`RootSecret`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use sigv4_core::RootSecret;
use zeroize::Zeroizing;

use crate::KeyPath;
use crate::client::VaultClient;
use crate::error::VaultError;

/// Imports `secret` as the transit key `key`: non-exportable, no plaintext backup. Fails
/// with [`VaultError::KeyExists`] if the key exists (imported keys cannot be replaced).
/// The caller proves the import with one HMAC before dropping the secret.
pub fn import(client: &VaultClient, key: &KeyPath, secret: &RootSecret) -> Result<(), VaultError> {
    let pem = client.wrapping_key(&key.mount)?;
    let ciphertext = wrap(&pem, secret.expose())?;
    client.import(key, &ciphertext)?;
    tracing::info!(key = %key, "imported into Vault transit (not exportable, no plaintext backup)");
    Ok(())
}

/// The import ciphertext of `material` for the wrapping key `pem` (base64).
pub fn wrap(pem: &str, material: &[u8]) -> Result<String, VaultError> {
    let wrapping = RsaPublicKey::from_public_key_pem(pem)
        .map_err(|e| VaultError::Wrap(format!("the wrapping key is not an RSA public key: {e}")))?;
    if wrapping.size() < 256 {
        return Err(VaultError::Wrap(format!(
            "the wrapping key has {} bits; at least 2048 are expected",
            wrapping.size() * 8
        )));
    }
    let mut aes_key = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(&mut *aes_key)
        .map_err(|e| VaultError::Wrap(format!("no random numbers: {e}")))?;
    let mut out = wrapping
        .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), &*aes_key)
        .map_err(|e| VaultError::Wrap(format!("RSA-OAEP failed: {e}")))?;
    let kek = aes_kw::KekAes256::from(*aes_key);
    let wrapped = kek
        .wrap_with_padding_vec(material)
        .map_err(|e| VaultError::Wrap(format!("AES key wrap failed: {e}")))?;
    out.extend_from_slice(&wrapped);
    Ok(BASE64.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;

    /// The wrapping unwraps with the private key and RFC 5649's unwrap to the material.
    #[test]
    fn the_wrapping_unwraps_to_the_material() {
        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let pem = private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let material = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let ciphertext = BASE64.decode(wrap(&pem, material).unwrap()).unwrap();
        let (encrypted_key, wrapped) = ciphertext.split_at(256);
        let aes_key = private
            .decrypt(Oaep::new::<sha2::Sha256>(), encrypted_key)
            .unwrap();
        let aes_key: [u8; 32] = aes_key.try_into().unwrap();
        let unwrapped = aes_kw::KekAes256::from(aes_key)
            .unwrap_with_padding_vec(wrapped)
            .unwrap();
        assert_eq!(unwrapped, material);
        // A fresh AES key each time.
        assert_ne!(wrap(&pem, material).unwrap(), wrap(&pem, material).unwrap());
        assert!(wrap("not a key", material).is_err());
    }
}
