//! The key that encrypts a keyset: one of our KMS AEADs, or any other `tink_core::Aead`.
//!
//! Our own KMS AEADs report typed errors ([`Error::WrongKmsKey`], [`Error::KmsKeyNotFound`],
//! ...). A foreign `tink_core::Aead` can only report a `TinkError`, which carries text and no
//! structured cause, so its failures become [`Error::MasterKey`].

use std::fmt;

use zeroize::Zeroizing;

use crate::Error;

/// The master key a keyset is encrypted under: a KMS key (by URI) or any `tink_core::Aead`.
///
/// Only needed to create or open a keyset; the opened [`TinkRootKey`](crate::TinkRootKey)
/// does not keep it.
pub struct MasterKey {
    name: String,
    kind: Kind,
}

enum Kind {
    #[cfg(feature = "aws-kms")]
    Aws(crate::AwsKmsAead),
    #[cfg(feature = "gcp-kms")]
    Gcp(crate::GcpKmsAead),
    Tink(Box<dyn tink_core::Aead>),
}

impl MasterKey {
    /// The KMS key named by a Tink key URI, with default client settings (credentials and
    /// endpoint from the environment):
    /// `aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID` (feature `aws-kms`) or
    /// `gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K` (feature `gcp-kms`).
    ///
    /// For endpoint or credential overrides build the AEAD yourself
    /// (`AwsKmsAead::new`, `GcpKmsAead::new`) and convert it with `From`.
    pub fn from_uri(key_uri: &str) -> Result<Self, Error> {
        Self::from_uri_with(key_uri, false)
    }

    /// As [`MasterKey::from_uri`], and with `allow_insecure_http` an `http://` endpoint on
    /// another machine is accepted (refused by default: an import's plaintext is the secret).
    pub fn from_uri_with(key_uri: &str, allow_insecure_http: bool) -> Result<Self, Error> {
        let _ = allow_insecure_http; // unused when built with neither KMS
        if key_uri.starts_with("aws-kms://") {
            #[cfg(feature = "aws-kms")]
            return crate::AwsKmsAead::new(
                key_uri,
                crate::AwsKmsOptions::default().allow_insecure_http(allow_insecure_http),
            )
            .map(Self::from);
            #[cfg(not(feature = "aws-kms"))]
            return Err(Error::KmsNotBuiltIn {
                uri: key_uri.to_owned(),
                feature: "aws-kms",
            });
        }
        if key_uri.starts_with("gcp-kms://") {
            #[cfg(feature = "gcp-kms")]
            return crate::GcpKmsAead::new(
                key_uri,
                crate::GcpKmsOptions::default().allow_insecure_http(allow_insecure_http),
            )
            .map(Self::from);
            #[cfg(not(feature = "gcp-kms"))]
            return Err(Error::KmsNotBuiltIn {
                uri: key_uri.to_owned(),
                feature: "gcp-kms",
            });
        }
        Err(Error::InvalidKeyUri {
            uri: key_uri.to_owned(),
            reason: "it must start with aws-kms:// or gcp-kms://".to_owned(),
        })
    }

    /// Any Tink AEAD as the master key (for example one from another KMS integration).
    /// `name` identifies it in error messages.
    pub fn from_tink_aead(name: impl Into<String>, aead: Box<dyn tink_core::Aead>) -> Self {
        Self {
            name: name.into(),
            kind: Kind::Tink(aead),
        }
    }

    /// The key URI, or the name given to a foreign AEAD.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Encrypts a serialized keyset.
    pub(crate) fn encrypt(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match &self.kind {
            #[cfg(feature = "aws-kms")]
            Kind::Aws(aead) => aead.try_encrypt(plaintext, associated_data),
            #[cfg(feature = "gcp-kms")]
            Kind::Gcp(aead) => aead.try_encrypt(plaintext, associated_data),
            Kind::Tink(aead) => {
                aead.encrypt(plaintext, associated_data)
                    .map_err(|e| Error::MasterKey {
                        name: self.name.clone(),
                        operation: "encrypt",
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Decrypts an encrypted keyset into a buffer that is zeroized on drop.
    pub(crate) fn decrypt(
        &self,
        ciphertext: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        match &self.kind {
            #[cfg(feature = "aws-kms")]
            Kind::Aws(aead) => aead.try_decrypt(ciphertext, associated_data),
            #[cfg(feature = "gcp-kms")]
            Kind::Gcp(aead) => aead.try_decrypt(ciphertext, associated_data),
            Kind::Tink(aead) => aead
                .decrypt(ciphertext, associated_data)
                .map(Zeroizing::new)
                .map_err(|e| Error::MasterKey {
                    name: self.name.clone(),
                    operation: "decrypt",
                    message: e.to_string(),
                }),
        }
    }
}

#[cfg(feature = "aws-kms")]
impl From<crate::AwsKmsAead> for MasterKey {
    fn from(aead: crate::AwsKmsAead) -> Self {
        Self {
            name: aead.key_uri().to_owned(),
            kind: Kind::Aws(aead),
        }
    }
}

#[cfg(feature = "gcp-kms")]
impl From<crate::GcpKmsAead> for MasterKey {
    fn from(aead: crate::GcpKmsAead) -> Self {
        Self {
            name: aead.key_uri().to_owned(),
            kind: Kind::Gcp(aead),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("name", &self.name)
            .finish()
    }
}
