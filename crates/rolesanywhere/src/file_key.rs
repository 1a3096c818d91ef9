//! A private key in a PEM file: PKCS#8 (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED
//! PRIVATE KEY`, with a password), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`);
//! RSA (2048 bits or more), P-256 or P-384. Users of the AWS helper start here.
//!
//! The key sits in memory (zeroized on drop by the RustCrypto types): a file key protects
//! nothing a device would. Prefer a PKCS#11 token or a TPM.

use std::fmt;

use ecdsa::signature::hazmat::PrehashSigner;
use pkcs8::DecodePrivateKey;
use pkcs8::der::Decode;
use rsa::pkcs1::DecodeRsaPrivateKey;
use sha2::{Digest, Sha256};
use sigv4_core::{KeyError, KeyErrorKind, X509Key, X509KeyKind, X509PublicKey};
use zeroize::Zeroizing;

use crate::certificate::{EC_PUBLIC_KEY, P256, P384, RSA_ENCRYPTION};

/// Why a key file can't be used. Never holds key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileKeyError {
    /// Not PEM.
    #[error("the private key file is not PEM (-----BEGIN ... PRIVATE KEY-----)")]
    NotPem,
    /// A PEM block this reader does not take.
    #[error(
        "the private key file holds a {0:?} block; expected PRIVATE KEY, ENCRYPTED PRIVATE KEY, \
         EC PRIVATE KEY or RSA PRIVATE KEY"
    )]
    UnsupportedLabel(String),
    /// OpenSSL's legacy encryption (`Proc-Type: 4,ENCRYPTED`), which this reader refuses.
    #[error(
        "the private key uses OpenSSL's legacy PEM encryption; convert it with \
         `openssl pkcs8 -topk8 -in OLD -out NEW` (and give keyhold the password the same way)"
    )]
    LegacyEncryption,
    /// The DER inside is malformed.
    #[error("the {format} private key is malformed")]
    Malformed {
        /// `PKCS#8`, `SEC1` or `PKCS#1`.
        format: &'static str,
    },
    /// Encrypted, and no password was given.
    #[error(
        "the private key is encrypted; give its password (--private-key-password-file or KEYHOLD_PRIVATE_KEY_PASSWORD)"
    )]
    PasswordNeeded,
    /// The password does not decrypt it.
    #[error("the private key's password is wrong (or its encryption is not PBES2)")]
    WrongPassword,
    /// Not RSA, P-256 or P-384.
    #[error("the private key is {0}; IAM Roles Anywhere takes RSA, or EC on P-256 or P-384")]
    Unsupported(String),
    /// RSA shorter than 2048 bits.
    #[error("the RSA key has {0} bits; IAM Roles Anywhere needs at least 2048")]
    RsaTooShort(usize),
}

