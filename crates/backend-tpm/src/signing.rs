//! [`TpmX509Key`]: sigv4-core's X.509 seam on an RSA or ECC signing key in a TPM, for IAM
//! Roles Anywhere. The key is a TSS2 key file (`tpm2_create` + `tpm2_encodeobject`, or
//! `keyhold cert keygen`) or a persistent handle, loaded and authorized exactly as
//! HMAC keys are (password, PCR policy, salted sessions). Key files of `openssl genpkey
//! -provider tpm2` (Debian's tpm2-openssl) load too.
//!
//! The digest is SHA-256 computed on the host, signed with TPM2_Sign under a null hashcheck
//! ticket (which only an unrestricted key accepts): RSASSA-PKCS1-v1_5, or ECDSA. For a P-384
//! key the digest is zero-padded on the left to 48 bytes and signed as SHA-384, as the AWS
//! helper does: the same integer, so the same ECDSA signature as over the 32 bytes, in the
//! form the TPM takes for that curve.

use std::fmt;

use sha2::{Digest as _, Sha256};
use sigv4_core::{KeyError, X509Key, X509KeyKind, X509PublicKey};
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    Digest, EccScheme, HashScheme, Public, RsaScheme, Signature, SignatureScheme,
};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

use crate::error::TpmError;
use crate::key::{
    KeyAuth, LoadedKey, file_policy, private_from_tpm2b, public_from_tpm2b, read_key_file,
};
use crate::keyfile::{KeyKind, TpmKeyFile};
use crate::signing_keygen::public_key;
use crate::tpm::Tpm;

/// An RSA or ECC (P-256, P-384) signing key in a TPM.
pub struct TpmX509Key {
    key: LoadedKey,
    kind: X509KeyKind,
    /// Its public key, from its public area.
    public: Option<X509PublicKey>,
    /// The hash TPM2_Sign is told the digest is, and the digest's length.
    hash: (HashingAlgorithm, usize),
}

/// Checks that `public` is a key Roles Anywhere can use, and how it signs.
fn signing_key(public: &Public) -> Result<(X509KeyKind, (HashingAlgorithm, usize)), TpmError> {
    let unsuitable = |reason: &str| TpmError::UnsuitableSigningKey {
        reason: reason.to_owned(),
    };
    let (attributes, kind, hash) = match public {
        Public::Rsa {
            object_attributes,
            parameters,
            ..
        } => {
            if u16::from(parameters.key_bits()) < 2048 {
                return Err(unsuitable("it is RSA with fewer than 2048 bits"));
            }
            let fixed = match parameters.rsa_scheme() {
                RsaScheme::Null => None,
                RsaScheme::RsaSsa(hash) => Some(hash.hashing_algorithm()),
                _ => return Err(unsuitable("its scheme is not RSASSA (PKCS#1 v1.5)")),
            };
            if fixed.is_some_and(|h| h != HashingAlgorithm::Sha256) {
                return Err(unsuitable(
                    "its scheme fixes a hash other than SHA-256 (AWS4-X509-RSA-SHA256)",
                ));
            }
            (
                object_attributes,
                X509KeyKind::Rsa,
                (HashingAlgorithm::Sha256, 32),
            )
        }
        Public::Ecc {
            object_attributes,
            parameters,
            ..
        } => {
            let size = match parameters.ecc_curve() {
                EccCurve::NistP256 => 32,
                EccCurve::NistP384 => 48,
                _ => return Err(unsuitable("it is ECC on a curve other than P-256 or P-384")),
            };
            // The key's own ECDSA hash if it fixes one, else the curve's; the SHA-256 digest
            // is zero-padded to it, which keeps its integer only up to the curve's size.
            let algorithm = match parameters.ecc_scheme() {
                EccScheme::Null if size == 48 => HashingAlgorithm::Sha384,
                EccScheme::Null => HashingAlgorithm::Sha256,
                EccScheme::EcDsa(hash) => hash.hashing_algorithm(),
                _ => return Err(unsuitable("its scheme is not ECDSA")),
            };
            let length = match algorithm {
                HashingAlgorithm::Sha256 => 32,
                HashingAlgorithm::Sha384 => 48,
                _ => usize::MAX,
            };
            if length > size {
                return Err(unsuitable(
                    "its ECDSA scheme fixes a hash longer than the curve, which would cut the \
                     SHA-256 digest",
                ));
            }
            let hash = (algorithm, length);
            (object_attributes, X509KeyKind::Ecdsa, hash)
        }
        _ => return Err(unsuitable("it is neither an RSA nor an ECC key")),
    };
    if !attributes.sign_encrypt() {
        return Err(unsuitable("its 'sign' attribute is clear"));
    }
    if attributes.restricted() {
        return Err(unsuitable(
            "it is restricted: it signs only what the TPM hashed itself, not a request",
        ));
    }
    if !attributes.fixed_tpm() || !attributes.fixed_parent() {
        return Err(unsuitable(
            "fixedTPM or fixedParent is clear, so the key may be copied out of the TPM",
        ));
    }
    Ok((kind, hash))
}

