//! Google Cloud KMS as a Tink master key (feature `gcp-kms`), over the official
//! `google-cloud-kms-v1` client (REST transport).
//!
//! Behaves like Go Tink's GCP KMS AEAD: the key URI is `gcp-kms://` + the CryptoKey resource
//! name; associated data goes in `additionalAuthenticatedData`; CRC32C checksums of
//! everything sent are attached, and the reply must confirm them
//! (`verifiedPlaintextCrc32c`, `verifiedAdditionalAuthenticatedDataCrc32c`), carry a matching
//! checksum of what it returns, and (for `Encrypt`) name the key asked for.
//!
//! Credentials are Application Default Credentials unless given in [`GcpKmsOptions`]; the
//! endpoint is `https://cloudkms.googleapis.com` unless [`GcpKmsOptions::endpoint`] sets one.

use std::fmt;
use std::sync::Arc;

use google_cloud_gax::error::rpc::Code;
use google_cloud_kms_v1::client::KeyManagementService;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::endpoint::{CALLER, check_endpoint};
use crate::runtime::KmsRuntime;

/// The URI scheme of Google Cloud KMS keys in Tink.
const SCHEME: &str = "gcp-kms://";

/// Settings for [`GcpKmsAead::new`]. The default is Google's standard configuration.
#[derive(Clone, Default)]
pub struct GcpKmsOptions {
    endpoint: Option<String>,
    credentials: Option<google_cloud_auth::credentials::Credentials>,
    allow_insecure_http: bool,
}

impl GcpKmsOptions {
    /// The standard configuration: Application Default Credentials, Google's endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends KMS calls to this endpoint instead of `https://cloudkms.googleapis.com`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Allows an `http://` endpoint on another machine (refused by default: the plaintext
    /// of an import's `Encrypt` is the secret).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Uses these credentials instead of Application Default Credentials.
    pub fn credentials(mut self, credentials: google_cloud_auth::credentials::Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
}

impl fmt::Debug for GcpKmsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsOptions")
            .field("endpoint", &self.endpoint)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "** given **"),
            )
            .finish()
    }
}

/// A Tink AEAD whose encrypt and decrypt are Google Cloud KMS `Encrypt` and `Decrypt` calls.
///
/// Implements `tink_core::Aead`; the inherent [`try_encrypt`](Self::try_encrypt) and
/// [`try_decrypt`](Self::try_decrypt) return typed errors. Cheap to clone; usable from sync
/// code and from inside a tokio runtime.
#[derive(Clone)]
pub struct GcpKmsAead {
    inner: Arc<Inner>,
}