enum Inner {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A private key read from a PEM file.
pub struct FileKey {
    inner: Inner,
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            Inner::Rsa(_) => "RSA",
            Inner::P256(_) => "P-256",
            Inner::P384(_) => "P-384",
        };
        f.debug_struct("FileKey")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl FileKey {
    /// Reads a PEM private key; `password` decrypts an `ENCRYPTED PRIVATE KEY`.
    pub fn from_pem(pem: &str, password: Option<&[u8]>) -> Result<Self, FileKeyError> {
        if pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(FileKeyError::LegacyEncryption);
        }
        let (label, der) =
            pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| FileKeyError::NotPem)?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8(&der),
            "ENCRYPTED PRIVATE KEY" => {
                let password = password.ok_or(FileKeyError::PasswordNeeded)?;
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
                    .map_err(|_| FileKeyError::Malformed { format: "PKCS#8" })?;
                let plain = info
                    .decrypt(password)
                    .map_err(|_| FileKeyError::WrongPassword)?;
                Self::from_pkcs8(plain.as_bytes())
            }
            "EC PRIVATE KEY" => {
                let malformed = || FileKeyError::Malformed { format: "SEC1" };
                let key = sec1::EcPrivateKey::from_der(&der).map_err(|_| malformed())?;
                let curve = key
                    .parameters
                    .and_then(|p| p.named_curve())
                    .ok_or_else(|| FileKeyError::Unsupported("EC without a named curve".into()))?;
                let inner = match curve {
                    P256 => Inner::P256(
                        p256::SecretKey::from_sec1_der(&der)
                            .map_err(|_| malformed())?
                            .into(),
                    ),
                    P384 => Inner::P384(
                        p384::SecretKey::from_sec1_der(&der)
                            .map_err(|_| malformed())?
                            .into(),
                    ),
                    other => return Err(FileKeyError::Unsupported(format!("EC on curve {other}"))),
                };
                Ok(Self { inner })
            }
            "RSA PRIVATE KEY" => {
                let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                    .map_err(|_| FileKeyError::Malformed { format: "PKCS#1" })?;
                Self::rsa(key)
            }
            other => Err(FileKeyError::UnsupportedLabel(other.to_owned())),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, FileKeyError> {
        let malformed = || FileKeyError::Malformed { format: "PKCS#8" };
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| malformed())?;
        let algorithm = info.algorithm.oid;
        if algorithm == RSA_ENCRYPTION {
            return Self::rsa(rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| malformed())?);
        }
        if algorithm != EC_PUBLIC_KEY {
            return Err(FileKeyError::Unsupported(format!(
                "of algorithm {algorithm}"
            )));
        }
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| FileKeyError::Unsupported("EC without a named curve".into()))?;
        let inner = match curve {
            P256 => {
                Inner::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| malformed())?)
            }
            P384 => {
                Inner::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| malformed())?)
            }
            other => return Err(FileKeyError::Unsupported(format!("EC on curve {other}"))),
        };
        Ok(Self { inner })
    }

    fn rsa(key: rsa::RsaPrivateKey) -> Result<Self, FileKeyError> {
        use rsa::traits::PublicKeyParts;
        let bits = key.n().bits();
        if bits < 2048 {
            return Err(FileKeyError::RsaTooShort(bits));
        }
        Ok(Self {
            inner: Inner::Rsa(Box::new(key)),
        })
    }

    /// The public half as a SubjectPublicKeyInfo, DER: equal to the certificate's when the
    /// two are a pair.
    pub fn public_key_der(&self) -> Vec<u8> {
        let public = X509Key::public_key(self).expect("a file key knows its public half");
        crate::public_key_der(&public).expect("a valid public key encodes as SPKI")
    }
}

impl X509Key for FileKey {
    fn public_key(&self) -> Option<X509PublicKey> {
        use rsa::traits::PublicKeyParts;
        Some(match &self.inner {
            Inner::Rsa(key) => X509PublicKey::Rsa {
                modulus: key.n().to_bytes_be(),
                exponent: key.e().to_bytes_be(),
            },
            Inner::P256(key) => X509PublicKey::P256(
                key.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            Inner::P384(key) => X509PublicKey::P384(
                key.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
        })
    }

    fn kind(&self) -> X509KeyKind {
        match self.inner {
            Inner::Rsa(_) => X509KeyKind::Rsa,
            Inner::P256(_) | Inner::P384(_) => X509KeyKind::Ecdsa,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let digest = Sha256::digest(message);
        let failed = |what: &str| {
            KeyError::new(
                KeyErrorKind::Device,
                format!("the file key could not sign ({what})"),
            )
        };
        match &self.inner {
            Inner::Rsa(key) => key
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                .map_err(|_| failed("RSA")),
            // The digest is SHA-256 for P-384 too (AWS4-X509-ECDSA-SHA256): signed as a
            // prehash, which ECDSA reads as an integer of its 256 bits.
            Inner::P256(key) => {
                let signature: p256::ecdsa::Signature = key
                    .sign_prehash(&digest)
                    .map_err(|_| failed("ECDSA P-256"))?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            Inner::P384(key) => {
                let signature: p384::ecdsa::Signature = key
                    .sign_prehash(&digest)
                    .map_err(|_| failed("ECDSA P-384"))?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }
}