/// Whether `public` is a signing key Roles Anywhere can use (the reason when not).
pub(crate) fn check_signing_key(public: &Public) -> Result<(), TpmError> {
    signing_key(public).map(|_| ())
}

impl Tpm {
    /// Loads a Roles Anywhere signing key from a TSS2 key file (its policy, if any, from the
    /// file; a password in `auth`).
    pub fn load_signing_key_file(
        &self,
        file: &TpmKeyFile,
        auth: KeyAuth,
    ) -> Result<TpmX509Key, TpmError> {
        if file.kind != KeyKind::Loadable {
            return Err(TpmError::KeyFile {
                reason: "this is an importable duplication blob, not a loadable key".into(),
            });
        }
        let public = public_from_tpm2b(&file.public)?;
        let (kind, hash) = signing_key(&public)?;
        let private = private_from_tpm2b(&file.private)?;
        let steps = file_policy(file, &public, &auth)?;
        let key = TpmX509Key {
            public: public_key(&public),
            key: self.file_key(file, public, private, steps, auth)?,
            kind,
            hash,
        };
        // Load now so a key file from another TPM fails here, not at the first signature.
        self.run(|c| key.key.handle_in(c).map(|_| ()))?;
        Ok(key)
    }

    /// Reads a TSS2 PEM key file and loads it ([`Tpm::load_signing_key_file`]).
    pub fn load_signing_pem_file(
        &self,
        path: impl AsRef<std::path::Path>,
        auth: KeyAuth,
    ) -> Result<TpmX509Key, TpmError> {
        self.load_signing_key_file(&read_key_file(path.as_ref())?, auth)
    }

    /// Uses the signing key at a persistent handle, after checking its public area.
    pub fn load_signing_persistent(
        &self,
        handle: u32,
        auth: KeyAuth,
    ) -> Result<TpmX509Key, TpmError> {
        let public = self.read_persistent_public(handle)?;
        let (kind, hash) = signing_key(&public)?;
        Ok(TpmX509Key {
            public: public_key(&public),
            key: self.persistent_key(handle, auth)?,
            kind,
            hash,
        })
    }
}

impl TpmX509Key {
    /// TPM2_Sign of `message`'s SHA-256: the signature as Roles Anywhere reads it.
    pub fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let (algorithm, length) = self.hash;
        let sha256 = Sha256::digest(message);
        let mut digest = vec![0u8; length - sha256.len()];
        digest.extend_from_slice(&sha256);
        let digest = Digest::try_from(digest).map_err(|e| TpmError::tpm("TPM2_Sign", e))?;
        let hash_scheme = HashScheme::new(algorithm);
        let scheme = match self.kind {
            X509KeyKind::Rsa => SignatureScheme::RsaSsa { hash_scheme },
            _ => SignatureScheme::EcDsa { hash_scheme },
        };
        let null_ticket = TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        };
        let signature = self.key.tpm().run(|c| {
            let ticket = null_ticket
                .try_into()
                .map_err(|e| TpmError::tpm("TPM2_Sign", e))?;
            let digest = digest.clone();
            self.key.authorized(c, "TPM2_Sign", |ctx, handle| {
                ctx.sign(handle, digest, scheme, ticket)
            })
        })?;
        match signature {
            Signature::RsaSsa(rsa) => Ok(rsa.signature().value().to_vec()),
            Signature::EcDsa(ecc) => Ok(sigv4_core::ecdsa_signature_der(
                ecc.signature_r().value(),
                ecc.signature_s().value(),
            )),
            other => Err(TpmError::UnsuitableSigningKey {
                reason: format!("TPM2_Sign returned a {:?} signature", other.algorithm()),
            }),
        }
    }
}

impl X509Key for TpmX509Key {
    fn kind(&self) -> X509KeyKind {
        self.kind
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.try_sign(message).map_err(|e| {
            KeyError::with_source(e.kind(), "the TPM could not sign with the private key", e)
        })
    }

    /// From the key's public area, read when the key loaded.
    fn public_key(&self) -> Option<X509PublicKey> {
        self.public.clone()
    }
}

impl fmt::Debug for TpmX509Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, authorization) = self.key.describe();
        f.debug_struct("TpmX509Key")
            .field("tpm", &self.key.tpm().tcti())
            .field("key", &source)
            .field("kind", &self.kind)
            .field("authorization", &authorization)
            .finish()
    }
}