struct Inner {
    uri: String,
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K`.
    key_name: String,
    client: KeyManagementService,
    runtime: KmsRuntime,
}

impl GcpKmsAead {
    /// A KMS AEAD for `gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K`.
    pub fn new(key_uri: &str, options: GcpKmsOptions) -> Result<Self, Error> {
        let key_name = parse_key_uri(key_uri)?;
        let setup = |reason: String, source: Option<crate::error::BoxError>| Error::KmsSetup {
            uri: key_uri.to_owned(),
            reason,
            source,
        };
        if let Some(endpoint) = &options.endpoint {
            check_endpoint(key_uri, endpoint, CALLER, options.allow_insecure_http)?;
        }
        tracing::info!(
            endpoint = options
                .endpoint
                .as_deref()
                .unwrap_or("https://cloudkms.googleapis.com"),
            "Google Cloud KMS endpoint"
        );
        let runtime = KmsRuntime::new().map_err(|e| {
            setup(
                "could not start its tokio runtime".to_owned(),
                Some(Box::new(e)),
            )
        })?;
        let client = runtime
            .block_on(async move {
                // A redirect would carry the request (an import's plaintext is the secret)
                // to another host.
                let mut builder = google_cloud_gax::client_builder::internal::with_follow_redirects(
                    KeyManagementService::builder(),
                    false,
                );
                if let Some(endpoint) = options.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(credentials) = options.credentials {
                    builder = builder.with_credentials(credentials);
                }
                builder.build().await
            })
            .map_err(|e| {
                setup(
                    "could not start a thread for it".to_owned(),
                    Some(Box::new(e)),
                )
            })?
            .map_err(|e| setup("could not build the client".to_owned(), Some(Box::new(e))))?;
        Ok(Self {
            inner: Arc::new(Inner {
                uri: key_uri.to_owned(),
                key_name,
                client,
                runtime,
            }),
        })
    }

    /// The key URI this AEAD was made for.
    pub fn key_uri(&self) -> &str {
        &self.inner.uri
    }

    /// KMS `Encrypt` of `plaintext` with `associated_data` as additional authenticated data.
    pub fn try_encrypt(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let request = inner
            .client
            .encrypt()
            .set_name(inner.key_name.clone())
            .set_plaintext(bytes::Bytes::copy_from_slice(plaintext))
            .set_plaintext_crc32c(i64::from(crc32c(plaintext)))
            .set_additional_authenticated_data(bytes::Bytes::copy_from_slice(associated_data))
            .set_additional_authenticated_data_crc32c(i64::from(crc32c(associated_data)));
        let reply = inner
            .runtime
            .block_on(request.send())
            .map_err(|e| inner.unavailable("Encrypt", e))?
            .map_err(|e| inner.service_error("Encrypt", e))?;
        if !reply.verified_plaintext_crc32c {
            return Err(inner.reply_error(
                "Encrypt",
                "it does not confirm the plaintext checksum (verifiedPlaintextCrc32c); retry a \
                 few times in case the request was damaged in transit",
            ));
        }
        if !reply.verified_additional_authenticated_data_crc32c {
            return Err(inner.reply_error(
                "Encrypt",
                "it does not confirm the associated-data checksum \
                 (verifiedAdditionalAuthenticatedDataCrc32c); retry a few times",
            ));
        }
        // The reply names the CryptoKeyVersion used: the key name plus /cryptoKeyVersions/N.
        let names_our_key = reply.name == inner.key_name
            || reply
                .name
                .strip_prefix(inner.key_name.as_str())
                .is_some_and(|rest| rest.starts_with("/cryptoKeyVersions/"));
        if !names_our_key {
            return Err(Error::WrongKmsKey {
                uri: inner.uri.clone(),
                detail: format!("the Encrypt reply names key {}", reply.name),
            });
        }
        if reply.ciphertext_crc32c != Some(i64::from(crc32c(&reply.ciphertext))) {
            return Err(inner.reply_error(
                "Encrypt",
                "its ciphertextCrc32c does not match the ciphertext; retry in case it was \
                 damaged in transit",
            ));
        }
        Ok(reply.ciphertext.to_vec())
    }

    /// KMS `Decrypt` of `ciphertext` with `associated_data` as additional authenticated data.
    /// The plaintext is returned in a buffer that is zeroized on drop.
    pub fn try_decrypt(
        &self,
        ciphertext: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let inner = &self.inner;
        let request = inner
            .client
            .decrypt()
            .set_name(inner.key_name.clone())
            .set_ciphertext(bytes::Bytes::copy_from_slice(ciphertext))
            .set_ciphertext_crc32c(i64::from(crc32c(ciphertext)))
            .set_additional_authenticated_data(bytes::Bytes::copy_from_slice(associated_data))
            .set_additional_authenticated_data_crc32c(i64::from(crc32c(associated_data)));
        let reply = inner
            .runtime
            .block_on(request.send())
            .map_err(|e| inner.unavailable("Decrypt", e))?
            .map_err(|e| inner.service_error("Decrypt", e))?;
        let plaintext = take_zeroizing(reply.plaintext);
        if reply.plaintext_crc32c != Some(i64::from(crc32c(&plaintext))) {
            return Err(inner.reply_error(
                "Decrypt",
                "its plaintextCrc32c does not match the plaintext; retry in case it was damaged \
                 in transit",
            ));
        }
        Ok(plaintext)
    }
}

/// Copies the reply's plaintext into a zeroizing buffer and, when this is the only reference
/// to it, overwrites the original.
fn take_zeroizing(plaintext: bytes::Bytes) -> Zeroizing<Vec<u8>> {
    let copy = Zeroizing::new(plaintext.to_vec());
    if let Ok(mut unique) = plaintext.try_into_mut() {
        unique.as_mut().zeroize();
    }
    copy
}

impl Inner {
    fn reply_error(&self, operation: &'static str, reason: &str) -> Error {
        Error::KmsReply {
            uri: self.uri.clone(),
            operation,
            reason: reason.to_owned(),
        }
    }

    fn unavailable(&self, operation: &'static str, error: std::io::Error) -> Error {
        Error::KmsUnavailable {
            uri: self.uri.clone(),
            operation,
            reason: "could not start a thread to run the call".to_owned(),
            source: Some(Box::new(error)),
        }
    }

    /// Maps a client error to the error that says what to do.
    fn service_error(&self, operation: &'static str, error: google_cloud_kms_v1::Error) -> Error {
        let uri = self.uri.clone();
        let Some(status) = error.status() else {
            if error.is_authentication() {
                return Error::KmsDenied {
                    uri,
                    operation,
                    code: "authentication".to_owned(),
                    message: error.to_string(),
                };
            }
            let reason = if error.is_timeout() {
                "the call timed out"
            } else if error.is_connect() {
                "could not connect"
            } else {
                "the call got no answer"
            };
            return Error::KmsUnavailable {
                uri,
                operation,
                reason: reason.to_owned(),
                source: Some(Box::new(error)),
            };
        };
        let code = format!("{:?}", status.code);
        let message = status.message.clone();
        match status.code {
            Code::NotFound => Error::KmsKeyNotFound {
                uri,
                operation,
                code,
                message,
            },
            Code::PermissionDenied | Code::Unauthenticated => Error::KmsDenied {
                uri,
                operation,
                code,
                message,
            },
            Code::FailedPrecondition => Error::KmsKeyUnusable {
                uri,
                operation,
                code,
                message,
            },
            // Cloud KMS answers INVALID_ARGUMENT "Decryption failed" for a damaged ciphertext,
            // for one made under another key, and for different associated data.
            Code::InvalidArgument if operation == "Decrypt" => {
                Error::KeysetCiphertextInvalid { uri, code, message }
            }
            Code::Unavailable | Code::DeadlineExceeded => Error::KmsUnavailable {
                uri,
                operation,
                reason: format!("{code}: {message}"),
                source: None,
            },
            _ => Error::Kms {
                uri,
                operation,
                code,
                message,
            },
        }
    }
}

/// Parses `gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K` into the resource name.
fn parse_key_uri(uri: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidKeyUri {
        uri: uri.to_owned(),
        reason: format!(
            "{reason}; expected gcp-kms://projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"
        ),
    };
    let name = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| invalid("it does not start with gcp-kms://"))?;
    let parts: Vec<&str> = name.split('/').collect();
    match parts[..] {
        [
            "projects",
            p,
            "locations",
            l,
            "keyRings",
            r,
            "cryptoKeys",
            k,
        ] if [p, l, r, k].iter().all(|s| !s.is_empty()) => Ok(name.to_owned()),
        _ => Err(invalid("it is not a CryptoKey resource name")),
    }
}

/// CRC32C (Castagnoli), the checksum Cloud KMS uses for integrity fields.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

impl tink_core::Aead for GcpKmsAead {
    fn encrypt(
        &self,
        plaintext: &[u8],
        additional_data: &[u8],
    ) -> Result<Vec<u8>, tink_core::TinkError> {
        self.try_encrypt(plaintext, additional_data)
            .map_err(|e| tink_core::utils::wrap_err("GCP KMS encrypt failed", e))
    }

    fn decrypt(
        &self,
        ciphertext: &[u8],
        additional_data: &[u8],
    ) -> Result<Vec<u8>, tink_core::TinkError> {
        // Tink's trait hands back a plain Vec; the caller owns zeroizing it.
        self.try_decrypt(ciphertext, additional_data)
            .map(|plaintext| plaintext.to_vec())
            .map_err(|e| tink_core::utils::wrap_err("GCP KMS decrypt failed", e))
    }
}

impl fmt::Debug for GcpKmsAead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsAead")
            .field("key_uri", &self.inner.uri)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value (RFC 3720 appendix B.4 uses the same polynomial).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn key_uris_parse() {
        let name =
            parse_key_uri("gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k").unwrap();
        assert_eq!(name, "projects/p/locations/global/keyRings/r/cryptoKeys/k");
        for bad in [
            "projects/p/locations/global/keyRings/r/cryptoKeys/k",
            "gcp-kms://projects/p/locations/global/keyRings/r",
            "gcp-kms://projects//locations/global/keyRings/r/cryptoKeys/k",
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
        ] {
            assert!(
                matches!(parse_key_uri(bad), Err(Error::InvalidKeyUri { .. })),
                "{bad}"
            );
        }
    }
}
