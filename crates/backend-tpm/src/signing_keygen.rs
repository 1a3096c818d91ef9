//! Roles Anywhere key pairs made inside the TPM (`keyhold cert keygen --key tpm:file=...`):
//! TPM2_Create of an RSA or ECC signing key under the owner's standard storage primary,
//! written as a TSS2 key file that tpm2-tools and the OpenSSL tpm2 provider load too. The
//! private part leaves the TPM only wrapped by that primary.

use sigv4_core::{X509KeyType, X509PublicKey};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{
    Auth, EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyRsa, PublicRsaParametersBuilder, RsaExponent, RsaScheme,
    SymmetricDefinitionObject,
};
use zeroize::Zeroizing;

use crate::error::TpmError;
use crate::key::{MAX_PASSWORD, load_under, public_to_tpm2b, tpm2b};
use crate::keyfile::{KeyKind, OWNER_STANDARD_PRIMARY, TpmKeyFile};
use crate::tpm::Tpm;

/// The public template of a signing key that cannot leave the TPM: fixedTPM, fixedParent,
/// sensitiveDataOrigin (made inside), userWithAuth (its password, possibly empty), sign;
/// not restricted (it signs digests computed outside); RSA with no scheme fixed, ECC with
/// ECDSA fixed (as the signer uses it).
pub fn template(key_type: X509KeyType, has_password: bool) -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(!has_password)
        .with_sign_encrypt(true)
        .build()?;
    let builder = PublicBuilder::new()
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes);
    // tss-esapi wants a signing scheme on an ECC signing key: ECDSA with the hash
    // TpmX509Key signs with (SHA-256's digest, zero-padded for P-384).
    let (curve, hash) = match key_type {
        X509KeyType::P256 => (EccCurve::NistP256, HashingAlgorithm::Sha256),
        X509KeyType::P384 => (EccCurve::NistP384, HashingAlgorithm::Sha384),
        rsa => {
            let bits = match rsa.rsa_bits() {
                Some(3072) => RsaKeyBits::Rsa3072,
                Some(4096) => RsaKeyBits::Rsa4096,
                _ => RsaKeyBits::Rsa2048,
            };
            return builder
                .with_public_algorithm(PublicAlgorithm::Rsa)
                .with_rsa_parameters(
                    PublicRsaParametersBuilder::new()
                        .with_scheme(RsaScheme::Null)
                        .with_key_bits(bits)
                        .with_exponent(RsaExponent::default())
                        .with_is_signing_key(true)
                        .with_restricted(false)
                        .build()?,
                )
                .with_rsa_unique_identifier(PublicKeyRsa::default())
                .build();
        }
    };
    builder
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(hash)))
                .with_curve(curve)
                .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
                .with_symmetric(SymmetricDefinitionObject::Null)
                .with_is_signing_key(true)
                .with_is_decryption_key(false)
                .with_restricted(false)
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

impl Tpm {
    /// Makes a new signing key pair inside the TPM, under the owner's standard storage
    /// primary, with `password` as its auth value (none: an empty one), and returns it as a
    /// TSS2 key file to write.
    pub fn create_signing_key(
        &self,
        key_type: X509KeyType,
        password: Option<&Zeroizing<Vec<u8>>>,
    ) -> Result<TpmKeyFile, TpmError> {
        if password.is_some_and(|p| p.len() > MAX_PASSWORD) {
            return Err(TpmError::InvalidArgument {
                reason: format!("a key password is at most {MAX_PASSWORD} bytes"),
            });
        }
        let op = "TPM2_Create (signing key)";
        let template = template(key_type, password.is_some()).map_err(|e| TpmError::tpm(op, e))?;
        let auth = password
            .map(|p| Auth::try_from(p.to_vec()))
            .transpose()
            .map_err(|e| TpmError::tpm(op, e))?;
        let created = self.run(|c| {
            let (template, auth) = (template.clone(), auth.clone());
            load_under(c, OWNER_STANDARD_PRIMARY, op, |ctx, parent| {
                ctx.create(parent, template, auth, None, None, None)
            })
        })?;
        Ok(TpmKeyFile {
            kind: KeyKind::Loadable,
            empty_auth: password.is_none(),
            policy: Vec::new(),
            secret: None,
            description: None,
            access_key_id: None,
            parent: OWNER_STANDARD_PRIMARY,
            public: public_to_tpm2b(&created.out_public)?,
            private: tpm2b(created.out_private.value()),
        })
    }
}

/// The public key of a signing key's public area.
pub(crate) fn public_key(public: &Public) -> Option<X509PublicKey> {
    match public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            let exponent = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let exponent = exponent.to_be_bytes();
            let first = exponent.iter().position(|&b| b != 0).unwrap_or(3);
            Some(X509PublicKey::Rsa {
                modulus: unique.value().to_vec(),
                exponent: exponent[first..].to_vec(),
            })
        }
        Public::Ecc {
            parameters, unique, ..
        } => {
            let point = [&[0x04][..], unique.x().value(), unique.y().value()].concat();
            match parameters.ecc_curve() {
                EccCurve::NistP256 => Some(X509PublicKey::P256(point)),
                EccCurve::NistP384 => Some(X509PublicKey::P384(point)),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_has_a_template() {
        for (name, key_type) in X509KeyType::ALL {
            for password in [false, true] {
                let public = template(key_type, password)
                    .unwrap_or_else(|e| panic!("{name} (password {password}): {e}"));
                assert!(
                    public_key(&public).is_some() || key_type.rsa_bits().is_some(),
                    "{name}"
                );
            }
        }
    }
}
